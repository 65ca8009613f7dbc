"""Every cell of the web console's permissions table in docs/security.md, tried with real
sessions (SQLite and PostgreSQL). A ``/ui`` route missing from the table, or a row for a route
the app does not serve, fails.

One app per database: rows run in the table's order on one incident (resolve is last, so the
mitigation rows meet an open incident); each cell is a fresh browser that signs in as that
caller with its named token (or ``BALLAST_API_TOKEN``) and takes its CSRF token from a page.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.routing import APIRoute
from starlette.routing import Mount

from bot.config import BallastConfig
from bot.web.install import ROUTERS
from tests.permissions_table import EndpointRow, endpoint_rows
from tests.principals import API_TOKEN, ROSTER
from tests.web.helpers import TOOL_ALERT, csrf_of, sign_in

TOKENS: dict[str, str | None] = {
    "no credentials": None,
    "reader": ROSTER["reader"].token,
    "responder": ROSTER["responder"].token,
    "owner": ROSTER["owner1"].token,
    "operator": ROSTER["operator"].token,
    "automation": ROSTER["automation"].token,
    "`BALLAST_API_TOKEN`": API_TOKEN,
}
VALUES = {
    "{id}": "1",
    "{runbook}": "svc/tool-failure",
    "{key}": "svc-a.autonomy",
    "{file}": "console.css",
}
FIELDS = {"run": {"mitigation": "supervised"}, "undo": {"mitigation": "supervised"}}
FIELDS |= {"controls": {"value": "supervised", "reason": "permissions test"}}


def read_table() -> list[EndpointRow]:
    return endpoint_rows("web", list(TOKENS), VALUES)


def served(app: Any) -> set[tuple[str, str]]:
    """The console's routes: its routers (as bot.web.install includes them) and mounts."""
    found = set()
    routes = [r for router in ROUTERS for r in router.routes]
    for route in [*app.routes, *routes]:
        if isinstance(route, Mount) and route.path.startswith("/ui"):
            found.add(("GET", route.path + "/{file}"))
        elif isinstance(route, APIRoute) and route.path.startswith("/ui"):
            path = route.path.replace("{incident_id}", "{id}").replace(
                "{runbook_id:path}", "{runbook}"
            )
            found |= {(method, path) for method in route.methods}
    return found


def _fields(row: EndpointRow) -> dict[str, str]:
    for word, fields in FIELDS.items():
        if word in row.path.rsplit("/", 2)[-1] or row.path.startswith(f"/ui/{word}/"):
            return fields
    return {}


async def _try(h: Any, row: EndpointRow, caller: str) -> httpx.Response:
    browser: httpx.AsyncClient = h.as_(None)
    token = TOKENS[caller]
    if token is not None:
        assert (await sign_in(browser, token)).status_code == 303
    page = await browser.get("/ui/login" if token is None else "/ui/incidents")
    if row.method == "GET":
        return await browser.get(row.url)
    fields = {"csrf": csrf_of(page), **_fields(row)}
    if row.path == "/ui/login":
        fields["token"] = token or ""
    return await browser.post(row.url, data=fields)


def check(expected: str, answer: httpx.Response, where: Any) -> None:
    to_login = answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")
    assert answer.status_code < 500, (where, answer.text[:300])
    if expected == "login":
        assert to_login, (where, answer.status_code)
    elif expected == "403":
        assert answer.status_code == 403, (where, answer.status_code, answer.text[-800:])
    elif expected == "open":  # anyone gets the page (a sign-in may still fail: 401)
        assert answer.status_code != 403, (where, answer.text[-800:])
    else:
        assert expected == "yes", where
        assert not to_login, (where, answer.headers.get("location"))
        assert answer.status_code not in (401, 403), (where, answer.status_code, answer.text[-800:])


async def test_every_cell_and_every_route(make_harness: Any) -> None:
    config = BallastConfig.model_validate({"teams": {"@oncall": ["U0OWNER2", "U0OWNER3"]}})
    h = await make_harness(api_token=API_TOKEN, config=config)
    rows = read_table()
    app = h.client._transport.app  # type: ignore[attr-defined]
    assert {(row.method, row.path) for row in rows} == served(app)
    opened = await h.client.post("/webhooks/generic", json={"alerts": [TOOL_ALERT]})
    assert opened.status_code == 200
    await h.settle()
    await h.services.controls.write("svc-a.autonomy", "full", actor="seed", reason="")
    for row in rows:
        for caller, expected in row.cells.items():
            check(expected, await _try(h, row, caller), (row.method, row.url, caller))
