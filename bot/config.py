"""``ballast.yaml``: everything that is not a secret or an endpoint.

Strict like the runbooks: an unknown key is an error naming the key, so a typo in the config
never silently falls back to a default.
"""

from __future__ import annotations

import re
import string
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

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
from bot.runbooks.schema import Duration, Runbook, ScorecardPanel, Severity
from bot.runbooks.url_templates import UrlTemplate, parse_url_template

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

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


class InboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    retention: Duration | None = Field(
        default=timedelta(days=30),
        description="Processed alert states are deleted this long after they arrived (at least "
        "1d; a firing state is kept while no resolve of it is stored); null keeps them all. "
        "docs/deploy.md.",
    )

    @field_validator("retention")
    @classmethod
    def _at_least_a_day(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(days=1):
            raise ValueError(
                "must be at least 1d: a sender's resend of a state already handled would "
                "become a new alert (null keeps every state)"
            )
        return value


class ChangesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    window: Duration = Field(
        default=timedelta(hours=24),
        description="How long before an incident's first alert its service's changes are shown.",
    )


class FreezeWindow(BaseModel):
    """No release from each time ``cron`` fires (in ``timezone``) for ``duration``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str = Field(description="Five-field crontab: when the freeze starts, e.g. 0 17 * * 5.")
    duration: Duration
    timezone: str = "UTC"
    reason: str = ""

    @model_validator(mode="after")
    def _parses(self) -> FreezeWindow:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {self.timezone!r} is not an IANA zone") from None
        try:
            self.trigger()
        except ValueError as err:
            raise ValueError(f"cron {self.cron!r}: {err}") from None
        return self

    def trigger(self) -> CronTrigger:
        """The start times as apscheduler's trigger. Crontab's day of week counts from Sunday
        (0 and 7), apscheduler's from Monday: numbers are turned into day names first, so
        ``0 17 * * 5`` is Friday 17:00 as in every crontab."""
        from apscheduler.triggers.cron import CronTrigger

        fields = self.cron.split()
        if len(fields) != 5:
            raise ValueError("needs five fields: minute hour day-of-month month day-of-week")
        minute, hour, day, month, weekday = fields
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_WEEKDAY_NUMBER.sub(lambda m: _DAY_NAMES[int(m.group())], weekday),
            timezone=self.timezone,
        )


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NUMBER = re.compile(r"(?<![/\d])[0-7](?!\d)")  # not a step (*/2) or a longer number


class EvalRule(BaseModel):
    """A metric of the evaluation report: an absolute bound and no regression against the
    live version's recorded score beyond ``max_regression`` (in the metric's own units)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = None
    max: float | None = None
    higher_is_better: bool = True
    max_regression: float | None = Field(default=0.0, ge=0)
    required: bool = Field(default=True, description="A report without this metric blocks.")


class GateRule(BaseModel):
    """What a release of one kind of change to one service must pass (docs/release-gates.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    block_on_severity: Severity | None = Field(
        default=Severity.SEV2,
        description="An open incident of the service this severe or worse blocks (null: never).",
    )
    block_on_likely_cause: bool = Field(
        default=True,
        description="An open incident whose runbook names this kind as a likely cause blocks.",
    )
    freeze: list[FreezeWindow] = Field(default_factory=list)
    evals: dict[str, EvalRule] = Field(default_factory=dict)
    approvals: int = Field(default=0, ge=0, le=5, description="Distinct owners who must approve.")
    owners: list[str] = Field(
        default_factory=list,
        description="Who may approve (user ids, @groups); default: the service's runbooks' owners.",
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


class PrometheusBasicAuth(BaseModel):
    """HTTP basic auth for Prometheus; the password is read from the environment, never here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(min_length=1)
    password_env: str = Field(min_length=1, description="Env variable holding the password.")


class PrometheusConfig(BaseModel):
    """Where mitigations are verified: a Prometheus (or compatible) HTTP API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        pattern=r"^https?://[^\s]+$",
        description="Base URL, e.g. http://prometheus:9090 (without /api/v1).",
    )
    bearer_token_env: str | None = Field(
        default=None, description="Env variable holding a bearer token (Authorization header)."
    )
    basic_auth: PrometheusBasicAuth | None = Field(default=None)
    timeout: float = Field(
        default=5.0, gt=0, le=120, description="Seconds per query; then the result is unknown."
    )

    @model_validator(mode="after")
    def _one_auth(self) -> PrometheusConfig:
        if self.bearer_token_env is not None and self.basic_auth is not None:
            raise ValueError("prometheus: give bearer_token_env or basic_auth, not both")
        return self


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: BackendConfig = Field(
        default_factory=BuiltinBackendConfig, description="Where this service's controls live."
    )
    prometheus: PrometheusConfig | None = Field(
        default=None, description="This service's Prometheus, instead of the top-level one."
    )
    scorecard: list[ScorecardPanel] = Field(
        default_factory=list,
        description="Panels snapshot at open, after each verification and at resolve.",
    )

    @field_validator("scorecard")
    @classmethod
    def _unique_panels(cls, panels: list[ScorecardPanel]) -> list[ScorecardPanel]:
        names = [panel.name for panel in panels]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"scorecard panel names must be unique: {', '.join(repeated)}")
        return panels


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


GIT_SCHEMES = ("https", "http", "ssh", "file", "git")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
WEB_URL_FIELDS = frozenset({"commit", "path", "id"})
_REF_FORBIDDEN = re.compile(r"[\x00-\x20~^:?*\[\\\x7f]|\.\.|@\{|//")


class GitSourceConfig(BaseModel):
    """A git remote the runbooks are read from; secrets come from BALLAST_GIT_TOKEN(_FILE)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1,
        description="https://, ssh://, file:// (http:// and git:// on loopback only). No "
        "credentials in the URL: the token comes from BALLAST_GIT_TOKEN or BALLAST_GIT_TOKEN_FILE.",
    )
    ref: str = Field(default="main", description="Branch name, or a full ref (refs/...).")
    path: str = Field(default=".", description="The runbook folder inside the repository.")
    poll_interval: Duration = Field(
        default=timedelta(seconds=60), description="Fetch this often (a push webhook: at once)."
    )
    timeout: Duration = Field(
        default=timedelta(seconds=60), description="Give up on one git command after this."
    )
    workdir: Path = Field(
        default=Path("data/runbooks-git"),
        description="Ballast's own working copy: the fetched repository, the checkout of the "
        "live commit and its state (kept across restarts). One per replica.",
    )
    token_username: str = Field(
        default="x-access-token",
        min_length=1,
        description="User name sent with BALLAST_GIT_TOKEN over https (GitHub: x-access-token, "
        "GitLab: oauth2, Gitea: your user).",
    )
    ssh_key: Path | None = Field(default=None, description="Private key file for ssh:// URLs.")
    known_hosts: Path | None = Field(
        default=None, description="known_hosts file for ssh:// URLs (host keys checked strictly)."
    )
    notify_channel: str | None = Field(
        default=None,
        description="Slack channel (id or #name) told once about each refused commit.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in GIT_SCHEMES:
            raise ValueError(
                f"runbooks.git.url must start with {', '.join(s + '://' for s in GIT_SCHEMES)}; "
                f"got {_redact_url(url)!r}"
            )
        if parts.password is not None or (parts.username and parts.scheme in ("https", "http")):
            raise ValueError(
                "runbooks.git.url must not carry credentials (they would be logged); put the "
                "token in BALLAST_GIT_TOKEN or BALLAST_GIT_TOKEN_FILE"
            )
        if parts.scheme == "file" and not parts.path:
            raise ValueError("runbooks.git.url: a file:// URL needs a path")
        if parts.scheme != "file" and not parts.hostname:
            raise ValueError(f"runbooks.git.url {url!r} names no host")
        if parts.scheme in ("http", "git") and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(
                f"runbooks.git.url: {parts.scheme}:// is unencrypted (anyone on the path could "
                "serve runbooks or read the token); it is for loopback only: use https:// or "
                "ssh://"
            )
        return url

    @field_validator("ref")
    @classmethod
    def _ref(cls, ref: str) -> str:
        if (
            not ref
            or ref.startswith(("-", "/"))
            or ref.endswith(("/", ".", ".lock"))
            or _REF_FORBIDDEN.search(ref)
        ):
            raise ValueError(f"runbooks.git.ref {ref!r} is not a valid branch or ref name")
        return ref

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        pure = PurePosixPath(path)
        if pure.is_absolute() or ".." in pure.parts or path.startswith("-") or "\\" in path:
            raise ValueError(
                f"runbooks.git.path {path!r} must be a folder inside the repository "
                "(relative, no '..')"
            )
        return str(pure)

    @field_validator("poll_interval", "timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(days=1):
            raise ValueError("must be between 1s and 1d")
        return value

    @model_validator(mode="after")
    def _ssh_needs_known_hosts(self) -> GitSourceConfig:
        ssh = urlsplit(self.url).scheme == "ssh"
        if ssh and self.known_hosts is None:
            raise ValueError(
                "an ssh:// runbooks.git.url needs runbooks.git.known_hosts: host keys are "
                "checked strictly, never accepted on first use"
            )
        if not ssh and (self.ssh_key is not None or self.known_hosts is not None):
            raise ValueError("runbooks.git.ssh_key and known_hosts are for ssh:// URLs only")
        return self

    @property
    def full_ref(self) -> str:
        """``main`` → ``refs/heads/main``; a ref given in full stays as it is."""
        return self.ref if self.ref.startswith("refs/") else f"refs/heads/{self.ref}"

    @property
    def display_url(self) -> str:
        return _redact_url(self.url)


def _redact_url(url: str) -> str:
    """The URL without any user info, for logs and the API."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


class RunbooksConfig(BaseModel):
    """Where runbooks come from: a folder (``runbooks: path``) or a git remote."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = Field(default=None, description="A folder; overrides BALLAST_RUNBOOKS.")
    git: GitSourceConfig | None = Field(default=None, description="Sync from a git remote.")
    web_url: str | None = Field(
        default=None,
        description="Link to a runbook file at a commit, with {commit}, {path} (inside the "
        "repository) and {id}: https://github.com/org/repo/blob/{commit}/{path}",
    )

    @model_validator(mode="before")
    @classmethod
    def _folder_shorthand(cls, value: Any) -> Any:
        """``runbooks: some/folder`` (the form before git) means ``runbooks: {path: ...}``."""
        return {"path": value} if isinstance(value, str | Path) else value

    @model_validator(mode="after")
    def _one_source(self) -> RunbooksConfig:
        if self.path is not None and self.git is not None:
            raise ValueError("give runbooks.path or runbooks.git, not both")
        return self

    @field_validator("web_url")
    @classmethod
    def _web_url(cls, template: str | None) -> str | None:
        if template is None:
            return None
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        except ValueError as err:
            raise ValueError(f"runbooks.web_url: {err}") from None
        unknown = fields - WEB_URL_FIELDS
        if unknown:
            raise ValueError(
                f"runbooks.web_url uses {', '.join(sorted(unknown))}; it may use only "
                f"{{commit}}, {{path}} and {{id}}"
            )
        if urlsplit(template).scheme not in ("https", "http"):
            raise ValueError("runbooks.web_url must be an https:// or http:// URL")
        return template


class TraceLinkConfig(BaseModel):
    """A trace search link shown with every incident (or those of ``services``): Tempo in
    Grafana Explore, Jaeger, Honeycomb, Langfuse… Values are percent-encoded
    (:mod:`bot.runbooks.url_templates`); docs/configuration.md lists the placeholders."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=150)
    url: str = Field(
        min_length=1,
        description="URL template: {service}, {labels.<name>}, {start_ms}, {end_ms}… "
        "({name|json} inside a JSON string).",
    )
    services: list[str] = Field(
        default_factory=list, description="Only incidents of these services; empty: all."
    )
    before: Duration = Field(
        default=timedelta(minutes=15), description="Search from this long before detection."
    )
    after: Duration = Field(
        default=timedelta(minutes=15),
        description="Search until this long after the resolve (an open incident: until now).",
    )
    trace_url: str | None = Field(
        default=None,
        description="URL template of one trace, with {trace_id}: links for the exemplars of "
        "the alert's PromQL (Prometheus /api/v1/query_exemplars).",
    )
    exemplars: int = Field(
        default=5,
        ge=0,
        le=20,
        description="Exemplar traces to show at most (0: do not ask Prometheus for them).",
    )

    @field_validator("url")
    @classmethod
    def _url_is_a_template(cls, url: str) -> str:
        template = parse_url_template(url)
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"expected an https:// or http:// URL, got scheme {scheme!r}")
        del template
        return url

    @field_validator("trace_url")
    @classmethod
    def _trace_url_names_the_trace(cls, url: str | None) -> str | None:
        if url is None:
            return None
        cls._url_is_a_template(url)
        names = {p.name for p in parse_url_template(url).parts if not isinstance(p, str)}
        if "trace_id" not in names:
            raise ValueError("trace_url must contain {trace_id}")
        return url

    @property
    def template(self) -> UrlTemplate:
        return parse_url_template(self.url)

    @property
    def trace_template(self) -> UrlTemplate | None:
        return parse_url_template(self.trace_url) if self.trace_url else None


class BallastConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    runbooks: RunbooksConfig | None = Field(
        default=None, description="A folder (overrides BALLAST_RUNBOOKS) or a git remote."
    )
    incidents: IncidentsConfig = Field(default_factory=IncidentsConfig)
    inbox: InboxConfig = Field(
        default_factory=InboxConfig, description="The stored alerts (docs/deploy.md)."
    )
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
    changes: ChangesConfig = Field(
        default_factory=ChangesConfig, description="The change log (docs/changes.md)."
    )
    traces: list[TraceLinkConfig] = Field(
        default_factory=list,
        description="Trace search links for each incident (Slack, the API's traces, the "
        "postmortem).",
    )
    gates: dict[str, dict[str, GateRule]] = Field(
        default_factory=dict,
        description="Release gates per service and change kind ('*': any kind); "
        "docs/release-gates.md.",
    )
    auth: AuthConfig = Field(
        default_factory=AuthConfig, description="Who may call the API (docs/security.md)."
    )
    prometheus: PrometheusConfig | None = Field(
        default=None,
        description="Where `verify:` queries go (services may name their own); off when absent.",
    )

    def scorecard_for(self, service: str | None) -> list[ScorecardPanel]:
        own = self.services.get(service or "")
        return list(own.scorecard) if own is not None else []

    def panel_names(self) -> dict[str, list[str]]:
        """Each service's scorecard panel names, for checking the names runbooks show."""
        return {
            name: [p.name for p in service.scorecard] for name, service in self.services.items()
        }

    def panels_for(self, service: str | None, runbook: Runbook | None) -> list[ScorecardPanel]:
        """The panels an incident shows: its runbook's choice (the service's panels it names,
        then its own), or the service's whole scorecard when the runbook makes none.
        A name the service does not have is skipped (validation reports it)."""
        if runbook is None or runbook.scorecard.empty:
            return self.scorecard_for(service)
        by_name = {panel.name: panel for panel in self.scorecard_for(service)}
        named = [by_name[name] for name in runbook.scorecard.show if name in by_name]
        return [*named, *runbook.scorecard.panels]

    def prometheus_for(self, service: str | None) -> PrometheusConfig | None:
        """The service's own Prometheus if it names one, else the top-level one."""
        own = self.services.get(service or "")
        if own is not None and own.prometheus is not None:
            return own.prometheus
        return self.prometheus

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
