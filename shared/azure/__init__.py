"""Azure adapters: the only place that imports Azure SDKs, and only on first use."""
