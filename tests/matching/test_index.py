"""The matcher index: same answers as checking every entry, without checking every entry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from bot.matching.index import MatcherIndex
from bot.matching.matcher import Matcher, parse_matcher

CALLS: Counter[str] = Counter()


class CountingMatcher(Matcher):
    """A matcher that counts its evaluations, to see how many entries an alert touched."""

    __slots__ = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        CALLS["matches"] += 1
        return super().matches(labels)


def entry(key: str, *texts: str) -> tuple[str, list[Matcher]]:
    return key, [parse_matcher(text) for text in texts]


def counting(text: str) -> CountingMatcher:
    parsed = parse_matcher(text)
    return CountingMatcher.of(parsed.name, parsed.op, parsed.value)  # type: ignore[return-value]


def test_finds_entries_by_equality_and_checks_their_other_matchers() -> None:
    index = MatcherIndex(
        [
            entry("tools", 'alertname="ToolCallFailureRate"', 'service=~"support-.*"'),
            entry("tools-billing", 'alertname="ToolCallFailureRate"', 'service="billing-bot"'),
            entry("latency", 'alertname="LatencySLOBurn"'),
        ]
    )
    alert = {"alertname": "ToolCallFailureRate", "service": "support-assistant", "tool": "x"}
    assert index.match(alert) == ["tools"]
    assert index.match({**alert, "service": "billing-bot"}) == ["tools-billing"]
    assert index.match({"alertname": "LatencySLOBurn"}) == ["latency"]
    assert index.match({"alertname": "Other"}) == []
    assert index.match({}) == []


def test_returns_every_match_in_the_order_given() -> None:
    index = MatcherIndex(
        [
            entry("c", 'alertname="A"'),
            entry("a", 'service="s"'),
            entry("b", 'alertname="A"', 'service="s"'),
            entry("d", 'env!="prod"'),
        ]
    )
    assert index.match({"alertname": "A", "service": "s"}) == ["c", "a", "b", "d"]


def test_a_literal_alternation_is_filed_under_each_value() -> None:
    index = MatcherIndex([entry("rag", 'service=~"search|chat|support-(eu|us)"', "tier!=free")])
    assert index.anchors() == [("rag", parse_matcher('service=~"search|chat|support-(eu|us)"'))]
    for service in ("search", "chat", "support-eu", "support-us"):
        assert index.match({"service": service}) == ["rag"]
    assert index.match({"service": "support-eu", "tier": "free"}) == []
    assert index.match({"service": "searches"}) == []
    assert index.unindexed_keys() == []


def test_entries_without_an_anchor_are_scanned_and_listed() -> None:
    index = MatcherIndex(
        [
            entry("indexed", 'alertname="A"'),
            entry("not-equal", 'severity!="info"'),
            entry("open-regex", 'service=~".*-prod"'),
            entry("empty-allowed", 'env=~"|prod"'),
            entry("missing-label", 'team=""'),
            entry("everything"),
        ]
    )
    assert index.unindexed_keys() == [
        "not-equal",
        "open-regex",
        "empty-allowed",
        "missing-label",
        "everything",
    ]
    assert index.match({"alertname": "A", "severity": "info", "team": "x"}) == [
        "indexed",
        "empty-allowed",
        "everything",
    ]
    assert index.match({"service": "chat-prod", "env": "prod"}) == [
        "not-equal",
        "open-regex",
        "empty-allowed",
        "missing-label",
        "everything",
    ]


def test_the_least_shared_anchor_is_chosen_and_alertname_wins_ties() -> None:
    index = MatcherIndex(
        [
            entry("s1", 'alertname="ModelErrors"', 'provider="openai"'),
            entry("s2", 'alertname="ModelErrors"', 'provider="anthropic"'),
            entry("s3", 'alertname="ModelErrors"', 'provider=~"azure|vertex"'),
            entry("tie", 'provider="local"', 'alertname="Rare"'),
        ]
    )
    assert [(key, str(anchor)) for key, anchor in index.anchors()] == [
        ("s1", 'provider="openai"'),
        ("s2", 'provider="anthropic"'),
        ("s3", 'provider=~"azure|vertex"'),
        ("tie", 'alertname="Rare"'),
    ]
    assert index.match({"alertname": "ModelErrors", "provider": "vertex"}) == ["s3"]


def test_an_empty_label_value_is_not_an_anchor_hit() -> None:
    index = MatcherIndex([entry("a", 'alertname="A"'), entry("empty", 'alertname=""')])
    assert index.match({"alertname": ""}) == ["empty"]
    assert index.match({}) == ["empty"]


def test_a_key_may_appear_twice_and_len_counts_entries() -> None:
    index = MatcherIndex([entry("k", 'a="1"'), entry("k", 'a="2"'), entry("k", 'a="1"')])
    assert len(index) == 3
    assert index.match({"a": "1"}) == ["k", "k"]


def test_matching_touches_only_the_candidates_not_the_catalog() -> None:
    """10,000 entries, one alert: only the one entry filed under its alertname is checked."""
    entries = [
        (number, [counting(f'alertname="Alert{number}"'), counting('service=~"svc-.*"')])
        for number in range(10_000)
    ]
    index = MatcherIndex(entries)
    CALLS.clear()
    assert index.match({"alertname": "Alert1234", "service": "svc-a", "env": "prod"}) == [1234]
    assert CALLS["matches"] == 1  # the service regex of entry 1234; the anchor is the lookup
    CALLS.clear()
    assert index.match({"alertname": "Unknown", "service": "svc-a"}) == []
    assert CALLS["matches"] == 0


def test_matching_scans_every_unanchored_entry() -> None:
    entries = [(number, [counting(f'service!="svc-{number}"')]) for number in range(100)]
    index = MatcherIndex(entries)
    CALLS.clear()
    assert len(index.match({"service": "svc-7"})) == 99
    assert CALLS["matches"] == 100
