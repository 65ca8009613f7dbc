"""How long matching one alert takes as the runbook catalog grows, and loading 1,000 files.

Run ``python bench/matching.py`` (a table) or ``python bench/matching.py --json``. Targets from
issue 2: at most 20 µs median per alert at 10,000 runbooks, within 2x of that from 100 to
100,000 runbooks (so no linear scan), and at most 1 s to load and validate 1,000 runbook files.

The synthetic catalog is shaped like a real one: every runbook has an ``alertname`` equality,
a ``service`` regex, an ``env!=`` and a ``severity`` alternation; about four runbooks share
each alertname (one per service); two catch-all runbooks have no indexable matcher. Alerts
carry eight labels; 30% reach a runbook, 20% share an alertname but not the service, and half
have an alertname no runbook knows. Each alert is timed on its own with ``perf_counter_ns``
(garbage collection paused while timing), through ``Catalog.match`` and, for comparison,
``MatcherIndex.match`` alone. Loading starts each of its runs with cold regex caches.

``--hostile`` (issue 14): the 10,000-runbook catalog plus runbooks whose only matcher is one of
the classic catastrophic-backtracking patterns (:data:`HOSTILE_PATTERNS`) on a ``victim``
label, so every alert is tested against all of them; one alert carries a 1 MiB ``victim``.
Timed: ``Catalog.match`` and rendering a title template over that alert (the engine's work for
one alert on the event loop), and, for contrast, Python's backtracking ``re`` on 16-24
characters.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.matching.goregex import translate
from bot.matching.index import MatcherIndex
from bot.runbooks.schema import Runbook
from bot.runbooks.snapshot import Catalog

SIZES = (10, 100, 1_000, 10_000, 100_000)
HOSTILE_PATTERNS = ("(a*)*b", "(a|a)*b", "(a|aa)*c", "(a+)+b", "(.*a){12}b", "(?:a?){25}a{25}")
MIB = 1 << 20
SERVICES = 97
RUNBOOKS_PER_ALERTNAME = 4


def runbook_data(number: int, alertnames: int) -> dict[str, Any]:
    service = f"svc{number % SERVICES}"
    return {
        "id": f"{service}/runbook-{number}",
        "title": "{{ labels.alertname }} on {{ labels.service }}",
        "service": service,
        "severity": "sev2",
        "owners": ["@oncall"],
        "match": [
            f'alertname="Alert{number % alertnames}"',
            f'service=~"{service}-.*"',
            'env!="staging"',
            'severity=~"critical|page"',
        ],
        "symptom": "Something users notice.",
        "business_impact": "Someone loses something.",
    }


def catch_all(number: int) -> dict[str, Any]:
    return {
        **runbook_data(number, 1),
        "id": f"catch-all/runbook-{number}",
        "match": ['severity!="info"', f'team=~"team{number}.*"'],
    }


def build_runbooks(size: int) -> list[Runbook]:
    alertnames = max(1, size // RUNBOOKS_PER_ALERTNAME)
    data = [runbook_data(number, alertnames) for number in range(size - 2)]
    data += [catch_all(0), catch_all(1)]
    return [Runbook.model_validate(item) for item in data]


def build_alerts(size: int, count: int, rng: random.Random) -> list[dict[str, str]]:
    alertnames = max(1, size // RUNBOOKS_PER_ALERTNAME)
    alerts = []
    for _ in range(count):
        number = rng.randrange(max(1, size - 2))
        roll = rng.random()
        if roll < 0.3:
            alertname, service = f"Alert{number % alertnames}", f"svc{number % SERVICES}-prod"
        elif roll < 0.5:
            alertname, service = f"Alert{number % alertnames}", "unrelated-prod"
        else:
            alertname, service = f"Unknown{number}", f"svc{number % SERVICES}-prod"
        alerts.append(
            {
                "alertname": alertname,
                "service": service,
                "env": rng.choice(["prod", "prod", "staging"]),
                "severity": rng.choice(["critical", "page", "warning"]),
                "instance": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}:9090",
                "job": "ai-gateway",
                "team": f"team{rng.randrange(50)}",
                "region": rng.choice(["eu-west-1", "us-east-1"]),
            }
        )
    return alerts


def time_each(
    match: Callable[[Mapping[str, str]], Sequence[object]],
    alerts: Sequence[Mapping[str, str]],
    rounds: int,
) -> tuple[list[int], float]:
    """Nanoseconds per call, one sample per alert per round; and the mean number of matches."""
    for alert in alerts:  # warm up
        match(alert)
    matched = sum(len(match(alert)) for alert in alerts) / len(alerts)
    samples: list[int] = []
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for alert in alerts:
                start = clock()
                match(alert)
                samples.append(clock() - start)
    finally:
        gc.enable()
    return samples, matched


def summary(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": ordered[len(ordered) // 2] / 1000,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000,
    }


def bench_matching(sizes: Sequence[int], alert_count: int, rounds: int) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        rng = random.Random(size)
        started = time.perf_counter()
        runbooks = build_runbooks(size)
        catalog = Catalog(runbooks)
        built = time.perf_counter() - started
        index = MatcherIndex((runbook.id, runbook.matchers) for runbook in runbooks)
        alerts = build_alerts(size, alert_count, rng)
        via_catalog, matched = time_each(catalog.match, alerts, rounds)
        via_index, _ = time_each(index.match, alerts, rounds)
        results.append(
            {
                "runbooks": size,
                "build_s": round(built, 3),
                "unindexed": len(index.unindexed_keys()),
                "matches_per_alert": round(matched, 2),
                "timed_alerts": len(via_catalog),
                "catalog": summary(via_catalog),
                "index": summary(via_index),
            }
        )
    return results


def runbook_file(number: int, template: str) -> str:
    return (
        template.replace("support-assistant/tool-failure-spike", f"team{number}/tool-failures")
        .replace("ToolCallFailureRate", f"ToolCallFailureRate{number}")
        .replace("support-assistant", f"support-assistant{number}")
        .replace("support-.*", f"support-assistant{number}")
    )


def bench_loading(files: int, repeats: int) -> dict[str, Any]:
    from bot.runbooks.loader import load_catalog  # only this part needs the loader

    template = (Path(__file__).resolve().parents[1] / "tests" / "example_runbook.yaml").read_text()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for number in range(files):
            (root / f"runbook-{number:04d}.yaml").write_text(runbook_file(number, template))
        times = []
        for _ in range(repeats):
            translate.cache_clear()  # every run starts cold, like `ballast runbooks validate`
            re.purge()
            started = time.perf_counter()
            load = load_catalog([root])
            times.append(time.perf_counter() - started)
        if load.catalog is None or load.errors:
            raise SystemExit(
                "the generated runbooks did not load:\n" + "\n".join(map(str, load.errors[:5]))
            )
        return {
            "files": files,
            "loaded": len(load.catalog),
            "repeats": repeats,
            "median_s": round(statistics.median(times), 3),
            "best_s": round(min(times), 3),
        }


def bench_hostile(size: int, repeats: int, label_chars: int = MIB) -> dict[str, Any]:
    from bot.intake.alert import Alert, AlertSource, AlertStatus, template_context
    from bot.runbooks.templates import render_template

    runbooks = build_runbooks(size)
    for number, pattern in enumerate(HOSTILE_PATTERNS):
        runbooks.append(
            Runbook.model_validate(
                {
                    **runbook_data(number, 1),
                    "id": f"hostile/p{number}",
                    "match": [f'victim=~"{pattern}"'],
                }
            )
        )
    catalog = Catalog(runbooks)
    victim = "a" * label_chars
    labels = {"alertname": "Alert1", "service": "svc1-prod", "env": "prod", "victim": victim}
    alert = Alert("f", AlertStatus.FIRING, labels, datetime.now(UTC), AlertSource.GENERIC)
    title = "{{ labels.alertname }} on {{ labels.service }}: {{ labels.victim }}"
    match_s, render_s = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        found = catalog.match(labels)
        match_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        rendered = render_template(title, template_context(alert))
        render_s.append(time.perf_counter() - started)
    backtracking = {}
    for length in (16, 20, 22, 24):
        pattern = re.compile("^(?:(a*)*b)$")
        started = time.perf_counter()
        pattern.search("a" * length)
        backtracking[length] = round(time.perf_counter() - started, 4)
    return {
        "runbooks": len(runbooks),
        "hostile_patterns": list(HOSTILE_PATTERNS),
        "label_chars": label_chars,
        "matched": len(found),
        "rendered_chars": len(rendered),
        "match_ms_median": round(statistics.median(match_s) * 1000, 2),
        "match_ms_max": round(max(match_s) * 1000, 2),
        "render_ms_median": round(statistics.median(render_s) * 1000, 2),
        "render_ms_max": round(max(render_s) * 1000, 2),
        "python_re_seconds_by_length": backtracking,
    }


def print_table(matching: list[dict[str, Any]], loading: dict[str, Any] | None) -> None:
    print("Matching one alert (µs); Catalog.match, and MatcherIndex.match alone")
    header = f"{'runbooks':>9}  {'median':>7}  {'p99':>7}  {'index med':>9}  {'index p99':>9}"
    print(f"{header}  {'matches':>7}  {'unindexed':>9}  {'build s':>7}")
    for row in matching:
        catalog, index = row["catalog"], row["index"]
        print(
            f"{row['runbooks']:>9,}  {catalog['median_us']:>7.2f}  {catalog['p99_us']:>7.2f}"
            f"  {index['median_us']:>9.2f}  {index['p99_us']:>9.2f}"
            f"  {row['matches_per_alert']:>7.2f}  {row['unindexed']:>9}  {row['build_s']:>7.2f}"
        )
    print(f"({matching[0]['timed_alerts']:,} timed alerts per size)")
    if loading is not None:
        print(
            f"\nLoad + validate {loading['files']:,} runbook files:"
            f" median {loading['median_s']:.3f} s, best {loading['best_s']:.3f} s"
            f" over {loading['repeats']} runs"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="catalog sizes")
    parser.add_argument("--alerts", type=int, default=2_000, help="distinct alerts per size")
    parser.add_argument("--rounds", type=int, default=5, help="times each alert is timed")
    parser.add_argument("--files", type=int, default=1_000, help="runbook files to load")
    parser.add_argument("--skip-load", action="store_true", help="skip the loading benchmark")
    parser.add_argument(
        "--hostile", action="store_true", help="only the 1 MiB label against ReDoS patterns"
    )
    args = parser.parse_args(argv)
    if args.hostile:
        # 1 MiB as the engine would see it without intake's cap; 16,384 is the cap itself.
        results = [bench_hostile(10_000, 5, chars) for chars in (MIB, 16_384)]
        json.dump(results, sys.stdout, indent=2)
        print()
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    matching = bench_matching(sizes, args.alerts, args.rounds)
    loading = None if args.skip_load else bench_loading(args.files, repeats=3)
    if args.json:
        json.dump({"matching": matching, "loading": loading}, sys.stdout, indent=2)
        print()
    else:
        print_table(matching, loading)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
