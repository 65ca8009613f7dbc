"""How a principal proved who it is (recorded with every write)."""

from __future__ import annotations

from enum import StrEnum


class AuthMethod(StrEnum):
    TOKEN = "token"  # noqa: S105 - a named token of ballast.yaml's auth.tokens
    API_TOKEN = "api_token"  # noqa: S105 - BALLAST_API_TOKEN: the service principal "api"
    OIDC = "oidc"  # a JWT from the identity provider
    PROXY = "proxy"  # a trusted authenticating proxy's header
    SLACK = "slack"  # a request signed by Slack: the clicking or typing user
    LOCAL = "local"  # in-process callers (the CLI on the server's host, tests)
    SYSTEM = "system"  # Ballast itself: timers, auto mitigations
