"""Where the shared alert payloads are: ``shared/fixtures/alerts`` beside the clone.

The real payloads live outside the repository (``../shared`` here and in CI). A missing folder
is an error at collection, never a skip: these tests are the proof that real senders' payloads
parse.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def find_alert_fixtures() -> Path:
    """``shared/fixtures/alerts`` in the repository or beside it, walking up from the repo."""
    for directory in (REPO_ROOT, *REPO_ROOT.parents):
        candidate = directory / "shared" / "fixtures" / "alerts"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"no shared/fixtures/alerts folder in {REPO_ROOT} or any folder above it; "
        "the shared fixtures must sit beside the clone (../shared)"
    )


ALERT_FIXTURES = find_alert_fixtures()


def fixture_files(*patterns: str) -> list[Path]:
    return sorted(path for pattern in patterns for path in ALERT_FIXTURES.glob(pattern))


def fixture_name(path: Path) -> str:
    """``alertmanager-captured/resolved-group.json``: the id that tests and tables use."""
    return path.relative_to(ALERT_FIXTURES).as_posix()


def load_fixture(name: str) -> object:
    return json.loads((ALERT_FIXTURES / name).read_bytes())
