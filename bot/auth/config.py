"""``auth:`` in ballast.yaml: named tokens, OIDC, a trusted proxy. Secrets never live here:
a token is stored as its SHA-256."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.auth.roles import Role

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class TokenConfig(BaseModel):
    """One principal's token: a person's, a pipeline's, a bot's. Revoke it by removing it."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, description="The principal's name (audit trail).")
    sha256: str = Field(
        pattern=SHA256_PATTERN, description="Hex SHA-256 of the token (ballast tokens create)."
    )
    roles: list[Role] = Field(min_length=1)
    slack_user: str | None = Field(
        default=None,
        pattern=r"^[UW][A-Z0-9]{2,}$",
        description="The Slack user id of the person this token is; none for services.",
    )


class OidcConfig(BaseModel):
    """JWT bearer tokens from an identity provider, checked against its published keys."""

    model_config = ConfigDict(extra="forbid")
    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks_url: str = Field(min_length=1, description="Where the provider publishes its keys.")
    claim: str = Field(default="email", description="The claim that names the person.")
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    roles: list[Role] = Field(
        default_factory=lambda: [Role.READER, Role.RESPONDER],
        description="The roles every authenticated person gets.",
    )
    users: dict[str, str] = Field(
        default_factory=dict,
        description="Claim value (e.g. email) → Slack user id; others via users.lookupByEmail.",
    )
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    client_id: str | None = Field(
        default=None,
        min_length=1,
        description="The web console's client id: with it, /ui/ signs people in through the "
        "provider (authorization code with PKCE). Its ID tokens must carry `audience`.",
    )
    authorization_url: str | None = Field(
        default=None, pattern=r"^https?://", description="The provider's authorization endpoint."
    )
    token_url: str | None = Field(
        default=None, pattern=r"^https?://", description="The provider's token endpoint."
    )
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email"])

    @model_validator(mode="after")
    def _login_endpoints(self) -> OidcConfig:
        if self.client_id is not None and (self.authorization_url is None or not self.token_url):
            raise ValueError("auth.oidc.client_id needs authorization_url and token_url")
        return self

    @field_validator("algorithms")
    @classmethod
    def _no_none(cls, value: list[str]) -> list[str]:
        if any(a.lower() == "none" or a.upper().startswith("HS") for a in value):
            raise ValueError("only asymmetric algorithms (RS*, ES*, PS*, EdDSA) are accepted")
        return value


class ProxyConfig(BaseModel):
    """An authenticating proxy (oauth2-proxy) in front of Ballast names the person."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    headers: list[str] = Field(
        default_factory=lambda: ["X-Forwarded-Email", "X-Auth-Request-Email"]
    )
    trusted_addresses: list[str] = Field(
        default_factory=list, description="CIDRs of the proxy; the header is ignored otherwise."
    )
    roles: list[Role] = Field(default_factory=lambda: [Role.READER, Role.RESPONDER])
    users: dict[str, str] = Field(default_factory=dict, description="Email → Slack user id.")

    @field_validator("trusted_addresses")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @model_validator(mode="after")
    def _needs_addresses(self) -> ProxyConfig:
        if self.enabled and not self.trusted_addresses:
            raise ValueError("auth.proxy.enabled needs trusted_addresses (the proxy's CIDRs)")
        return self


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: list[TokenConfig] = Field(default_factory=list)
    oidc: OidcConfig | None = None
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)

    @model_validator(mode="after")
    def _unique(self) -> AuthConfig:
        names = [t.name for t in self.tokens]
        if len(names) != len(set(names)) or "api" in names:
            raise ValueError("token names must be unique and not 'api' (BALLAST_API_TOKEN's)")
        digests = [t.sha256 for t in self.tokens]
        if len(digests) != len(set(digests)):
            raise ValueError("two tokens have the same sha256")
        return self
