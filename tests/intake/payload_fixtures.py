"""The real alert payloads in ``tests/fixtures/alerts`` (origins in its README.md).

These tests are the proof that real senders' payloads parse, so an empty or missing folder is
an error at collection (see :mod:`tests.intake.conftest`), never a skip.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import FIXTURES as ALERT_FIXTURES


def fixture_files(*patterns: str) -> list[Path]:
    return sorted(path for pattern in patterns for path in ALERT_FIXTURES.glob(pattern))


def fixture_name(path: Path) -> str:
    """``alertmanager-captured/resolved-group.json``: the id that tests and tables use."""
    return path.relative_to(ALERT_FIXTURES).as_posix()


def load_fixture(name: str) -> object:
    return json.loads((ALERT_FIXTURES / name).read_bytes())
