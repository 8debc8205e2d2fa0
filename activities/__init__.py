"""Thin activities: build idempotency keys, classify errors, call an adapter."""
