from pathlib import Path

import pytest


@pytest.fixture
def runbooks_dir() -> Path:
    """Runbooks that match the alert names in tests/fixtures/alerts."""
    return Path(__file__).with_name("runbooks")
