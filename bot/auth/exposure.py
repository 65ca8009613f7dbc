"""Refuse to serve other machines unauthenticated: what must be set before a non-loopback bind.

``ballast serve --host 0.0.0.0`` (the Docker image's default) with open webhooks or a closed
API would let anyone on the network post alerts (which run auto mitigations), or leave
operators without a way in. ``--insecure-allow-anonymous`` overrides it, loudly.
"""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def exposure_problems(
    host: str, *, webhooks_authenticated: bool, api_configured: bool
) -> list[str]:
    """What to set before serving on ``host``; empty when nothing is missing or it is loopback."""
    if is_loopback(host):
        return []
    problems = []
    if not webhooks_authenticated:
        problems.append(
            "webhooks are open to anyone: set BALLAST_WEBHOOK_TOKEN (Alertmanager sends it "
            "as a bearer token or basic-auth password)"
        )
    if not api_configured:
        problems.append(
            "the API has no way in: set BALLAST_API_TOKEN or add auth.tokens to ballast.yaml "
            "(ballast tokens create)"
        )
    return problems
