"""Remediations on patch schedules: Automation software update configurations and Update Manager
maintenance configurations (both have a window that can run out)."""
