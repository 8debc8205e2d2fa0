"""Clients for the outside world behind small protocols."""
