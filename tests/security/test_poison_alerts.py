"""One alert can neither be lost for a character nor fill the database (issue 14, items 3 and 4).

Probes from the issue, through the real webhooks on SQLite and PostgreSQL: a 900 KB label, a
NUL in an annotation, a lone surrogate in a label, Grafana's PUT, the Go zero time as
``startsAt`` and two services' alerts of one name. Each is stored (never a 4xx, which makes
Alertmanager drop the whole group), altered values say so, and /metrics counts them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot.intake.limits import (
    MAX_ALERT_CHARS,
    MAX_ANNOTATION_VALUE_CHARS,
    MAX_LABEL_VALUE_CHARS,
)
from tests.conftest import FIXTURES, Clock

AM = FIXTURES / "alertmanager-captured" / "firing-group-2-alerts.json"
GRAFANA = FIXTURES / "grafana" / "docs-webhook-notifier-firing-2.json"
TOKEN = "api-token-1"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def _body(source: str) -> dict[str, Any]:
    if source == "generic":
        return {
            "alerts": [
                {
                    "labels": {"alertname": "PoisonProbe", "service": "checkout"},
                    "annotations": {"summary": "probe"},
                }
            ]
        }
    data: dict[str, Any] = json.loads((AM if source == "alertmanager" else GRAFANA).read_text())
    return data


async def _stored(h: Any) -> list[Any]:
    from sqlalchemy import select

    from bot.store.tables import InboxAlert

    async with h.services.db.sessions() as session:
        return list((await session.scalars(select(InboxAlert).order_by(InboxAlert.id))).all())


async def _altered_metric(h: Any, reason: str) -> float:
    text = (await h.client.get("/metrics", headers=AUTH)).text
    found = re.search(
        rf'^ballast_alert_values_altered_total{{reason="{reason}"}} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("source", ["alertmanager", "grafana", "generic"])
async def test_a_900_kb_label_is_stored_truncated_and_counted(
    make_harness: Any, source: str
) -> None:
    h = await make_harness(api_token=TOKEN)
    body = _body(source)
    body["alerts"][0]["labels"]["intent"] = "x" * 900_000
    answer = await h.client.post(f"/webhooks/{source}", json=body)
    assert answer.status_code == 200, answer.text[:300]
    [row] = [row for row in await _stored(h) if "intent" in row.labels]
    intent = row.labels["intent"]
    assert len(intent) == MAX_LABEL_VALUE_CHARS
    kept = intent.index("…")
    assert intent == "x" * kept + f"…[truncated {900_000 - kept} chars]"
    assert intent.startswith("x" * 16_000)
    assert row.annotations["ballast_intake"].startswith("altered at intake: labels.intent: ")
    assert "900000 characters cut to 16384" in row.annotations["ballast_intake"]
    assert await _altered_metric(h, "truncated") == 1
    await h.settle()
    listed = (await h.client.get("/api/v1/incidents", headers=AUTH)).json()["incidents"]
    assert len(listed) == (2 if source == "grafana" else 1)  # Grafana's two alerts differ


async def test_one_alert_is_bounded_as_a_whole(make_harness: Any) -> None:
    h = await make_harness(api_token=TOKEN)
    body = _body("alertmanager")
    notes = body["alerts"][0]["annotations"]
    for i in range(8):
        notes[f"note{i}"] = "y" * (MAX_ANNOTATION_VALUE_CHARS + 10)
    answer = await h.client.post("/webhooks/alertmanager", json=body)
    assert answer.status_code == 200
    row = (await _stored(h))[0]
    values = [*row.labels.values(), *row.annotations.values()]
    # Every value kept its marker; the text itself stays within the alert's budget.
    assert sum(len(v) for v in values) <= MAX_ALERT_CHARS + 8 * 40 + 4_000
    assert all(len(row.annotations[f"note{i}"]) <= MAX_ANNOTATION_VALUE_CHARS for i in range(8))
    assert row.annotations["summary"] == "5xx ratio above 5% on checkout-1"
    assert await _altered_metric(h, "truncated") >= 8


async def test_nul_and_lone_surrogates_are_replaced_not_refused(make_harness: Any) -> None:
    h = await make_harness(api_token=TOKEN)
    text = AM.read_text()
    body = text.replace(
        '"summary": "5xx ratio above 5% on checkout-1"', '"summary": "bad\\u0000byte"'
    ).replace('"instance": "checkout-2"', '"instance": "checkout-\\ud800-2"')
    answer = await h.client.post(
        "/webhooks/alertmanager",
        content=body.encode(),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 2
    first, second = await _stored(h)
    assert first.annotations["summary"] == "bad\ufffdbyte"
    assert "annotations.summary: 1 character(s)" in first.annotations["ballast_intake"]
    assert second.labels["instance"] == "checkout-\ufffd-2"
    assert "labels.instance" in second.annotations["ballast_intake"]
    assert await _altered_metric(h, "unstorable_character") == 2
    await h.settle()
    [incident] = (await h.client.get("/api/v1/incidents", headers=AUTH)).json()["incidents"]
    assert incident["alert_count"] == 2


async def test_grafana_put_works_like_post(make_harness: Any) -> None:
    h = await make_harness(api_token=TOKEN)
    put = await h.client.put(
        "/webhooks/grafana",
        content=GRAFANA.read_bytes(),
        headers={"content-type": "application/json"},
    )
    assert put.status_code == 200, put.text
    assert put.json()["stored"] == 2
    post = await h.post_fixture("grafana", GRAFANA)
    assert post.json() == {**put.json(), "stored": 0, "duplicates": 2}
    assert (await h.client.put("/webhooks/alertmanager", json={})).status_code == 405


async def test_the_go_zero_start_time_means_when_received(make_harness: Any, clock: Clock) -> None:
    """Grafana's test notifications carry ``startsAt: 0001-01-01T00:00:00Z`` (derived here from
    the Grafana docs fixture); stored as given it made a detect phase of 63,931,919,186 s."""
    h = await make_harness(api_token=TOKEN)
    body = json.loads(GRAFANA.read_text())
    for alert in body["alerts"]:
        alert["startsAt"] = "0001-01-01T00:00:00Z"
    answer = await h.client.post("/webhooks/grafana", json=body)
    assert answer.status_code == 200, answer.text
    assert {row.starts_at.replace(tzinfo=None) for row in await _stored(h)} == {
        clock.now.replace(tzinfo=None)
    }
    await h.settle()
    for incident in (await h.client.get("/api/v1/incidents", headers=AUTH)).json()["incidents"]:
        shown = (await h.client.get(f"/api/v1/incidents/{incident['id']}", headers=AUTH)).json()
        assert 0 <= shown["phases_seconds"]["detect"] < 60


async def test_two_services_alerts_open_two_incidents(make_harness: Any) -> None:
    h = await make_harness(api_token=TOKEN)
    alerts = [
        {"labels": {"alertname": "QueueBacklog", "service": service, "instance": instance}}
        for service, instance in (("billing", "a"), ("search", "a"), ("search", "b"))
    ] + [{"labels": {"alertname": "QueueBacklog", "service": "s" * 5_000}}]
    answer = await h.client.post("/webhooks/generic", json={"alerts": alerts})
    assert answer.status_code == 200
    await h.settle()
    listed = (await h.client.get("/api/v1/incidents", headers=AUTH)).json()["incidents"]
    assert sorted((i["service"] or "", i["alert_count"]) for i in listed) == [
        ("", 1),
        ("billing", 1),
        ("search", 2),
    ]
