"""Thin activities (installed as `makegood.activities`): each builds its idempotency key,
calls one adapter and classifies the adapter's errors; names and types come from the specs
in `makegood.domain.calls`."""
