"""The deployed app, one folder per stage of the flow (README: Architecture).

    core/       domain values, errors, telemetry         imports nothing of ours
    azure/      adapters: the only SDK users             core
    state/      Table Storage records and the job queue  core, azure
    diagnosis/  envelopes -> Failure -> enrichment -> classifier (catalog) -> Diagnosis
    decisions/  policy, sweep, the pipeline behind every trigger
    approvals/  signed links, Teams cards, the confirmation page and decision
    entry/      HTTP handlers, OpenAPI, the `remediator` CLI
    wiring.py   builds the App (settings -> collaborators), once, on first use

Nothing here imports an Azure SDK at module level (cold start), and nothing imports the
`sandbox` package (the local Azure double is a development tool, never deployed).
"""
