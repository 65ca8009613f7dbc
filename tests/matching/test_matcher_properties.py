"""Property tests: matchers and the index agree with a plain reference of Alertmanager's rules.

The reference below is written from Alertmanager's documented semantics, independently of
``bot.matching``: a missing label is ``""``, ``=``/``!=`` compare strings, ``=~``/``!~`` match
the whole value. Regexes are drawn from the part of the syntax where Go and Python's ``re``
agree (literals, ``.``, classes, groups, ``|``, quantifiers), so Python's ``re.fullmatch`` can
stand in for Go there; where they differ, ``test_matcher.py`` compares against ``amtool``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.matching.index import MatcherIndex
from bot.matching.matcher import Matcher, parse_matcher

Spec = tuple[str, str, str]

NAMES = ["alertname", "service", "env"]


def reference_matches(spec: Spec, labels: Mapping[str, str]) -> bool:
    name, op, value = spec
    actual = labels.get(name, "")
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    found = re.fullmatch(f"(?:{value})", actual) is not None
    return found if op == "=~" else not found


def reference_catalog(catalog: list[list[Spec]], labels: Mapping[str, str]) -> list[int]:
    return [
        key for key, specs in enumerate(catalog) if all(reference_matches(s, labels) for s in specs)
    ]


# Short values over a tiny alphabet, so random labels and random matchers often meet.
values = st.text(alphabet="ab-.\n", max_size=4)
labels = st.dictionaries(st.sampled_from(NAMES), values, max_size=3)

_atoms = st.sampled_from(["", "a", "b", "-", "ab", "\\.", ".", "[ab]", "[^a]", "[a-c]", "[-a]"])
_quantifiers = st.sampled_from(["*", "+", "?", "{2}", "{0,2}", "{1,}", "*?"])


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map("|".join),
        inner.map(lambda r: f"(?:{r})"),
        inner.map(lambda r: f"({r})"),
        st.tuples(inner, _quantifiers).map(lambda rq: f"(?:{rq[0]}){rq[1]}"),
    )


regexes = st.recursive(_atoms, _compound, max_leaves=6)
specs = st.one_of(
    st.tuples(st.sampled_from(NAMES), st.sampled_from(["=", "!="]), values),
    st.tuples(st.sampled_from(NAMES), st.sampled_from(["=~", "!~"]), regexes),
)
catalogs = st.lists(st.lists(specs, max_size=3), max_size=12)


@settings(max_examples=400, deadline=None)
@given(specs, labels)
def test_matcher_agrees_with_the_reference(spec: Spec, alert: dict[str, str]) -> None:
    matcher = Matcher.of(*spec)
    assert matcher.matches(alert) == reference_matches(spec, alert)
    assert matcher.matches_empty == reference_matches(spec, {})


@settings(max_examples=300, deadline=None)
@given(specs, values)
def test_indexable_values_are_exactly_what_the_matcher_accepts(spec: Spec, value: str) -> None:
    matcher = Matcher.of(*spec)
    accepted = matcher.indexable_values
    if accepted is None:
        return
    assert "" not in accepted
    assert not matcher.matches_empty
    assert matcher.matches({spec[0]: value}) == (value in accepted)
    assert all(reference_matches(spec, {spec[0]: v}) for v in accepted)


@settings(max_examples=300, deadline=None)
@given(catalogs, st.lists(labels, min_size=1, max_size=6))
def test_index_finds_exactly_what_a_scan_finds(
    catalog: list[list[Spec]], alerts: list[dict[str, str]]
) -> None:
    entries = [(key, [Matcher.of(*s) for s in specs]) for key, specs in enumerate(catalog)]
    index = MatcherIndex(entries)
    assert len(index) == len(catalog)
    for alert in alerts:
        scanned = [key for key, ms in entries if all(m.matches(alert) for m in ms)]
        assert index.match(alert) == scanned == reference_catalog(catalog, alert)


# Round trips: Alertmanager's String() form parses back to the same matcher.
label_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,8}", fullmatch=True)
any_values = st.text(max_size=12)


@settings(max_examples=300, deadline=None)
@given(label_names, st.sampled_from(["=", "!="]), any_values)
def test_plain_matchers_round_trip_through_str(name: str, op: str, value: str) -> None:
    matcher = Matcher.of(name, op, value)
    assert parse_matcher(str(matcher)) == matcher


@settings(max_examples=300, deadline=None)
@given(label_names, st.sampled_from(["=~", "!~"]), regexes, labels)
def test_regex_matchers_round_trip_through_str(
    name: str, op: str, pattern: str, alert: dict[str, str]
) -> None:
    matcher = Matcher.of(name, op, pattern)
    again = parse_matcher(str(matcher))
    assert again == matcher
    assert again.matches(alert) == matcher.matches(alert)
