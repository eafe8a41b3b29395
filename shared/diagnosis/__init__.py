"""From a payload to a Diagnosis: envelopes (one per source), enrichment, the catalog, the classifier.

May import `shared.core`, `shared.azure` and `remediations.context` (enrichment's reads), nothing of
decisions, approvals or entry. A new payload source is an envelope module; a new scenario is a row
in the catalog module of its family.
"""
