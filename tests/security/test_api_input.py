"""Bad API input is a 4xx naming what is wrong, never a 500 (issue 14, "Bad API input").

Probes from the issue, on SQLite and PostgreSQL: ids beyond 64 bits in every path and cursor,
NUL, newlines and ANSI escapes in ``actor`` and ``reason``, and a control key with a trailing
newline (``$`` matched before it).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.principals import BRIDGE

TOKEN = "api-token-1"
AUTH = BRIDGE.headers  # may name the acting person in the body
HUGE = "99999999999999999999"
MAX_ID = 2**63 - 1
AM = FIXTURES / "alertmanager-captured"


async def _one_incident(h: Any) -> int:
    await h.post_fixture("alertmanager", AM / "firing-group-2-alerts.json", **AUTH)
    await h.settle()
    [incident] = (await h.client.get("/api/v1/incidents", headers=AUTH)).json()["incidents"]
    return int(incident["id"])


@pytest.mark.parametrize("bad", [HUGE, str(MAX_ID + 1), "0", "-1"])
async def test_ids_out_of_range_are_422(make_harness: Any, bad: str) -> None:
    h = await make_harness(api_token=TOKEN)
    await _one_incident(h)
    body = {"actor": "U024BE7LH"}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/api/v1/incidents/{bad}", {}),
        ("GET", "/api/v1/incidents", {"params": {"before_id": bad}}),
        ("POST", f"/api/v1/incidents/{bad}/acknowledge", {"json": body}),
        ("POST", f"/api/v1/incidents/{bad}/resolve", {"json": body}),
        ("POST", f"/api/v1/incidents/{bad}/mitigations/x/run", {"json": body}),
        ("POST", f"/api/v1/incidents/{bad}/mitigations/x/undo", {"json": body}),
        ("GET", f"/api/v1/incidents/{bad}/postmortem", {}),
    ]
    for method, url, extra in calls:
        answer = await h.client.request(method, url, headers=AUTH, **extra)
        assert answer.status_code == 422, (url, answer.text)
        [error] = answer.json()["detail"]
        assert error["loc"][-1] in ("incident_id", "before_id")


async def test_the_largest_id_is_a_clean_404(make_harness: Any) -> None:
    h = await make_harness(api_token=TOKEN)
    await _one_incident(h)
    body = {"actor": "U024BE7LH"}
    for answer in [
        await h.client.get(f"/api/v1/incidents/{MAX_ID}", headers=AUTH),
        await h.client.post(f"/api/v1/incidents/{MAX_ID}/acknowledge", json=body, headers=AUTH),
        await h.client.get(f"/api/v1/incidents/{MAX_ID}/postmortem", headers=AUTH),
    ]:
        assert answer.status_code == 404, answer.text
    listed = await h.client.get("/api/v1/incidents", params={"before_id": MAX_ID}, headers=AUTH)
    assert listed.status_code == 200
    assert len(listed.json()["incidents"]) == 1


@pytest.mark.parametrize(
    "text",
    ["U024\x00BE7LH", "mallory\n2026-11-27 INFO acknowledged by admin", "\x1b[31mroot", "a\u202eb"],
)
async def test_control_characters_in_actor_and_reason_are_422(make_harness: Any, text: str) -> None:
    h = await make_harness(api_token=TOKEN)
    incident = await _one_incident(h)
    url = f"/api/v1/incidents/{incident}"
    for field, body in [
        ("actor", {"actor": text}),
        ("reason", {"actor": "U024BE7LH", "reason": text}),
    ]:
        for path in ("acknowledge", "resolve", "mitigations/x/run"):
            answer = await h.client.post(f"{url}/{path}", json=body, headers=AUTH)
            assert answer.status_code == 422, (path, answer.text)
            [error] = answer.json()["detail"]
            assert error["loc"] == ["body", field]
            assert "control characters" in error["msg"]
        put = await h.client.put(
            "/api/v1/controls/audit-svc.autonomy", json={"value": "off", **body}, headers=AUTH
        )
        assert put.status_code == 422
        assert put.json()["detail"][0]["loc"] == ["body", field]
    shown = (await h.client.get(url, headers=AUTH)).json()
    assert shown["status"] == "triggered"
    assert shown["acknowledged_by"] is None


async def test_a_key_with_a_trailing_newline_is_refused(make_harness: Any) -> None:
    h = await make_harness(api_token=TOKEN)
    body = {"value": "off", "actor": "U024BE7LH"}
    for key in ("audit-svc.autonomy%0A", "audit-svc.autonomy%0D%0A", "audit-svc.autonomy%00"):
        answer = await h.client.put(f"/api/v1/controls/{key}", json=body, headers=AUTH)
        assert answer.status_code == 422, (key, answer.text)
        assert (await h.client.get(f"/api/v1/controls/{key}", headers=AUTH)).status_code == 422
        flag = await h.client.post(f"/ofrep/v1/evaluate/flags/{key}", json={"context": {}})
        assert flag.status_code in (401, 404), flag.text
    ok = await h.client.put("/api/v1/controls/audit-svc.autonomy", json=body, headers=AUTH)
    assert ok.status_code == 200
    listed = (await h.client.get("/api/v1/controls", headers=AUTH)).json()["controls"]
    assert [c["key"] for c in listed] == ["audit-svc.autonomy"]


@pytest.mark.parametrize(
    "args",
    [
        ["incidents", "show", HUGE],
        ["incidents", "ack", HUGE, "--actor", "bob"],
        ["mitigations", "run", HUGE, "x", "--actor", "bob"],
        ["postmortem", "0"],
    ],
)
def test_the_cli_refuses_ids_out_of_range_as_usage_errors(args: list[str]) -> None:
    """Locally the CLI reads the database itself: a 20-digit id was an OverflowError there."""
    from typer.testing import CliRunner

    from bot.cli import build_cli

    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 2, result.output
    assert "9223372036854775807" in result.output or "greater than or equal to 1" in result.output
