"""The embedded default: providers that persist to one SQLite file and enforce idempotency."""
