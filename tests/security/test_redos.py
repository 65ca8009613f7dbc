"""A regex cannot stall the server (issue 14, "ReDoS stalls everything").

``victim=~"(a*)*b"`` took 4.3 s on a 27-character label with Python's backtracking ``re``, on
the event loop, and the same unprocessed row stalled the server again after a restart. Runbook
regexes now run on RE2 (:mod:`bot.matching.linear`); these tests check behaviour — the match
completes and is correct, a live server keeps answering — and leave timings to
``bench/matching.py --hostile`` (docs/benchmarks.md).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from bot.matching.matcher import parse_matcher
from bot.runbooks.loader import load_catalog

HOSTILE = {"(a*)*b": True, "(a|a)*b": True, "(a|aa)*c": False, "(a+)+b": True, "(.*a){12}b": True}
"""Each pattern, and whether it matches ``"a" * 1000 + "b"``."""
RUNBOOKS = Path(__file__).with_name("redos_runbooks")


def _finishes(work: Any, seconds: float) -> bool:
    """Run ``work`` in a thread; whether it finished in ``seconds`` (a backtracking engine on
    these inputs needs longer than the universe has, so any generous bound separates them)."""
    done = threading.Event()

    def run() -> None:
        work()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


@pytest.mark.parametrize(("pattern", "ends_in_b"), HOSTILE.items())
def test_hostile_patterns_finish_on_a_1_mib_label(pattern: str, ends_in_b: bool) -> None:
    matcher = parse_matcher(f'victim=~"{pattern}"')
    results: list[bool] = []
    assert _finishes(lambda: results.append(matcher.matches({"victim": "a" * (1 << 20)})), 30)
    assert results == [False]
    assert matcher.matches({"victim": "a" * 1000 + "b"}) is ends_in_b


def test_the_probe_separates_the_engines() -> None:
    """The same probe on Python's ``re`` does not finish (in a child process: ``re`` holds the
    GIL while it backtracks), so the test above can fail."""
    code = "import re; re.compile('^(?:(a*)*b)$').search('a' * 40)"
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", code], timeout=1, check=False)


def test_linear_matching_keeps_go_semantics_on_long_values() -> None:
    matcher = parse_matcher('victim=~"(a*)*b"')
    assert matcher.matches({"victim": "a" * 100_000 + "b"})
    assert not matcher.matches({"victim": "a" * 100_000 + "b\n"})  # $ is the end of the text
    assert not matcher.matches({"victim": "\ud800" + "a" * 10 + "b"})  # no crash on a surrogate


def test_validate_accepts_the_regex_and_runs_it_linearly() -> None:
    load = load_catalog([RUNBOOKS])
    assert load.catalog is not None, [str(d) for d in load.diagnostics]
    assert [rb.id for rb in load.catalog.match({"victim": "a" * 200_000 + "b"})] == [
        "support-assistant/redos-victim"
    ]


@pytest.fixture
def runbooks_dir() -> Path:
    return RUNBOOKS


async def test_a_hostile_label_does_not_stall_the_server(make_harness: Any) -> None:
    """Through the webhook and the engine, as the issue's probe: /healthz still answers and the
    alert is processed (triage, since it does not end in b)."""
    h = await make_harness()
    victim = {
        "labels": {"alertname": "Probe", "service": "support-assistant", "victim": "a" * 900_000}
    }
    assert (await h.client.post("/webhooks/generic", json=victim)).status_code == 200
    await h.settle()
    assert (await h.client.get("/healthz")).status_code == 200
    matching = {"labels": {"alertname": "Probe", "victim": "a" * 16_000 + "b"}}
    assert (await h.client.post("/webhooks/generic", json=matching)).status_code == 200
    await h.settle()
    listed = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    assert sorted(i["runbook_id"] or "" for i in listed) == ["", "support-assistant/redos-victim"]
