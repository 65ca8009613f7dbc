from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture
def runbooks_dir() -> Path:
    """svc/tool-failure: owners @oncall (U0OWNER2, U0OWNER3) and U0OWNER1; high-risk
    full-autonomy, auto disable-tool."""
    return REPO / "tests" / "execution" / "runbooks"


from tests.e2e.conftest import make_server, server_database_url  # noqa: E402, F401 - live servers
