"""Core of the remediator: envelopes, classifier, catalog and the CLI.

Nothing here imports an Azure SDK at module level: Functions import `function_app`
on every cold start, and the adapters load their SDKs on first use.
"""
