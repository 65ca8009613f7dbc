"""The catalog (who wins), atomic reload, the example runner and explain."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from actions import Action, ActionRegistry, default_registry
from bot.errors import PayloadError
from bot.intake.alert import AlertSource
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.explain import explain_labels, explain_payload
from bot.runbooks.loader import load_catalog
from bot.runbooks.schema import Runbook
from bot.runbooks.snapshot import Catalog
from bot.runbooks.testing import run_tests

EXAMPLE = Path(__file__).resolve().parents[1] / "example_runbook.yaml"


def runbook(runbook_id: str, *matchers: str, **extra: Any) -> Runbook:
    data: dict[str, Any] = {
        "id": runbook_id,
        "title": f"{runbook_id} for {{{{ labels.service }}}}",
        "service": "support-assistant",
        "severity": "sev3",
        "owners": ["@ai-platform-oncall"],
        "match": list(matchers),
        "symptom": "Something is off.",
        "business_impact": "Customers notice.",
        **extra,
    }
    return Runbook.model_validate(data)


def example(labels: dict[str, str], expect: str = "match", **extra: Any) -> dict[str, Any]:
    return {"alert": {"labels": labels}, "expect": expect, **extra}


BROAD = runbook("tools/any", 'alertname="ToolCallFailureRate"')
NARROW = runbook("tools/web-search", 'alertname="ToolCallFailureRate"', 'tool="web_search"')
TWIN_B = runbook("tools/b-twin", 'alertname="ToolCallFailureRate"', 'service=~"support-.*"')
TWIN_A = runbook("tools/a-twin", 'alertname="ToolCallFailureRate"', 'service!=""')
WEB = {"alertname": "ToolCallFailureRate", "tool": "web_search", "service": "billing"}


def test_match_sorts_most_matchers_first() -> None:
    catalog = Catalog([BROAD, NARROW])

    assert [rb.id for rb in catalog.match(WEB)] == ["tools/web-search", "tools/any"]
    assert catalog.best(WEB) is NARROW
    assert catalog.best({"alertname": "ToolCallFailureRate", "tool": "x"}) is BROAD


def test_ties_go_to_the_lowest_id_whatever_the_order_given() -> None:
    labels = {"alertname": "ToolCallFailureRate", "service": "support-assistant"}

    for order in ([TWIN_B, TWIN_A], [TWIN_A, TWIN_B]):
        catalog = Catalog([*order, BROAD])
        assert [rb.id for rb in catalog.match(labels)] == [
            "tools/a-twin",
            "tools/b-twin",
            "tools/any",
        ]
        assert catalog.best(labels) is TWIN_A


def test_no_match_gives_none_and_empty() -> None:
    catalog = Catalog([BROAD, NARROW])

    assert catalog.match({"alertname": "Other"}) == []
    assert catalog.best({"alertname": "Other"}) is None


def test_catalog_is_read_only_and_rejects_duplicate_ids() -> None:
    catalog = Catalog([NARROW, BROAD], {"tools/any": Path("a.yaml")})

    assert list(catalog.runbooks) == ["tools/any", "tools/web-search"]
    assert catalog.path_of("tools/any") == Path("a.yaml")
    with pytest.raises(TypeError):
        catalog.runbooks["x"] = BROAD  # type: ignore[index]
    with pytest.raises(KeyError):
        catalog.path_of("tools/web-search")
    with pytest.raises(ValueError, match="'tools/any' appears twice"):
        Catalog([BROAD, BROAD])


def test_specificity_counts_matchers_not_match_items() -> None:
    one_item = runbook(
        "tools/z-one-item", 'alertname="ToolCallFailureRate", tool="web_search", service!=""'
    )
    catalog = Catalog([NARROW, one_item])

    assert (one_item.specificity, NARROW.specificity) == (3, 2)
    assert [rb.id for rb in catalog.match(WEB)] == ["tools/z-one-item", "tools/web-search"]
    assert catalog.best({"alertname": "ToolCallFailureRate", "tool": "web_search"}) is NARROW


def test_matchers_of_every_item_are_indexed_and_explained_one_by_one() -> None:
    mixed = runbook("tools/mixed", '{alertname="ToolCallFailureRate", env="prod"}', 'tool!=""')
    catalog = Catalog([mixed, BROAD])

    assert catalog.unindexed() == []
    assert catalog.best({**WEB, "env": "prod"}) is mixed
    assert catalog.best(WEB) is BROAD
    [check] = [c for c in explain_labels(catalog, WEB).runbooks if c.runbook_id == "tools/mixed"]
    assert (check.specificity, check.matched) == (3, False)
    assert [(m.matcher, m.matched) for m in check.matchers] == [
        ('alertname="ToolCallFailureRate"', True),
        ('env="prod"', False),
        ('tool!=""', True),
    ]


def test_index_agrees_with_checking_every_runbook() -> None:
    catalog = Catalog([BROAD, NARROW, TWIN_A, TWIN_B])
    label_sets = [
        WEB,
        {"alertname": "ToolCallFailureRate"},
        {"alertname": "ToolCallFailureRate", "service": "support-x", "tool": "web_search"},
        {"tool": "web_search"},
        {},
    ]
    for labels in label_sets:
        scanned = [
            rb for rb in catalog.runbooks.values() if all(m.matches(labels) for m in rb.matchers)
        ]
        assert {rb.id for rb in catalog.match(labels)} == {rb.id for rb in scanned}


# --- LiveCatalog ---------------------------------------------------------------------------


def folder_with(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir(exist_ok=True)
    (folder / "rb.yaml").write_text(text)
    return folder


def test_reload_swaps_in_a_good_catalog_and_keeps_it_when_the_next_is_bad(
    tmp_path: Path,
) -> None:
    live = LiveCatalog()
    assert (live.version, len(live.current)) == (0, 0)
    folder = folder_with(tmp_path, EXAMPLE.read_text())

    good = live.reload([folder])

    assert good.catalog is live.current
    assert live.version == 1
    first_loaded_at = live.loaded_at
    folder_with(tmp_path, EXAMPLE.read_text().replace("severity: sev2", "severity: sev9"))

    bad = live.reload([folder])

    assert bad.catalog is None
    assert [d.line for d in bad.errors] == [4]
    assert live.current is good.catalog
    assert live.version == 1
    assert live.loaded_at == first_loaded_at
    assert live.last_load is bad


async def test_areload_loads_off_the_loop_and_serializes_concurrent_reloads(
    tmp_path: Path,
) -> None:
    folder = folder_with(tmp_path, EXAMPLE.read_text())
    live = LiveCatalog(load_catalog([folder]).catalog)
    assert live.version == 1
    held = live.current

    results = await asyncio.gather(*(live.areload([folder]) for _ in range(5)))

    assert all(result.catalog is not None for result in results)
    assert live.version == 6
    assert live.current is results[-1].catalog
    assert held is not live.current  # a reader's snapshot is never mutated under it
    assert list(held.runbooks) == ["support-assistant/tool-failure-spike"]


class GatedRegistry(ActionRegistry):
    """The built-in actions; the first lookup waits for ``release``, inside a load."""

    def __init__(self) -> None:
        super().__init__(default_registry(plugins=False).values())
        self.entered = threading.Event()
        self.release = threading.Event()

    def __getitem__(self, name: str) -> Action[Any]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(10)
        return super().__getitem__(name)


async def test_a_sync_reload_from_another_thread_waits_for_an_areload_in_progress(
    tmp_path: Path,
) -> None:
    folder = folder_with(tmp_path, EXAMPLE.read_text())
    live = LiveCatalog()
    gated = GatedRegistry()
    older = asyncio.create_task(live.areload([folder], gated))
    assert await asyncio.to_thread(gated.entered.wait, 10)  # it has read the old file
    folder_with(tmp_path, EXAMPLE.read_text().replace("tool-failure-spike", "newer"))
    newer = threading.Thread(target=live.reload, args=([folder],))
    newer.start()
    newer.join(timeout=0.2)  # without a shared lock it would finish here, before the older

    gated.release.set()
    await older
    await asyncio.to_thread(newer.join, 10)

    assert list(live.current.runbooks) == ["support-assistant/newer"]
    assert live.version == 2
    assert live.last_load is not None
    assert live.last_load.catalog is live.current


# --- the example runner --------------------------------------------------------------------


def test_runner_passes_the_documented_example() -> None:
    load = load_catalog([EXAMPLE])
    assert load.catalog is not None

    results = run_tests(load.catalog)

    assert [str(r) for r in results] == [
        "PASS support-assistant/tool-failure-spike case 1: matched, title ok",
        "PASS support-assistant/tool-failure-spike case 2: not matched",
    ]
    assert all(r.path == EXAMPLE for r in results)


def test_expect_match_fails_when_another_runbook_wins() -> None:
    loser = runbook("tools/any", 'alertname="ToolCallFailureRate"', tests=[example(WEB)])
    catalog = Catalog([loser, NARROW])

    [result] = run_tests(catalog)

    assert not result.passed
    assert result.reason == "expected match, but tools/web-search won (2 matchers to 1)"


def test_expect_match_fails_on_a_tie_lost_by_id_and_says_so() -> None:
    labels = {"alertname": "ToolCallFailureRate", "service": "support-x"}
    loser = runbook(
        "tools/b-twin",
        'alertname="ToolCallFailureRate"',
        'service=~"support-.*"',
        tests=[example(labels)],
    )

    [result] = run_tests(Catalog([loser, TWIN_A]))

    assert result.reason == (
        "expected match, but tools/a-twin won (2 matchers each, and ties go to the lowest id)"
    )


def test_expect_match_names_the_matcher_that_failed() -> None:
    lonely = runbook(
        "tools/web-search",
        'alertname="ToolCallFailureRate"',
        'tool="web_search"',
        'env="prod"',
        tests=[example(WEB)],
    )

    [result] = run_tests(Catalog([lonely, BROAD]))

    assert result.reason == (
        'expected match, but env="prod" (the alert has no env) did not match; tools/any handles it'
    )


def test_no_match_passes_when_another_runbook_wins_and_fails_when_this_one_does() -> None:
    shadowed = runbook(
        "tools/any", 'alertname="ToolCallFailureRate"', tests=[example(WEB, "no_match")]
    )
    winner = runbook(
        "tools/web-search",
        'alertname="ToolCallFailureRate"',
        'tool="web_search"',
        tests=[example(WEB, "no_match")],
    )

    results = {r.runbook_id: r for r in run_tests(Catalog([shadowed, winner]))}

    assert results["tools/any"].passed
    assert results["tools/any"].reason == "not handled by this runbook (tools/web-search is)"
    assert not results["tools/web-search"].passed
    assert results["tools/web-search"].reason == (
        "expected no match, but this runbook handles the alert"
    )


def test_title_must_render_to_the_expected_text() -> None:
    labels = {"alertname": "ToolCallFailureRate", "service": "billing"}
    rb = runbook(
        "tools/any",
        'alertname="ToolCallFailureRate"',
        tests=[example(labels, title="tools/any for billing"), example(labels, title="nope")],
    )

    first, second = run_tests(Catalog([rb]))

    assert (first.passed, first.reason) == (True, "matched, title ok")
    assert (second.passed, second.reason) == (
        False,
        "title: expected 'nope', got 'tools/any for billing'",
    )


def test_winning_examples_render_params_and_validate_them_after_rendering() -> None:
    rb = runbook(
        "tools/any",
        'alertname="ToolCallFailureRate"',
        dashboards=[{"title": "d", "url": "https://g/{{ labels.region }}"}],
        mitigations=[
            {
                "id": "disable",
                "title": "Disable",
                "action": "disable_tool",
                "params": {"service": "{{ labels.service }}", "tool": "{{ labels.tool }}"},
                "mode": "auto",
            },
            {
                "id": "autonomy",
                "title": "Autonomy",
                "action": "set_autonomy",
                "params": {"service": "support-assistant", "level": "{{ labels.level }}"},
                "mode": "auto",
            },
        ],
        tests=[
            example(
                {
                    "alertname": "ToolCallFailureRate",
                    "service": "Billing Bot",
                    "tool": "web_search",
                    "level": "full",
                }
            )
        ],
    )

    [result] = run_tests(Catalog([rb]))

    assert not result.passed
    assert result.problems == (
        "dashboards[0].url does not render: label 'region' is not set on this alert (its "
        "labels: alertname, level, service, tool); set it in the alert rule, or give a "
        "fallback: {{ labels.region | default('unknown') }}",
        "after rendering, mitigations[0].params.service: 'Billing Bot' is not a valid name: "
        "use lowercase letters, digits, '_' and '-' (up to 63), e.g. web_search",
        "mitigations[1] (autonomy) renders to a high-risk set_autonomy, but `mode: auto` runs "
        "only low-risk actions; use `mode: approve`",
    )
    assert result.reason == "; ".join(result.problems)


# --- explain -------------------------------------------------------------------------------


def test_explain_shows_winner_first_then_other_matches_then_near_misses() -> None:
    other_kind = runbook("other/x", 'alertname="Other"')
    near = runbook("tools/prod-only", 'alertname="ToolCallFailureRate"', 'env="prod"', 'tool!=""')
    catalog = Catalog([BROAD, NARROW, near, other_kind])

    explanation = explain_labels(catalog, WEB)

    assert explanation.winner == "tools/web-search"
    assert [(c.runbook_id, c.matched, c.winner) for c in explanation.runbooks] == [
        ("tools/web-search", True, True),
        ("tools/any", True, False),
        ("tools/prod-only", False, False),
    ]
    near_check = explanation.runbooks[2]
    assert [(m.matcher, m.actual, m.matched) for m in near_check.matchers] == [
        ('alertname="ToolCallFailureRate"', "ToolCallFailureRate", True),
        ('env="prod"', None, False),
        ('tool!=""', "web_search", True),
    ]


def test_explain_payload_detects_alertmanager_and_explains_each_alert() -> None:
    body = {
        "version": "4",
        "groupKey": "{}:{}",
        "status": "firing",
        "receiver": "ballast",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {},
                "startsAt": "2024-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus",
                "fingerprint": f"f{i}",
            }
            for i, labels in enumerate([WEB, {"alertname": "Unrelated"}])
        ],
    }
    catalog = Catalog([BROAD, NARROW])

    explanation = explain_payload(catalog, json.loads(json.dumps(body)))

    assert explanation.source is AlertSource.ALERTMANAGER
    assert [a.winner for a in explanation.alerts] == ["tools/web-search", None]
    assert explanation.alerts[1].runbooks == ()


def test_explain_payload_with_the_wrong_source_raises_payload_error() -> None:
    with pytest.raises(PayloadError):
        explain_payload(Catalog([BROAD]), {"nothing": "here"}, AlertSource.ALERTMANAGER)
