"""Paging through PagerDuty Events v2 and Opsgenie: exact requests, and which errors retry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError

from actions.clients.paging import HttpPager, OpsgenieTarget, PagerDutyTarget, PagingTarget
from actions.errors import FinalError, RetryableError
from tests.backends.conftest import RecordingServer

ENV = {"PD_CHECKOUT_KEY": "R0UTINGKEY123", "OG_ML_KEY": "genie-secret-456"}
TARGETS = TypeAdapter(dict[str, PagingTarget]).validate_python(
    {
        "checkout-oncall": {
            "type": "pagerduty",
            "routing_key_env": "PD_CHECKOUT_KEY",
            "api_url": "https://pd.test",
        },
        "ml-platform": {
            "type": "opsgenie",
            "api_key_env": "OG_ML_KEY",
            "api_url": "https://og.test/",
            "responders": [{"type": "team", "name": "ml-platform"}],
        },
    }
)


def pager(handler: Callable[[httpx.Request], httpx.Response]) -> HttpPager:
    return HttpPager(TARGETS, httpx.AsyncClient(transport=httpx.MockTransport(handler)), ENV)


class Recorder:
    def __init__(self, response: httpx.Response) -> None:
        self.requests: list[httpx.Request] = []
        self.response = response

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response


async def test_pagerduty_request_is_an_events_v2_trigger() -> None:
    recorder = Recorder(
        httpx.Response(
            202, json={"status": "success", "message": "Event processed", "dedup_key": "exec-42"}
        )
    )
    result = await pager(recorder).page(
        "checkout-oncall", "Checkout error rate 12%", "critical", dedup_key="exec-42"
    )
    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("POST", "https://pd.test/v2/enqueue")
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {
        "routing_key": "R0UTINGKEY123",
        "event_action": "trigger",
        "dedup_key": "exec-42",
        "payload": {
            "summary": "Checkout error rate 12%",
            "source": "ballast",
            "severity": "critical",
        },
    }
    assert result == {
        "provider": "pagerduty",
        "target": "checkout-oncall",
        "status": 202,
        "dedup_key": "exec-42",
        "message": "Event processed",
    }


async def test_opsgenie_request_is_an_alert_with_genie_key() -> None:
    recorder = Recorder(
        httpx.Response(
            202, json={"result": "Request will be processed", "took": 0.3, "requestId": "r-1"}
        )
    )
    summary = "Support assistant groundedness below 0.7 for 10 minutes; " * 4
    result = await pager(recorder).page("ml-platform", summary, "warning", dedup_key="exec-43")
    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("POST", "https://og.test/v2/alerts")
    assert request.headers["authorization"] == "GenieKey genie-secret-456"
    assert json.loads(request.content) == {
        "message": summary[:130],
        "alias": "exec-43",
        "description": summary,
        "priority": "P3",
        "source": "ballast",
        "responders": [{"type": "team", "name": "ml-platform"}],
    }
    assert result == {
        "provider": "opsgenie",
        "target": "ml-platform",
        "status": 202,
        "alias": "exec-43",
        "request_id": "r-1",
    }


@pytest.mark.parametrize(
    ("severity", "priority"), [("critical", "P1"), ("error", "P2"), ("info", "P5")]
)
async def test_opsgenie_priority_follows_severity(severity: str, priority: str) -> None:
    recorder = Recorder(httpx.Response(202, json={}))
    await pager(recorder).page("ml-platform", "x", severity, dedup_key="k")
    assert json.loads(recorder.requests[0].content)["priority"] == priority


async def test_long_dedup_key_is_hashed_deterministically() -> None:
    recorder = Recorder(httpx.Response(202, json={}))
    await pager(recorder).page("checkout-oncall", "x", "info", dedup_key="k" * 300)
    await pager(recorder).page("checkout-oncall", "x", "info", dedup_key="k" * 300)
    keys = [json.loads(r.content)["dedup_key"] for r in recorder.requests]
    assert keys[0] == keys[1]
    assert len(keys[0]) == 64


async def test_timeout_is_retryable() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    with pytest.raises(RetryableError) as caught:
        await pager(slow).page("checkout-oncall", "x", "critical", dedup_key="k")
    assert str(caught.value) == "PagerDuty (checkout-oncall) timed out after 10s"
    assert caught.value.retry_after is None


async def test_connection_refused_is_retryable() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(
        RetryableError, match=r"^Opsgenie \(ml-platform\) unreachable: ConnectError$"
    ):
        await pager(refused).page("ml-platform", "x", "critical", dedup_key="k")


async def test_500_is_retryable() -> None:
    with pytest.raises(RetryableError) as caught:
        await pager(Recorder(httpx.Response(500, text="oops"))).page(
            "checkout-oncall", "x", "critical", dedup_key="k"
        )
    assert str(caught.value) == "PagerDuty (checkout-oncall) answered 500: oops"


async def test_429_is_retryable_after_the_servers_delay() -> None:
    response = httpx.Response(
        429, headers={"Retry-After": "30"}, json={"message": "Rate limit reached"}
    )
    with pytest.raises(RetryableError) as caught:
        await pager(Recorder(response)).page("ml-platform", "x", "critical", dedup_key="k")
    assert caught.value.retry_after == 30.0
    assert str(caught.value) == "Opsgenie (ml-platform) answered 429: Rate limit reached"


async def test_400_is_final_and_quotes_the_provider() -> None:
    response = httpx.Response(
        400,
        json={
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["'payload.severity' is invalid"],
        },
    )
    with pytest.raises(FinalError) as caught:
        await pager(Recorder(response)).page("checkout-oncall", "x", "critical", dedup_key="k")
    assert str(caught.value) == (
        "PagerDuty (checkout-oncall) answered 400: Event object is invalid; "
        "'payload.severity' is invalid"
    )


async def test_unknown_target_lists_the_configured_ones() -> None:
    with pytest.raises(FinalError) as caught:
        await pager(Recorder(httpx.Response(202))).page("nobody", "x", "critical", dedup_key="k")
    assert str(caught.value) == (
        "paging target 'nobody' is not configured; add it under `paging.targets` in "
        "ballast.yaml (configured: checkout-oncall, ml-platform)"
    )


async def test_unset_key_names_the_variable() -> None:
    empty = HttpPager(TARGETS, httpx.AsyncClient(), {})
    assert empty.missing_secrets() == ["OG_ML_KEY", "PD_CHECKOUT_KEY"]
    with pytest.raises(FinalError) as caught:
        await empty.page("checkout-oncall", "x", "critical", dedup_key="k")
    assert str(caught.value) == (
        "paging target 'checkout-oncall' needs its key in the environment variable "
        "PD_CHECKOUT_KEY, which is not set"
    )


async def test_unknown_severity_is_final() -> None:
    with pytest.raises(FinalError, match="page severity 'sev1' is not one of critical, error"):
        await pager(Recorder(httpx.Response(202))).page("ml-platform", "x", "sev1", dedup_key="k")


async def test_real_http_round_trip(recording_server: RecordingServer) -> None:
    """Over a real socket: the headers and body as a server receives them."""
    recording_server.answer(202, {"status": "success", "dedup_key": "k-1"})
    recording_server.answer(202, {"requestId": "r-9"})
    targets: dict[str, Any] = {
        "pd": PagerDutyTarget(
            type="pagerduty", routing_key_env="PD_CHECKOUT_KEY", api_url=recording_server.url
        ),
        "og": OpsgenieTarget(
            type="opsgenie", api_key_env="OG_ML_KEY", api_url=recording_server.url
        ),
    }
    async with httpx.AsyncClient() as http:
        real = HttpPager(targets, http, ENV)
        assert (await real.page("pd", "down", "error", dedup_key="k-1"))["dedup_key"] == "k-1"
        assert (await real.page("og", "down", "error", dedup_key="k-1"))["request_id"] == "r-9"
    pd, og = recording_server.requests
    assert (pd.method, pd.path, pd.json()["routing_key"]) == (
        "POST",
        "/v2/enqueue",
        "R0UTINGKEY123",
    )
    assert (og.method, og.path, og.headers["Authorization"]) == (
        "POST",
        "/v2/alerts",
        "GenieKey genie-secret-456",
    )
    assert og.json()["priority"] == "P2"


def test_target_config_is_strict() -> None:
    adapter = TypeAdapter(PagingTarget)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        adapter.validate_python({"type": "pagerduty", "routing_key_env": "K", "routing_key": "x"})
    with pytest.raises(
        ValidationError, match="does not match any of the expected tags: 'pagerduty', 'opsgenie'"
    ):
        adapter.validate_python({"type": "victorops", "routing_key_env": "K"})
    with pytest.raises(ValidationError, match="responder type must be one of"):
        adapter.validate_python(
            {"type": "opsgenie", "api_key_env": "K", "responders": [{"type": "group", "id": "1"}]}
        )
    with pytest.raises(ValidationError, match="needs an `id`, `name` or `username`"):
        adapter.validate_python(
            {"type": "opsgenie", "api_key_env": "K", "responders": [{"type": "team"}]}
        )
