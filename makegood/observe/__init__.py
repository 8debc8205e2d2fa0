"""Metrics and traces: what an operations team watches a running Makegood by."""
