"""Verify queries and conditions: hostile label values cannot inject PromQL (checked against
the real Prometheus), templates outside quotes are load errors, conditions and verdicts."""

from __future__ import annotations

import httpx
import pytest

from bot.runbooks.conditions import parse_condition
from bot.runbooks.promql import escape_promql_string, promql_template_problems, render_promql
from bot.verification.verdicts import Verdict, judge
from tests.verification.prometheus_server import Exporter, PrometheusUnderTest

HOSTILE = [
    'x"} or vector(1) #',
    'x"}) or on() vector(1) or sum(injected{a="',
    'back\\slash" and\nnewline\ttab\x01',
    "x'} or vector(1)",
    "{{ 7*7 }}",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_label_stays_one_string_literal(
    value: str, prometheus: PrometheusUnderTest, exporter: Exporter
) -> None:
    exporter.set("hostile_probe", 5.0, tool=value)
    exporter.set("hostile_probe", 9.0, tool="other")
    query = render_promql(
        'sum(hostile_probe{tool="{{ labels.tool }}"})', {"labels": {"tool": value}}
    )
    prometheus.wait_for(query, 5.0)  # exactly the series with that label value, nothing else
    body = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": query}, timeout=2).json()
    assert body["status"] == "success"
    assert [r["value"][1] for r in body["data"]["result"]] == ["5"]


def test_escape() -> None:
    assert escape_promql_string('a"b\\c\nd\x7f') == 'a\\"b\\\\c\\nd\\x7f'


@pytest.mark.parametrize(
    ("query", "bad"),
    [
        ('rate(x{tool="{{ labels.tool }}"}[5m])', False),
        ("x{tool={{ labels.tool }}}", True),
        ("x{tool='{{ labels.tool }}'}", True),
        ("x{tool=`{{ labels.tool }}`}", True),
        ('x{a="\\"", tool={{ labels.tool }}}', True),  # an escaped quote does not end it
        ('x # "{{ labels.tool }}"', True),  # inside a comment is not inside a string
        ('{% if 1 %}x{tool="{{ labels.tool }}"}{% endif %}', True),
        ('x{tool="{{ label.tool }}"}', True),  # unknown variable, like titles
    ],
)
def test_template_placement(query: str, bad: bool) -> None:
    assert bool(promql_template_problems(query)) is bad


@pytest.mark.parametrize(
    ("condition", "before", "after", "verdict"),
    [
        ("< 0.05", 0.31, 0.0, Verdict.RECOVERED),
        ("< 0.05", 0.31, 0.30, Verdict.NOT_RECOVERED),  # within the 10% margin
        ("< 0.05", 0.31, 0.5, Verdict.WORSE),
        ("== 0", 3.0, 0.0, Verdict.RECOVERED),
        ("== 0", 3.0, 5.0, Verdict.WORSE),
        ("> 0.9", 0.5, 0.95, Verdict.RECOVERED),
        ("> 0.9", 0.5, 0.3, Verdict.WORSE),
        ("lower than before by 50%", 10.0, 4.0, Verdict.RECOVERED),
        ("lower than before by 50%", 10.0, 6.0, Verdict.NOT_RECOVERED),
        ("lower than before by 50%", 10.0, 12.0, Verdict.WORSE),
        ("lower than before by 50%", None, 1.0, Verdict.UNKNOWN),
        ("higher than before by 20%", 1.0, 1.3, Verdict.RECOVERED),
        ("< 0.05", 0.31, None, Verdict.UNKNOWN),
        ("< 0.05", None, 0.0, Verdict.RECOVERED),  # a threshold needs no before
    ],
)
def test_judge(condition: str, before: float | None, after: float | None, verdict: Verdict) -> None:
    assert judge(parse_condition(condition), before, after)[0] is verdict


@pytest.mark.parametrize("text", ["<", "< x", "about 5", "lower than before by 150%", "= 0"])
def test_bad_conditions(text: str) -> None:
    with pytest.raises(ValueError, match=r"condition|percentage"):
        parse_condition(text)
