from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitsync.remote import GitRemote, SmartHttpRemote


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    return GitRemote(tmp_path / "git")


@pytest.fixture
def http_remote(remote: GitRemote) -> Iterator[SmartHttpRemote]:
    served = SmartHttpRemote(remote)
    served.start()
    yield served
    served.stop()
