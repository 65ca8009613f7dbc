"""Where ``http_request`` may send, and how its secrets get in: the allowlist and ``${ENV}``.

A runbook is code anyone on the team can change, so it names hosts and secrets but never
holds either: hosts must be on ``http.allowed_hosts`` in ballast.yaml, and secrets are read
from the environment at send time, only those on ``http.allowed_secrets`` (none by default).
Errors name the host or the variable, never a value.

In a header, ``${NAME}`` is a secret and ``$$`` a literal ``$``; ``http_request`` doubles every
``$`` a template renders, so only a runbook's literal text can name a secret.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

import httpx

from actions.errors import FinalError

# A hostname label, an IPv4 address or a bracketless IPv6 literal; `*.` only as a prefix.
_HOST_PATTERN = re.compile(
    r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\Z"
)
_IPV6_PATTERN = re.compile(r"^[0-9a-f:.]+\Z")
# `${NAME}` expands; `$$` is a literal `$` (so `$${NAME}` is a literal `${NAME}`).
_SECRET_REF = re.compile(r"\$(?:(\$)|\{([^}]*)\})")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def normalize_host_pattern(entry: str) -> str:
    """Lower-case an allowlist entry and reject what could never match (for config checks)."""
    host = entry.strip().lower().rstrip(".")
    if not (_HOST_PATTERN.match(host) or (":" in host and _IPV6_PATTERN.match(host))):
        raise ValueError(
            f"http.allowed_hosts entry {entry!r} is not a host name: use `api.example.com` "
            "or `*.example.com` (no scheme, port or path)"
        )
    return host


class AllowlistHttpPolicy:
    """``HttpPolicy`` for ``http_request``: exact hosts or ``*.suffix``, secrets from env."""

    def __init__(
        self,
        allowed_hosts: Iterable[str],
        environ: Mapping[str, str],
        *,
        allowed_secrets: Collection[str] | None = None,
    ) -> None:
        """``allowed_secrets``: the variables a runbook may expand; none when not given."""
        self._hosts = tuple(dict.fromkeys(normalize_host_pattern(h) for h in allowed_hosts))
        self._environ = environ
        self._allowed_secrets = frozenset(allowed_secrets or ())

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        return self._hosts

    def is_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for pattern in self._hosts:
            if pattern.startswith("*."):
                # `*.example.com` covers subdomains, not example.com itself.
                if host.endswith(pattern[1:]):
                    return True
            elif host == pattern:
                return True
        return False

    def check_url(self, url: str) -> None:
        try:
            parsed = httpx.URL(url)
            host = parsed.host
        except (httpx.InvalidURL, ValueError):  # IDNA errors are UnicodeErrors
            raise FinalError(
                "http_request url is not a valid URL (or its host is not a valid name); "
                "check the runbook"
            ) from None
        if parsed.scheme not in ("http", "https"):
            raise FinalError(
                f"http_request url scheme {parsed.scheme!r} is not allowed; use http or https"
            )
        if parsed.userinfo:
            raise FinalError(
                "http_request url must not carry credentials (user:password@); "
                "send them in a header as ${ENV_NAME}"
            )
        if not host:
            raise FinalError("http_request url has no host; check the runbook")
        if "%" in host:
            raise FinalError(
                "http_request url host holds a percent-encoded character (a label rendered "
                "into the host?); put label values in the path or query"
            )
        if not self.is_allowed(host):
            allowed = ", ".join(self._hosts) or "(none)"
            raise FinalError(
                f"host {host!r} is not allowed for http_request; add it (or a `*.` pattern "
                f"covering it) to `http.allowed_hosts` in ballast.yaml (allowed now: {allowed})"
            )

    def expand_secrets(self, value: str) -> str:
        return _SECRET_REF.sub(self._expand_one, value)

    def _expand_one(self, match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "$"
        if not _ENV_NAME.match(name):
            raise FinalError(
                f"${{{name}}} is not a valid environment variable reference; "
                "use ${NAME} with letters, digits and underscores"
            )
        if name not in self._allowed_secrets:
            raise FinalError(
                f"environment variable {name} is not on the list of secrets http_request "
                "may use; add it to `http.allowed_secrets` in ballast.yaml"
            )
        try:
            return self._environ[name]
        except KeyError:
            raise FinalError(
                f"environment variable {name} (referenced as ${{{name}}}) is not set "
                "in Ballast's environment"
            ) from None


def secret_names(value: str) -> list[str]:
    """The variables ``value`` names as ``${NAME}`` (``$$`` is a literal dollar)."""
    return [m.group(2) for m in _SECRET_REF.finditer(value) if m.group(2) is not None]
