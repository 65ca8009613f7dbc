"""The Prometheus client against the real binary: values from the real answer shapes, and
every way Prometheus can fail gives a reading with a reason, never an exception."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.config import PrometheusConfig
from bot.verification.prometheus import PrometheusClient
from tests.verification.prometheus_server import Exporter, PrometheusUnderTest


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def client_of(url: str, http: httpx.AsyncClient, timeout: float = 2.0) -> PrometheusClient:
    return PrometheusClient(PrometheusConfig(url=url, timeout=timeout), http, {})


async def test_vector_scalar_nan_inf_and_shapes(
    prometheus: PrometheusUnderTest, exporter: Exporter, http: httpx.AsyncClient
) -> None:
    exporter.set("client_value", 0.25, case="a")
    exporter.set("client_value", 2.0, case="b")
    prometheus.wait_for('client_value{case="a"}', 0.25)
    prometheus.wait_for('client_value{case="b"}', 2.0)
    client = client_of(prometheus.url, http)
    assert (await client.query('client_value{case="a"}')).value == 0.25
    assert (await client.query("scalar(sum(client_value))")).value == 2.25
    assert (await client.query("1 + 2")).value == 3.0  # a scalar result
    nan = await client.query('client_value{case="a"} * 0 / 0')
    assert nan.value is None
    assert "NaN" in (nan.reason or "")
    inf = await client.query('client_value{case="a"} / 0')
    assert inf.value is None
    assert "+Inf" in (inf.reason or "")
    several = await client.query("client_value")
    assert several.value is None
    assert "2 series" in (several.reason or "")
    empty = await client.query("client_value_missing")
    assert empty.value is None
    assert "no data" in (empty.reason or "")
    bad = await client.query("sum(")
    assert bad.value is None
    assert "400 bad_data" in (bad.reason or "")
    # As of a past moment: before the series existed there is nothing.
    past = await client.query('client_value{case="a"}', at=datetime.now(UTC) - timedelta(hours=1))
    assert past.value is None
    ranged = await client.query_range(
        'client_value{case="a"}', datetime.now(UTC) - timedelta(seconds=30), datetime.now(UTC), 1
    )
    assert ranged.reason is None
    assert ranged.series
    assert ranged.series[0].points[-1][1] == 0.25


async def test_down_and_slow_prometheus_are_unknown_with_the_reason(
    http: httpx.AsyncClient,
) -> None:
    with socket.socket() as idle:  # never accepted, never answered
        idle.bind(("127.0.0.1", 0))
        port = idle.getsockname()[1]
        idle.listen(1)
        slow = await client_of(f"http://127.0.0.1:{port}", http, timeout=0.5).query("up")
    assert slow.value is None
    assert "did not answer in 0.5s" in (slow.reason or "")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = await client_of(f"http://127.0.0.1:{port}", http).query("up")
    assert down.value is None
    assert "cannot reach Prometheus" in (down.reason or "")


async def test_auth_headers_come_from_the_environment() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "scalar", "result": [1, "7"]}}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        bearer = PrometheusConfig(url="http://p.test", bearer_token_env="TOKEN")
        assert (await PrometheusClient(bearer, http, {"TOKEN": "s3"}).query("x")).value == 7
        basic = PrometheusConfig.model_validate(
            {"url": "http://p.test", "basic_auth": {"username": "u", "password_env": "PW"}}
        )
        await PrometheusClient(basic, http, {"PW": "pw"}).query("x")
    assert seen[0].headers["authorization"] == "Bearer s3"
    assert seen[1].headers["authorization"].startswith("Basic ")
    assert seen[0].url.path == "/api/v1/query"
    await asyncio.sleep(0)
