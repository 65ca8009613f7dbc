"""What a principal may do. Owner rules (who may run a runbook's mitigations) come on top."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    READER = "reader"  # every GET of the API
    RESPONDER = "responder"  # acknowledge, resolve; run/approve/undo where owner rules allow
    OPERATOR = "operator"  # controls PUT, runbook catalog reload
    AUTOMATION = "automation"  # post alerts over the API (webhooks), record changes
    IMPERSONATE = "impersonate"  # act for a named person (chat bridges); both are journaled


IMPLIED: dict[Role, frozenset[Role]] = {
    Role.RESPONDER: frozenset({Role.READER}),
    Role.OPERATOR: frozenset({Role.READER}),
}
"""Roles that come with another: whoever may act on incidents may read them."""

SERVICE_API_ROLES = frozenset(Role) - {Role.IMPERSONATE}
"""The roles of the ``api`` principal of ``BALLAST_API_TOKEN``: everything but acting for
someone else. It is a service, so no owner: it cannot run or approve owner-gated mitigations."""


def expand(roles: frozenset[Role]) -> frozenset[Role]:
    out = set(roles)
    for role in roles:
        out |= IMPLIED.get(role, frozenset())
    return frozenset(out)
