"""What every stage shares: frozen domain values, payload errors, telemetry. Imports nothing of ours."""
