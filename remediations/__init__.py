"""Remediations, one module each, registered by name (scenarios.md's required names).

The registry arrives with the Azure adapters; the classifier already proposes these
names with their default mode.
"""
