"""``ballast.yaml``: everything that is not a secret or an endpoint.

Strict like the runbooks: an unknown key is an error naming the key, so a typo in the config
never silently falls back to a default.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import ConfigError
from bot.matching.runbook import Duration


class IncidentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reopen_window: Duration = Field(
        default=timedelta(minutes=10),
        description="An alert firing again this soon after its incident resolved re-opens it.",
    )


class BallastConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    runbooks: Path | None = Field(default=None, description="Overrides BALLAST_RUNBOOKS.")
    incidents: IncidentsConfig = Field(default_factory=IncidentsConfig)


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
