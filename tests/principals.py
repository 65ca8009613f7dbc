"""The principals tests act as: named tokens, listed in ``auth.tokens`` of every test app.

``BRIDGE`` has every role, ``impersonate`` included: like a chat bridge it may name the person
it acts for in the body's ``actor``, which is how most tests (written before principals) say
who acts. Tests about authentication itself use the narrower principals or none at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.auth.tokens import digest


@dataclass(frozen=True, slots=True)
class Who:
    name: str
    roles: tuple[str, ...]
    slack_user: str | None = None

    @property
    def token(self) -> str:
        return f"test-token-{self.name}"

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "sha256": digest(self.token),
            "roles": list(self.roles),
        }
        if self.slack_user is not None:
            entry["slack_user"] = self.slack_user
        return entry


ALL = ("reader", "responder", "operator", "automation", "impersonate")

ROSTER: dict[str, Who] = {
    who.name: who
    for who in (
        Who("bridge", ALL),
        Who("reader", ("reader",)),
        Who("responder", ("responder",)),  # a service: responds, owns nothing
        Who("operator", ("operator",)),
        Who("automation", ("automation",)),
        Who("impersonator", ("responder", "impersonate")),
        # People (Slack user ids of the test runbooks' owners and teams).
        Who("owner1", ("responder",), "U0OWNER1"),
        Who("owner1-ci", ("responder",), "U0OWNER1"),  # a second token of the same person
        Who("owner2", ("responder",), "U0OWNER2"),
        Who("owner3", ("responder",), "U0OWNER3"),
        Who("stranger", ("responder",), "U0STRANGER"),
        Who("aaa", ("responder", "operator"), "U0AAAAAAA"),
        Who("lh", ("responder",), "U024BE7LH"),  # an owner in tests/api/runbooks
    )
}
BRIDGE = ROSTER["bridge"]
API_TOKEN = "test-api-token"  # BALLAST_API_TOKEN where a test sets it: the service "api"


def auth_config(extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``auth:`` of ballast.yaml with the whole roster (and ``extra`` token entries)."""
    return {"tokens": [who.entry() for who in ROSTER.values()] + list(extra or [])}


def with_roster(config: Any) -> Any:
    """``config`` (a BallastConfig) with the roster added to its ``auth.tokens``."""
    from bot.auth.config import AuthConfig

    tokens = [who.entry() for who in ROSTER.values()]
    tokens += [t.model_dump(mode="json", exclude_none=True) for t in config.auth.tokens]
    auth = AuthConfig.model_validate({**config.auth.model_dump(mode="json"), "tokens": tokens})
    return config.model_copy(update={"auth": auth})


def roster_yaml() -> str:
    """``auth:`` with the roster, as ballast.yaml text (YAML reads JSON) for ``ballast serve``."""
    import json

    return "auth: " + json.dumps(auth_config()) + "\n"


READ = ROSTER["reader"].headers
# Webhooks are closed by default: a named token with the automation role posts alerts.
POST_ALERTS = ROSTER["automation"].headers
