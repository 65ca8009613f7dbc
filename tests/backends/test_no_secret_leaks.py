"""No secret value in any log line, error message or recorded response, even when servers echo.

Every failure path of the Unleash backend, the pager and ``http_request`` runs with all loggers
at DEBUG (httpx and httpcore included, over a real socket as well as a mock transport), and
against servers that repeat the credentials they were sent back in their error bodies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from actions.backends.unleash import UnleashBackend, UnleashConfig
from actions.builtin.http_request import HttpCall, send
from actions.clients.http_policy import AllowlistHttpPolicy
from actions.clients.paging import HttpPager, PagingTarget
from actions.context import ActionContext
from actions.errors import ActionError
from tests.backends.conftest import RecordingServer

SECRETS = {
    "UNLEASH_ADMIN_TOKEN": "*:*.unleash-admin-7f3a9c",
    "PD_KEY": "pd-routing-key-51b0e2",
    "OG_KEY": "og-genie-key-c0ffee",
    "API_TOKEN": "api-bearer-token-d00d",
}


def echoing(status: int, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    """A server that quotes the request (headers and body) back in its error."""

    def handler(request: httpx.Request) -> httpx.Response:
        echoed = f"bad request: {dict(request.headers)} {request.content.decode()}"
        body = {"message": echoed, "details": [{"message": echoed}], "errors": [echoed]}
        return httpx.Response(status, json=body, headers=headers)

    return handler


def timing_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout(f"timed out: {dict(request.headers)}", request=request)


def refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


HANDLERS = [echoing(400), echoing(401), echoing(403), echoing(429, **{"Retry-After": "1"})]
HANDLERS += [echoing(500), echoing(503), timing_out, refusing]


def unleash(http: httpx.AsyncClient, url: str = "http://unleash.test") -> UnleashBackend:
    config = UnleashConfig(url=url, token_env="UNLEASH_ADMIN_TOKEN")
    return UnleashBackend(config, http, environ=SECRETS)


def pager(http: httpx.AsyncClient, url: str = "https://paging.test") -> HttpPager:
    targets = TypeAdapter(dict[str, PagingTarget]).validate_python(
        {
            "pd": {"type": "pagerduty", "routing_key_env": "PD_KEY", "api_url": url},
            "og": {"type": "opsgenie", "api_key_env": "OG_KEY", "api_url": url},
        }
    )
    return HttpPager(targets, http, SECRETS)


def http_context(http: httpx.AsyncClient, allowed: list[str]) -> ActionContext:
    def no_backend(service: str) -> Any:
        raise AssertionError("not used")

    return ActionContext(
        backend_for=no_backend,
        history=None,  # type: ignore[arg-type]
        http=http,
        messenger=None,  # type: ignore[arg-type]
        pager=None,  # type: ignore[arg-type]
        http_policy=AllowlistHttpPolicy(allowed, SECRETS, allowed_secrets=SECRETS),
        actor="U1",
        idempotency_key="exec-1",
    )


def secret_calls(http: httpx.AsyncClient, url: str) -> list[Any]:
    """Every secret-using operation of the backends and the pager, once, against ``url``."""
    return [
        unleash(http, url).read("svc.model"),
        unleash(http, url).write("svc.tools.t.enabled", False, actor="U1", reason="r"),
        pager(http, url).page("pd", "summary", "critical", dedup_key="k"),
        pager(http, url).page("og", "summary", "critical", dedup_key="k"),
    ]


def http_request_call(http: httpx.AsyncClient, url: str, host: str) -> Any:
    call = HttpCall.model_validate(
        {
            "method": "POST",
            "url": f"{url}/hook",
            "headers": {"Authorization": "Bearer ${API_TOKEN}", "X-Key": "${PD_KEY}"},
            "json": {"note": "no secrets in bodies"},
        }
    )
    return send(call, http_context(http, [host]))


def exception_texts(err: BaseException) -> list[str]:
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), *(str(a) for a in current.args)]
        # As a traceback shows it: `raise ... from None` hides the context.
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return texts


def assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} leaked into: {text[:300]}"


async def run_all(coroutines: list[Any]) -> tuple[list[str], int]:
    texts: list[str] = []
    failures = 0
    for coroutine in coroutines:
        try:
            result = await coroutine
        except ActionError as err:
            failures += 1
            texts += exception_texts(err)
        else:
            texts.append(json.dumps(result, default=str))
    return texts, failures


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda h: getattr(h, "__name__", "handler"))
async def test_backend_and_pager_failures_leak_nothing(
    handler: Callable[[httpx.Request], httpx.Response], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        texts, failures = await run_all(secret_calls(http, "https://ops.test"))
    assert failures == 4
    assert_no_secret(texts + [r.getMessage() for r in caplog.records] + [caplog.text])


async def test_failures_over_a_real_socket_leak_nothing(
    recording_server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for status in (401, 500, 400, 429):
        recording_server.answer_echo(status)
    async with httpx.AsyncClient() as http:
        texts, failures = await run_all(secret_calls(http, recording_server.url))
    assert failures == 4
    assert len(recording_server.requests) == 4  # The secrets really went over the wire.
    assert any("httpcore" in r.name for r in caplog.records)  # DEBUG logging was on.
    assert_no_secret(texts + [r.getMessage() for r in caplog.records] + [caplog.text])


@pytest.mark.parametrize(
    "handler",
    [timing_out, refusing, lambda r: httpx.Response(503, text="busy")],
    ids=["timeout", "refused", "503"],
)
async def test_http_request_failures_leak_no_expanded_secret(
    handler: Callable[[httpx.Request], httpx.Response], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        texts, failures = await run_all([http_request_call(http, "https://ops.test", "ops.test")])
    assert failures == 1
    assert_no_secret([*texts, caplog.text])


async def test_http_request_error_does_not_repeat_an_echoed_secret(
    recording_server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recording_server.answer_echo(400)
    async with httpx.AsyncClient() as http:
        texts, failures = await run_all(
            [http_request_call(http, recording_server.url, "127.0.0.1")]
        )
    assert failures == 1
    assert_no_secret([*texts, caplog.text])


async def test_successful_calls_record_no_secret(
    recording_server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recording_server.answer(202, {"status": "success", "dedup_key": "k"})
    recording_server.answer(202, {"requestId": "r"})
    async with httpx.AsyncClient() as http:
        paging = pager(http, recording_server.url)
        results = [
            await paging.page("pd", "s", "critical", dedup_key="k"),
            await paging.page("og", "s", "critical", dedup_key="k"),
        ]
    assert_no_secret([json.dumps(r) for r in results] + [caplog.text])


def test_unset_secret_errors_name_the_variable_only() -> None:
    policy = AllowlistHttpPolicy(["ops.test"], SECRETS, allowed_secrets={"API_TOKEN", "NOPE"})
    with pytest.raises(ActionError) as caught:
        policy.expand_secrets("${API_TOKEN} ${NOPE}")
    assert "NOPE" in str(caught.value)
    assert_no_secret(exception_texts(caught.value))
