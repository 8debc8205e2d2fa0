"""Whether a host is this machine: dev credentials, plain HTTP and local keys are allowed only
there. Stdlib only, so the light CLI commands can use it without loading the Temporal SDK."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
