"""``ballast.yaml``: everything that is not a secret or an endpoint.

Strict like the runbooks: an unknown key is an error naming the key, so a typo in the config
never silently falls back to a default.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from actions.backends.flagd import FlagdConfig
from actions.backends.unleash import UnleashConfig
from actions.clients.http_policy import normalize_host_pattern
from actions.clients.paging import PagingTarget
from bot.auth.config import AuthConfig
from bot.errors import ConfigError
from bot.runbooks.schema import Duration

SlackUserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,}$")]
# A user group by handle (``@ai-oncall``, resolved through usergroup_ids or teams) or by id.
SlackGroupRef = Annotated[
    str, StringConstraints(pattern=r"^(@[a-z0-9][a-z0-9._-]*|S[A-Z0-9]{2,})$")
]


class IncidentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reopen_window: Duration = Field(
        default=timedelta(minutes=10),
        description="An alert firing again this soon after its incident resolved re-opens it.",
    )
    remind_every: Duration = Field(
        default=timedelta(minutes=30),
        description="Remind the thread this often while an incident stays mitigating/monitoring.",
    )


class ExecutionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: bool = Field(default=False, description="Preview every action; change nothing.")
    retry_deadline: Duration = Field(
        default=timedelta(seconds=30), description="Give up retrying a failing action after this."
    )
    max_attempts: int = Field(default=5, ge=1, le=50)
    lease: Duration = Field(
        default=timedelta(seconds=30),
        description="How long a replica's claim on a running mitigation lasts without a "
        "heartbeat; after that another replica takes it over (several replicas only).",
    )

    @field_validator("lease")
    @classmethod
    def _lease_bounds(cls, lease: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= lease <= timedelta(hours=1):
            raise ValueError("execution.lease must be between 1s and 1h")
        return lease


class HttpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts http_request may call: exact names or *.suffix wildcards.",
    )
    allowed_secrets: list[str] = Field(
        default_factory=list,
        description="Env variables http_request headers may expand as ${NAME} (default: none).",
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, hosts: list[str]) -> list[str]:
        return [normalize_host_pattern(host) for host in hosts]


class BuiltinBackendConfig(BaseModel):
    """The default: Ballast's own control store, served over OFREP."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["builtin"] = "builtin"


class FlagdBackendConfig(FlagdConfig):
    type: Literal["flagd"]


class UnleashBackendConfig(UnleashConfig):
    type: Literal["unleash"]


BackendConfig = Annotated[
    BuiltinBackendConfig | FlagdBackendConfig | UnleashBackendConfig,
    Field(discriminator="type"),
]


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: BackendConfig = Field(
        default_factory=BuiltinBackendConfig, description="Where this service's controls live."
    )


class SlackConfig(BaseModel):
    """Where incidents are posted; BALLAST_SLACK_CHANNEL is the fallback for the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runbook_channels: dict[str, str] = Field(
        default_factory=dict, description="Runbook id → channel id (checked first)."
    )
    service_channels: dict[str, str] = Field(
        default_factory=dict, description="Service → channel id."
    )
    usergroup_ids: dict[str, str] = Field(
        default_factory=dict,
        description="@handle → Slack user group id (S…), so owners are real mentions.",
    )
    responder_groups: list[SlackGroupRef] = Field(
        default_factory=list,
        description="User groups (@handle or S… id) whose members may ack, resolve and escalate "
        "any incident in Slack.",
    )
    responders: list[SlackUserId] = Field(
        default_factory=list,
        description="Slack user ids who may ack, resolve and escalate any incident in Slack.",
    )

    def channel_for(
        self, runbook_id: str | None, service: str | None, fallback: str | None
    ) -> str | None:
        if runbook_id and runbook_id in self.runbook_channels:
            return self.runbook_channels[runbook_id]
        if service and service in self.service_channels:
            return self.service_channels[service]
        return fallback


class PostmortemLlmConfig(BaseModel):
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint that may reword the summary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1, description="Base URL, e.g. http://127.0.0.1:8080 (no /v1).")
    model: str = Field(min_length=1)
    api_key_env: str | None = Field(
        default=None, description="Env variable holding the API key (sent as a Bearer token)."
    )
    timeout: float = Field(default=20.0, gt=0, le=300, description="Seconds; then the template.")


class PostmortemConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    folder: Path = Field(
        default=Path("postmortems"), description="Drafts are written here on resolve."
    )
    llm: PostmortemLlmConfig | None = Field(
        default=None, description="Optional summary polish; off when absent."
    )


class BallastConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    runbooks: Path | None = Field(default=None, description="Overrides BALLAST_RUNBOOKS.")
    incidents: IncidentsConfig = Field(default_factory=IncidentsConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    services: dict[str, ServiceConfig] = Field(
        default_factory=dict,
        description="Per service settings; services not listed use the built-in store.",
    )
    paging: dict[str, PagingTarget] = Field(
        default_factory=dict, description="Paging targets the `page` action may name."
    )
    slack: SlackConfig = Field(default_factory=SlackConfig)
    teams: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Members of owner groups (@handle → user ids), for approvals outside Slack.",
    )
    postmortem: PostmortemConfig = Field(default_factory=PostmortemConfig)
    auth: AuthConfig = Field(
        default_factory=AuthConfig, description="Who may call the API (docs/security.md)."
    )

    @model_validator(mode="after")
    def _responder_groups_resolve(self) -> BallastConfig:
        """A responder group named by handle must be resolvable, or it would silently be empty."""
        unknown = [
            group
            for group in self.slack.responder_groups
            if group.startswith("@")
            and group not in self.slack.usergroup_ids
            and group not in self.teams
        ]
        if unknown:
            raise ValueError(
                f"slack.responder_groups names {', '.join(unknown)}, which neither "
                "slack.usergroup_ids (its Slack id) nor teams (its members) lists"
            )
        return self


def load_config(path: Path | None) -> BallastConfig:
    if path is None:
        return BallastConfig()
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader) or {}
    except OSError as err:
        raise ConfigError(f"cannot read BALLAST_CONFIG file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    try:
        return BallastConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in err.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
