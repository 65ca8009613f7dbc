from pathlib import Path

import pytest


@pytest.fixture
def runbooks_dir() -> Path:
    return Path(__file__).with_name("runbooks")
