"""Remediations, one module each, registered by name (scenarios.md's required names).

`remediations.base.registry()` imports them on first use; nothing is loaded at start-up.
"""
