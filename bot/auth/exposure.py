"""Serving other machines: what must be set first, and what ``--insecure-allow-anonymous`` opens.

Webhooks, OFREP and ``/metrics`` are closed by default, like the API: they take their own
shared secret or a principal with the right role (:mod:`bot.api.auth`). On a network address
(``--host 0.0.0.0``, the Docker image's default) a server with no way in at all would only
answer 401, so ``ballast serve`` refuses to start and names what to set.
``--insecure-allow-anonymous`` starts anyway and opens each of those endpoints whose token is
unset to anyone (never the API): said in the banner and in ``/metrics``.
"""

from __future__ import annotations

import ipaddress

from bot.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def exposure_problems(host: str, *, webhook_token_set: bool, api_configured: bool) -> list[str]:
    """What to set before serving on ``host``; empty when nothing is missing or it is loopback."""
    if is_loopback(host):
        return []
    problems = []
    if not webhook_token_set and not api_configured:
        problems.append(
            "webhooks have no way in: set BALLAST_WEBHOOK_TOKEN (Alertmanager sends it as a "
            "bearer token or basic-auth password) or give a named token the automation role"
        )
    if not api_configured:
        problems.append(
            "the API has no way in: set BALLAST_API_TOKEN or add auth.tokens to ballast.yaml "
            "(ballast tokens create)"
        )
    return problems


def anonymous_endpoints(settings: Settings) -> list[str]:
    """What ``insecure_allow_anonymous`` opens to anyone: each endpoint whose token is unset."""
    if not settings.insecure_allow_anonymous:
        return []
    opened = []
    if settings.webhook_token is None:
        opened.append(
            "webhooks are open to anyone (BALLAST_WEBHOOK_TOKEN unset): whoever reaches this "
            "port can post alerts, and alerts run auto mitigations"
        )
    if settings.ofrep_token is None:
        opened.append("OFREP is open to anyone (BALLAST_OFREP_TOKEN unset): control values")
    if settings.metrics_token is None:
        opened.append("/metrics is open to anyone (BALLAST_METRICS_TOKEN unset)")
    return opened
