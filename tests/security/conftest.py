from pathlib import Path

import pytest


@pytest.fixture
def runbooks_dir() -> Path:
    """The API tests' runbooks: they match the captured Alertmanager fixtures."""
    return Path(__file__).parents[1] / "api" / "runbooks"
