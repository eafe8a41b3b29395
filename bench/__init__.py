"""Benchmark scripts: they print figures and write JSON to bench/results/ (see bench/README.md)."""
