"""The real OpenFeature Python SDK with the PyPI OFREP provider, reading Ballast over HTTP.

What an AI application does: ``OFREPProvider(base_url)`` and ``client.get_boolean_value``.
Provider 0.3 has no cache: every evaluation is one POST. A change made through the Ballast
process the application reads from is seen by the very next evaluation; one made by another
replica (or the CLI) within the store's ``max_staleness`` (0.1 s).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from bot.controls import BuiltinControlStore
from tests.controls.conftest import API_TOKEN, AUTH, LoopbackServer, SyncStore
from tests.e2e.processes import wait_until
from tests.principals import ROSTER

READER = ROSTER["reader"]  # OFREP is closed by default: apps read with a named reader token

TOOL = "support.tools.web_search.enabled"
MODEL = "support.model"


@pytest.fixture
def connect() -> Iterator[Callable[..., OpenFeatureClient]]:
    """An OpenFeature client on its own domain, so tests never share the global provider."""

    def make(url: str, token: str | None = READER.token) -> OpenFeatureClient:
        domain = f"ballast-{uuid.uuid4().hex[:8]}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        provider = OFREPProvider(url, headers_factory=lambda: headers, timeout=5.0)
        api.set_provider(provider, domain=domain)
        return api.get_client(domain=domain)

    yield make
    api.clear_providers()


def put(server: LoopbackServer, key: str, value: bool | str) -> None:
    """A change through Ballast itself (what the executor, Slack and the API do)."""
    response = httpx.put(
        f"{server.url}/api/v1/controls/{key}",
        json={"value": value},  # acts as the principal of AUTH
        headers=AUTH,
        timeout=5,
    )
    assert response.status_code == 200, response.text


def test_application_reads_controls_and_sees_changes_at_once(
    serve: Callable[..., LoopbackServer], connect: Callable[..., OpenFeatureClient]
) -> None:
    server = serve(api_token=API_TOKEN)
    client = connect(server.url)

    # Nothing stored yet: FLAG_NOT_FOUND, and the application keeps its own default.
    missing = client.get_boolean_details(TOOL, True)
    assert (missing.value, missing.error_code, missing.reason) == (
        True,
        ErrorCode.FLAG_NOT_FOUND,
        Reason.ERROR,
    )
    assert client.get_string_value(MODEL, "gpt-4o") == "gpt-4o"

    put(server, TOOL, False)
    put(server, MODEL, "gpt-4o-mini")
    details = client.get_boolean_details(TOOL, True)
    assert (details.value, details.variant, details.reason) == (False, "false", Reason.STATIC)
    assert details.error_code is None
    assert details.flag_metadata == {"version": 1}
    model = client.get_string_details(MODEL, "gpt-4o")
    assert (model.value, model.variant, model.reason) == ("gpt-4o-mini", "gpt-4o-mini", "STATIC")

    # A context (targeting key, attributes) is sent as is and does not change the answer.
    context = EvaluationContext(targeting_key="user-42", attributes={"tier": "gold"})
    assert client.get_boolean_value(TOOL, True, context) is False

    # Every change is visible to the next evaluation: the provider has no cache.
    for value in (True, False, True):
        put(server, TOOL, value)
        assert client.get_boolean_value(TOOL, not value) is value

    # Asking for the wrong type is the application's bug: it gets its default, not a crash.
    wrong = client.get_boolean_details(MODEL, True)
    assert (wrong.value, wrong.error_code) == (True, ErrorCode.TYPE_MISMATCH)


def test_changes_from_another_replica_arrive_within_max_staleness(
    serve: Callable[..., LoopbackServer],
    sync_store: SyncStore,
    connect: Callable[..., OpenFeatureClient],
) -> None:
    """A write by another Ballast replica or the CLI shares no memory with this server."""
    server = serve()
    client = connect(server.url)
    sync_store.run(lambda s: s.write(TOOL, True, actor="a", reason=""))
    wait_until(lambda: client.get_boolean_value(TOOL, False) is True, 2, "the first value")
    changes: list[tuple[Callable[[BuiltinControlStore], Awaitable[object]], bool]] = [
        (lambda s: s.write(TOOL, False, actor="replica-2", reason="disable_tool"), False),
        # Undo of a key that did not exist before: removed, and the default applies again.
        (lambda s: s.clear(TOOL, actor="replica-2", reason="undo"), True),
    ]
    for change, expected in changes:
        sync_store.run(change)
        # How soon is bench/control_staleness.py's; 30 s is a hang guard, not a goal.
        wait_until(lambda e=expected: client.get_boolean_value(TOOL, True) is e, 30, "the change")
    assert client.get_boolean_details(TOOL, True).error_code == ErrorCode.FLAG_NOT_FOUND


def test_bearer_token(
    serve: Callable[..., LoopbackServer],
    sync_store: SyncStore,
    connect: Callable[..., OpenFeatureClient],
) -> None:
    server = serve(ofrep_token="ofrep-secret")
    sync_store.run(lambda s: s.write(TOOL, False, actor="a", reason=""))
    for token in (None, "nope"):
        refused = connect(server.url, token=token).get_boolean_details(TOOL, True)
        assert (refused.value, refused.error_code) == (True, ErrorCode.GENERAL)
        assert refused.error_message == "unauthorized"
    assert connect(server.url, token="ofrep-secret").get_boolean_value(TOOL, True) is False
    # A principal with the reader role reads too (its own revocable token, per app).
    assert connect(server.url).get_boolean_value(TOOL, True) is False


def test_closed_by_default(
    serve: Callable[..., LoopbackServer],
    sync_store: SyncStore,
    connect: Callable[..., OpenFeatureClient],
) -> None:
    """No BALLAST_OFREP_TOKEN: an anonymous app keeps its defaults; a reader reads."""
    server = serve()
    sync_store.run(lambda s: s.write(TOOL, False, actor="a", reason=""))
    refused = connect(server.url, token=None).get_boolean_details(TOOL, True)
    assert (refused.value, refused.error_message) == (True, "unauthorized")
    assert connect(server.url).get_boolean_value(TOOL, True) is False
    opened = serve(insecure_allow_anonymous=True)  # ballast serve --insecure-allow-anonymous
    assert connect(opened.url, token=None).get_boolean_value(TOOL, True) is False
