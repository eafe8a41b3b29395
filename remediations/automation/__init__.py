"""Remediations on Automation Update Management deployments, with what they share (`machines`)."""
