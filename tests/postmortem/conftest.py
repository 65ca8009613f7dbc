from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import BallastConfig


@pytest.fixture
def runbooks_dir() -> Path:
    return Path(__file__).with_name("runbooks")


@pytest.fixture
def postmortem_folder(tmp_path: Path) -> Path:
    return tmp_path / "postmortems"


def config_for(folder: Path, llm: dict[str, Any] | None = None) -> BallastConfig:
    return BallastConfig.model_validate(
        {
            "teams": {"@oncall": ["U0OWNER2", "U0OWNER3"]},
            "postmortem": {"folder": str(folder), **({"llm": llm} if llm else {})},
        }
    )
