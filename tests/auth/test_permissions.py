"""Every cell of the API permissions table in docs/security.md, tried against the app.

The table (after ``<!-- permissions: api -->``) lists each endpoint against each kind of
caller; this test parses it and makes each request with that caller's real credentials on a
fresh incident per row (SQLite and PostgreSQL). A table row for an endpoint the app does not
have, or an API endpoint missing from the table, fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import BallastConfig
from tests.permissions_table import EndpointRow, endpoint_rows
from tests.principals import API_TOKEN, ROSTER

ALERT = {
    "labels": {"alertname": "ToolFailing", "service": "svc-a", "tool": "search"},
    "starts_at": "2026-11-27T02:00:00Z",
}
CALLERS: dict[str, dict[str, str]] = {
    "no credentials": {},
    "reader": ROSTER["reader"].headers,
    "responder": ROSTER["responder"].headers,
    "owner": ROSTER["owner1"].headers,  # U0OWNER1 is in svc/tool-failure's owners
    "operator": ROSTER["operator"].headers,
    "automation": ROSTER["automation"].headers,
    "`BALLAST_API_TOKEN`": {"authorization": f"Bearer {API_TOKEN}"},
}
VALUES = {
    "{id}": "1",
    "{mitigation}": "supervised",
    "{key}": "svc-a.autonomy",
}


ROWS = endpoint_rows("api", list(CALLERS), VALUES)


def test_the_table_covers_every_endpoint_but_health(h_schema: dict[str, Any]) -> None:
    documented = {(row.method, row.path) for row in ROWS}
    served = {("GET", "/openapi.json")}
    for path, operations in h_schema["paths"].items():
        if path not in ("/healthz", "/readyz"):
            served |= {
                (
                    m.upper(),
                    path.replace("{incident_id}", "{id}").replace(
                        "{mitigation_id}", "{mitigation}"
                    ),
                )
                for m in operations
            }
    assert documented == served


@pytest.fixture
async def h_schema(make_harness: Any) -> dict[str, Any]:
    h = await make_harness()
    schema: dict[str, Any] = (await h.as_("reader").get("/openapi.json")).json()
    return schema


def body_for(row: EndpointRow) -> dict[str, Any] | None:
    if row.method == "PUT":
        return {"value": "supervised"}
    if row.method == "POST":
        return {}
    return None


@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row.method} {row.path}")
async def test_every_cell(make_harness: Any, row: EndpointRow) -> None:
    config = BallastConfig.model_validate({"teams": {"@oncall": ["U0OWNER2", "U0OWNER3"]}})
    h = await make_harness(api_token=API_TOKEN, config=config)
    opened = await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    assert opened.status_code == 200
    await h.settle()
    await h.services.controls.write("svc-a.autonomy", "full", actor="seed", reason="")
    anonymous = h.anonymous
    for caller, expected in row.cells.items():
        response = await anonymous.request(
            row.method, row.url, json=body_for(row), headers=CALLERS[caller]
        )
        got = str(response.status_code)
        if expected == "yes":
            assert got not in ("401", "403"), (caller, row.method, row.url, response.text)
            assert not got.startswith("5"), (caller, response.text)
        else:
            assert got == expected, (caller, row.method, row.url, response.text)
