"""Workflow definitions. No I/O here: activities do it."""
