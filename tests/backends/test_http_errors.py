"""The one HTTP status → RetryableError / FinalError mapping, over real httpx exchanges."""

from __future__ import annotations

import httpx
import pytest

from actions.errors import FinalError, RetryableError
from actions.http_errors import retry_after_seconds, status_error, transport_error


async def answer(status: int, body: str = "said", **headers: str) -> httpx.Response:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=body, headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as client:
        return await client.get("http://control.test/x")


async def failure(raised: type[httpx.TransportError]) -> httpx.TransportError:
    def reply(request: httpx.Request) -> httpx.Response:
        raise raised("no answer", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await client.get("http://control.test/x")
    return caught.value


def quote(response: httpx.Response) -> str:
    return response.text.upper()


@pytest.mark.parametrize("status", [200, 201, 204, 301, 399])
async def test_below_400_is_no_error(status: int) -> None:
    assert status_error("GET x", await answer(status), quote) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
async def test_5xx_is_retryable_quoting_the_server(status: int) -> None:
    error = status_error("GET x", await answer(status, "db down"), quote)
    assert isinstance(error, RetryableError)
    assert str(error) == f"GET x answered {status}: DB DOWN"
    assert error.retry_after is None


async def test_429_is_retryable_with_its_retry_after() -> None:
    error = status_error("GET x", await answer(429, "slow down", **{"Retry-After": "7"}), quote)
    assert isinstance(error, RetryableError)
    assert error.retry_after == 7.0
    quiet = status_error("GET x", await answer(429), quote, quote_retryable=False)
    assert str(quiet) == "GET x answered 429"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_other_4xx_are_final_with_the_hint(status: int) -> None:
    error = status_error("GET x", await answer(status, "bad"), quote, hint=" (check it)")
    assert isinstance(error, FinalError)
    assert str(error) == f"GET x answered {status}: BAD (check it)"


@pytest.mark.parametrize(
    ("value", "seconds"), [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), ("Wed, 21 Oct 2026", None)]
)
async def test_retry_after_in_seconds(value: str, seconds: float | None) -> None:
    assert retry_after_seconds(await answer(429, **{"Retry-After": value})) == seconds
    assert retry_after_seconds(await answer(429)) is None


async def test_timeouts_and_failed_connections_are_retryable() -> None:
    timeout = transport_error("GET x", await failure(httpx.ReadTimeout), timeout_s=2.5)
    assert isinstance(timeout, RetryableError)
    assert str(timeout) == "GET x timed out after 2.5s"
    assert str(transport_error("GET x", await failure(httpx.ConnectTimeout))) == "GET x timed out"
    refused = transport_error("GET x", await failure(httpx.ConnectError), unreachable="unreachable")
    assert isinstance(refused, RetryableError)
    assert str(refused) == "GET x unreachable: ConnectError"
    assert (
        str(transport_error("GET x", await failure(httpx.ReadError))) == "GET x failed: ReadError"
    )
