"""A database error that may pass answers 503 with Retry-After, never 500; a bug stays a 500.

The errors are real ones, raised by the database under test (a lost UNIQUE race: a conflict the
store's retries gave up on; a statement error: a bug), thrown where the executor would.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import DatabaseUnderTest
from tests.principals import BRIDGE
from tests.store.test_transient import failure

TOKEN = BRIDGE.headers  # may name the acting person in the body


async def answer_when_run_raises(make_harness: Any, err: BaseException) -> Any:
    h = await make_harness(api_token="api-token")

    async def run(*_: Any, **__: Any) -> Any:
        raise err

    h.services.executor.run = run
    return await h.client.post(
        "/api/v1/incidents/1/mitigations/x/run", json={"actor": "U0OWNER1"}, headers=TOKEN
    )


async def test_a_conflict_is_503_with_retry_after(
    make_harness: Any, test_database: DatabaseUnderTest
) -> None:
    err = await failure(test_database, "INSERT INTO t (k) VALUES (1)")
    response = await answer_when_run_raises(make_harness, err)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "try again" in response.json()["detail"]


async def test_a_statement_error_is_still_a_500(
    make_harness: Any, test_database: DatabaseUnderTest
) -> None:
    err = await failure(test_database, "SELECT no_such_column FROM t")
    if test_database.url.startswith("sqlite"):
        pytest.skip("sqlite3 reports statement errors as OperationalError (counted unavailable)")
    with pytest.raises(type(err)):
        await answer_when_run_raises(make_harness, err)
