"""Settings from the environment, read once at start-up and passed down explicitly.

Secrets and endpoints come from env (``BALLAST_*``, ``SLACK_*``); everything else lives in the
optional ``ballast.yaml`` named by ``BALLAST_CONFIG`` (see :mod:`bot.config`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/ballast.db"
ONE_MIB = 1024 * 1024
PREFIX = "BALLAST_"

# Secret settings, by field, and every environment name each may be given under. Each name
# also works with ``_FILE`` appended: the file's contents (one trailing newline stripped) are the
# value, as Docker's official images and Alertmanager's ``credentials_file`` do.
SECRET_ENV: dict[str, tuple[str, ...]] = {
    "webhook_token": ("BALLAST_WEBHOOK_TOKEN",),
    "api_token": ("BALLAST_API_TOKEN",),
    "ofrep_token": ("BALLAST_OFREP_TOKEN",),
    "metrics_token": ("BALLAST_METRICS_TOKEN",),
    "pagerduty_webhook_secret": ("BALLAST_PAGERDUTY_WEBHOOK_SECRET",),
    "slack_bot_token": ("SLACK_BOT_TOKEN", "BALLAST_SLACK_BOT_TOKEN"),
    "slack_signing_secret": ("SLACK_SIGNING_SECRET", "BALLAST_SLACK_SIGNING_SECRET"),
    "slack_app_token": ("SLACK_APP_TOKEN", "BALLAST_SLACK_APP_TOKEN"),
    "git_token": ("BALLAST_GIT_TOKEN",),
    "git_webhook_secret": ("BALLAST_GIT_WEBHOOK_SECRET",),
    "web_session_secret": ("BALLAST_WEB_SESSION_SECRET",),
    "oidc_client_secret": ("BALLAST_OIDC_CLIENT_SECRET",),
}

# ``BALLAST_*`` variables that are not settings but are read elsewhere, so that start-up does
# not refuse them as misspellings. Options of CLI commands (typer reads them):
CLI_OPTION_ENV = frozenset({"BALLAST_HOST", "BALLAST_PORT", "BALLAST_URL", "BALLAST_ACTOR"})
# Tools around Ballast: the tests, CI, scripts and ``ballast demo``.
TOOL_ENV = frozenset(
    {
        "BALLAST_TEST_POSTGRES_URL",  # tests: run the PostgreSQL variants against this server
        "BALLAST_TEST_REQUIRE_ALL",  # tests/CI: a missing service fails instead of skipping
        "BALLAST_UPDATE_GOLDEN",  # tests/postmortem: rewrite the golden file
        "BALLAST_UPDATE_SCREENSHOTS",  # tests/web/test_browser.py: rewrite docs/images/console-*
        "BALLAST_UNLEASH_DIR",  # scripts/unleash-server, .ci/run: cache folder
        "BALLAST_DEMO_ALERTMANAGER",  # ballast demo: path of the alertmanager binary
        "BALLAST_DEMO_PROMETHEUS",  # ballast demo: path of the prometheus binary
    }
)


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, extra="ignore", frozen=True, populate_by_name=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then secrets from ``*_FILE`` files, then the environment.

        Reading the environment also refuses unknown ``BALLAST_*`` names (see
        :func:`check_environment`), as ``ballast.yaml`` refuses unknown keys.
        """
        return (init_settings, _SecretFiles(settings_cls), env_settings)

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL; postgresql:// URLs use asyncpg, the default is SQLite.",
    )
    runbooks: Path = Field(default=Path("runbooks"), description="Runbook folder or file.")
    config: Path | None = Field(default=None, description="Optional ballast.yaml.")
    webhook_token: SecretStr | None = None
    api_token: SecretStr | None = None
    ofrep_token: SecretStr | None = Field(
        default=None,
        description="OFREP clients may send it as a bearer token or X-API-Key (a named token "
        "with the reader role works too).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="GET /metrics accepts it as a bearer token (a named token with the reader "
        "role works too).",
    )
    git_token: SecretStr | None = Field(
        default=None,
        description="Token for an https runbooks.git.url (sent as basic auth with "
        "runbooks.git.token_username); never logged.",
    )
    git_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret of POST /webhooks/git push webhooks (GitHub/Gitea/Forgejo HMAC, "
        "GitLab token); without it the endpoint refuses every request.",
    )
    pagerduty_webhook_secret: SecretStr | None = Field(
        default=None,
        description="The PagerDuty webhook subscription's signing secret: when set, "
        "POST /webhooks/pagerduty also needs a matching X-PagerDuty-Signature (403 without).",
    )
    insecure_allow_anonymous: bool = Field(
        default=False,
        description="Webhooks, OFREP and /metrics whose token is unset answer anyone (the API "
        "never does). Off: they need credentials. For throwaway demos only; `ballast serve "
        "--insecure-allow-anonymous` sets it.",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Where people reach this server (https://ballast.example.com): the web "
        "console's deep links and OIDC redirect use it; else the request's own URL.",
    )
    web_session_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs the web console's session cookies. Set the same value on "
        "every replica; unset, each process makes a random one (sessions end at restart).",
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="The web console's OIDC client secret, for providers that want one on top "
        "of PKCE (auth.oidc.client_id); public clients leave it unset.",
    )
    max_body_bytes: int = Field(default=ONE_MIB, gt=0)
    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"
    dry_run: bool = False
    shutdown_delay: float = Field(
        default=2.0,
        ge=0,
        le=300,
        description="After SIGTERM, seconds to keep serving with readiness false (so load "
        "balancers stop sending traffic) before stopping.",
    )
    shutdown_grace: float = Field(
        default=20.0,
        gt=0,
        le=3600,
        description="After the delay, seconds for in-flight requests, engine batches and "
        "executions to finish; what is left is handed back to other replicas.",
    )

    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "BALLAST_SLACK_BOT_TOKEN")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "BALLAST_SLACK_SIGNING_SECRET"),
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "BALLAST_SLACK_APP_TOKEN")
    )
    slack_api_url: str = "https://slack.com/api/"
    slack_channel: str | None = None

    @property
    def async_database_url(self) -> str:
        """The URL with an async driver, whatever form the user wrote it in."""
        url = self.database_url
        for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
            return "sqlite+aiosqlite://" + url[len("sqlite://") :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.async_database_url.startswith("sqlite")


def known_environment() -> frozenset[str]:
    """Every ``BALLAST_*`` name Ballast or its tools read (settings, ``_FILE``s, options)."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        if name in SECRET_ENV:
            names.update(SECRET_ENV[name])
            names.update(f"{env}_FILE" for env in SECRET_ENV[name])
        elif field.validation_alias is None:
            names.add(PREFIX + name.upper())
    return frozenset(n for n in names if n.startswith(PREFIX)) | CLI_OPTION_ENV | TOOL_ENV


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Refuse unknown ``BALLAST_*`` variables: a misspelt one would be silently ignored."""
    environ = os.environ if environ is None else environ
    known = known_environment()
    unknown = sorted(n for n in environ if n.upper().startswith(PREFIX) and n not in known)
    if not unknown:
        return
    problems = []
    for name in unknown:
        # Compare what follows the shared prefix, or everything looks alike.
        tails = sorted(k[len(PREFIX) :] for k in known)
        close = difflib.get_close_matches(name.upper()[len(PREFIX) :], tails, n=1, cutoff=0.7)
        hint = f"; did you mean {PREFIX}{close[0]}?" if close else ""
        problems.append(f"unknown environment variable {name}{hint}")
    raise ConfigError(
        "; ".join(problems) + " (unset it; `ballast serve --help` lists the variables it reads)"
    )


def read_secret_files(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The secrets given as ``<NAME>_FILE``, by field name; errors name the variable and path."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for field, names in SECRET_ENV.items():
        for name in names:
            path = environ.get(f"{name}_FILE")
            if path is None:
                continue
            direct = [n for n in names if n in environ]
            if direct:
                raise ConfigError(f"both {direct[0]} and {name}_FILE are set; set only one of them")
            if field in values:
                raise ConfigError(f"{field.upper()} is given by two _FILE variables; keep one")
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                reason = getattr(err, "strerror", None) or str(err)
                raise ConfigError(f"{name}_FILE={path}: cannot read the file: {reason}") from None
            values[field] = text.removesuffix("\n").removesuffix("\r")
    return values


class _SecretFiles(PydanticBaseSettingsSource):
    """Secrets from ``<NAME>_FILE``; also where the environment is checked for misspellings."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every secret at once

    def __call__(self) -> dict[str, Any]:
        check_environment()
        return dict(read_secret_files())
