"""Settings from the environment, read once at start-up and passed down explicitly.

Secrets and endpoints come from env (``BALLAST_*``, ``SLACK_*``); everything else lives in the
optional ``ballast.yaml`` named by ``BALLAST_CONFIG`` (see :mod:`bot.config`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/ballast.db"
ONE_MIB = 1024 * 1024


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BALLAST_", extra="ignore", frozen=True, populate_by_name=True
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL; postgresql:// URLs use asyncpg, the default is SQLite.",
    )
    runbooks: Path = Field(default=Path("runbooks"), description="Runbook folder or file.")
    config: Path | None = Field(default=None, description="Optional ballast.yaml.")
    webhook_token: SecretStr | None = None
    api_token: SecretStr | None = None
    ofrep_token: SecretStr | None = Field(
        default=None, description="When set, OFREP clients must send it as a bearer token."
    )
    max_body_bytes: int = Field(default=ONE_MIB, gt=0)
    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"
    dry_run: bool = False

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
