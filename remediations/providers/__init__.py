"""Remediations on resource providers (Microsoft.Resources): registration."""
