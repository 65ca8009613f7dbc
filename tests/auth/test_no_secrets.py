"""Credentials never leave the request: no token, JWT or password in any log record (every
logger at DEBUG), any row of any table, the timeline, or any error body, whether the credential
was right or wrong."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import BallastConfig
from bot.store.tables import Base
from tests.principals import API_TOKEN, ROSTER

WEBHOOK_TOKEN = "hook-0f3c-secret-value"
WRONG = "wrong-token-9d2e-never-valid"
FAKE_JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA"
ALERT = {"labels": {"alertname": "ToolFailing", "service": "svc-a", "tool": "search"}}


async def test_no_credential_is_logged_stored_or_echoed(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = BallastConfig.model_validate({"teams": {"@oncall": ["U0OWNER2"]}})
    h = await make_harness(api_token=API_TOKEN, webhook_token=WEBHOOK_TOKEN, config=config)
    bodies: list[str] = []
    hook = "/webhooks/generic"
    basic = base64.b64encode(f"am:{WEBHOOK_TOKEN}".encode()).decode()
    wrong_basic = base64.b64encode(f"am:{WRONG}".encode()).decode()
    for headers in (
        {"authorization": f"Bearer {WEBHOOK_TOKEN}"},
        {"authorization": f"Basic {basic}"},
        {"authorization": f"Basic {wrong_basic}"},
        {"authorization": f"Bearer {WRONG}"},
    ):
        response = await h.anonymous.post(hook, json={"alerts": [ALERT]}, headers=headers)
        bodies.append(response.text)
    await h.settle()
    owner = ROSTER["owner1"].headers
    api = {"authorization": f"Bearer {API_TOKEN}"}
    for headers, url, body in (
        (owner, "/api/v1/incidents/1/mitigations/supervised/run", {}),
        (owner, "/api/v1/incidents/1/acknowledge", {"reason": "on it"}),
        (api, "/api/v1/incidents/1/mitigations/supervised/undo", {"actor": "U0OWNER2"}),
        ({"authorization": f"Bearer {WRONG}"}, "/api/v1/incidents/1/resolve", {}),
        ({"authorization": f"Bearer {FAKE_JWT}"}, "/api/v1/incidents/1/resolve", {}),
        (api, "/api/v1/incidents/1/resolve", {"reason": "fixed"}),
    ):
        response = await h.anonymous.post(url, json=body, headers=headers)
        bodies.append(response.text)
    bodies.append(
        (
            await h.anonymous.put("/api/v1/controls/svc-a.model", json={"value": "m"}, headers=api)
        ).text
    )

    secrets = [WEBHOOK_TOKEN, WRONG, FAKE_JWT, API_TOKEN, ROSTER["owner1"].token, basic]
    rows: list[str] = []
    async with h.services.db.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                rows.append(repr(tuple(row)))
    assert any("U0OWNER1" in row for row in rows)  # the principal's person is stored
    assert any("'principal': 'api'" in row for row in rows)  # and the service's name
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert "authentication failed" in logs
    for secret in secrets:
        assert secret not in logs, secret
        assert all(secret not in row for row in rows), secret
        assert all(secret not in body for body in bodies), secret
