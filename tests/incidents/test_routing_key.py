"""Incident keys: their text is stored, so it must not change, cached or not."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from bot.incidents import routing_key
from bot.incidents.routing_key import (
    KEY_CACHE_SIZE,
    MAX_KEY_CHARS,
    runbook_key,
    triage_group,
    triage_key,
)


def test_keys_keep_the_text_stored_keys_were_made_with() -> None:
    assert (
        runbook_key("llm-latency", {"service": "chat", "model": "m-2"})
        == 'rb:llm-latency|{"model": "m-2", "service": "chat"}'
    )
    assert runbook_key("r", {}) == "rb:r|{}"
    assert runbook_key("r", {"s": "é"}) == 'rb:r|{"s": "\\u00e9"}'
    assert triage_key({"alertname": "HighLatency"}) == "triage:HighLatency"
    assert (
        triage_key({"alertname": "HighLatency", "service": "chat"})
        == 'triage:HighLatency|{"service": "chat"}'
    )


def test_a_group_gives_one_key_whatever_its_order() -> None:
    assert runbook_key("r", {"a": "1", "b": "2"}) == runbook_key("r", {"b": "2", "a": "1"})
    assert triage_key({"service": "s", "alertname": "A"}) == triage_key(
        {"alertname": "A", "service": "s"}
    )


def test_a_long_group_is_keyed_by_a_digest_and_not_remembered() -> None:
    routing_key._runbook_key.cache_clear()
    group = {"tool": "x" * 20_000}
    text = f"rb:r|{json.dumps(group, sort_keys=True)}"
    expected = "rb:sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert runbook_key("r", group) == expected
    assert runbook_key("r", group) == expected
    assert routing_key._runbook_key.cache_info().currsize == 0
    triage = triage_key({"alertname": "A", "service": "s" * 600})
    assert triage.startswith("triage:sha256:")
    assert len(triage) <= MAX_KEY_CHARS


def test_the_cache_is_bounded() -> None:
    routing_key._runbook_key.cache_clear()
    for n in range(KEY_CACHE_SIZE + 100):
        runbook_key("r", {"tool": f"t{n}"})
    assert routing_key._runbook_key.cache_info().currsize == KEY_CACHE_SIZE


labels = st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=300), max_size=4)


@given(labels)
def test_cached_keys_are_the_keys_computed_afresh(group: dict[str, str]) -> None:
    fresh = routing_key.bounded(f"rb:r|{json.dumps(group, sort_keys=True)}")
    assert runbook_key("r", group) == fresh
    assert runbook_key("r", dict(reversed(group.items()))) == fresh
    triage = triage_group({**group, "alertname": "A"})
    rest = {k: v for k, v in triage.items() if k != "alertname"}
    afresh = "triage:A" + ("|" + json.dumps(rest, sort_keys=True) if rest else "")
    assert triage_key(triage) == routing_key.bounded(afresh)
