"""The import graph of ``bot/`` and ``actions/`` flows one way, read top-down as the data flow.

An alert meets the packages in this order, and each imports only packages met before it, plus
``store`` and the small shared runtime below everything::

    intake → matching → runbooks → incidents → execution → postmortem → (slack | api) → app → cli
       \\________________________ store, scheduling (timers), runtime _____________________/

``postmortem`` sits below the front ends in the import graph although it is the last step of the
data flow: the front ends show and publish the draft it makes, it never reaches for them.

The graph is built with ``ast`` from every ``import`` in the source, at module level and inside
functions alike (an import moved into a function still couples the two modules; it only hides
the cycle). Imports under ``if TYPE_CHECKING:`` count too, for the same reason: a type-only
dependency is still a dependency, and a backwards one would let mypy's view of a module need
the module above it. Modules collapse to packages: ``bot.<package>`` for the sub-packages,
each top-level module of ``bot`` (``bot.errors``, ``bot.app``…) on its own, and all of
``actions`` as one.

:data:`ALLOWED` is the intended order: for each package, the packages it may import directly.
A new backwards import fails with the file and line that made it; a new package fails until it
is placed in the table.

``matching`` (Alertmanager's matcher language and the matcher index) sits below ``runbooks``:
a runbook's ``match`` items are parsed by it, and the catalog files runbooks in its index.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("bot", "actions")


def _set(*names: str) -> frozenset[str]:
    return frozenset(names)


RUNTIME = _set("bot", "errors", "settings", "logs", "metrics", "runtime", "telemetry")
"""The shared runtime: the package itself (its version), errors, settings, logging, metrics,
``bot/runtime`` (the worker loop, GC tuning) and ``bot/telemetry`` (Ballast's own spans)."""

CORE = RUNTIME | _set("actions", "store", "scheduling", "auth", "changelog")
"""Below everything that follows: the runtime, the actions, the store, the timers and the
principals (bot/auth: roles, tokens, how a caller authenticates)."""

ALLOWED: dict[str, frozenset[str]] = {
    # The runtime imports nothing of ours but itself.
    "bot": _set(),
    "errors": _set(),
    "settings": _set("errors"),
    "metrics": _set(),
    "runtime": _set(),
    # OpenTelemetry spans and the SDK's set-up: the version (the resource) and nothing else.
    "telemetry": _set("bot"),
    "logs": _set("settings"),
    # The actions and their control planes never import bot/.
    "actions": _set(),
    # Payload → Alert.
    "intake": RUNTIME,
    # Tables, queries, migrations; the inbox keeps parsed alerts.
    "store": RUNTIME | _set("intake"),
    # Principals: roles, the auth: schema, tokens, OIDC, the trusted proxy. Below config.
    "auth": RUNTIME,
    # Timers: rows in the store, fired once cluster-wide.
    "scheduling": RUNTIME | _set("store"),
    # The change log: what changed in an AI system, from pipelines, people and controls.
    "changelog": RUNTIME | _set("store"),
    # Ballast's own control store (a control plane the actions can act on).
    "controls": RUNTIME | _set("actions", "store", "changelog"),
    # Alertmanager matchers (RE2 semantics) and the matcher index: know nothing of runbooks.
    "matching": RUNTIME,
    # Runbook schema, loader, checks, tests, the catalog (matched through the index), explain.
    "runbooks": RUNTIME | _set("actions", "intake", "matching"),
    # ballast.yaml: action backends' settings and runbook durations.
    "config": RUNTIME | _set("actions", "runbooks", "matching", "auth"),
    # Runbooks from a git remote: the git CLI, the working copy, the syncer.
    "gitsync": RUNTIME | _set("actions", "intake", "runbooks", "matching", "config"),
    # Dedup, lifecycle, timeline, escalation, read models.
    "incidents": CORE | _set("intake", "runbooks", "matching", "config"),
    # Plan, policy, executor, journal; a control in the built-in store is written in the
    # claim's own transaction (bot/controls, below it).
    "execution": CORE | _set("intake", "runbooks", "matching", "config", "incidents", "controls"),
    # Did it work: Prometheus queries, verdicts, mitigation ladders (through the executor).
    "verification": CORE
    | _set("intake", "runbooks", "matching", "config", "incidents", "execution"),
    # Release gates: open incidents, freezes, eval scores, owners' approvals.
    "gates": CORE | _set("intake", "runbooks", "matching", "config", "incidents", "execution"),
    # Drafts from the facts of an incident.
    "postmortem": CORE | _set("intake", "runbooks", "matching", "config", "incidents", "execution"),
    # The front ends translate requests into calls of the core. The API also serves Slack's
    # HTTP endpoint and holds its delivery worker, so it may import slack; never the reverse.
    "slack": CORE
    | _set(
        "intake",
        "runbooks",
        "matching",
        "config",
        "controls",
        "incidents",
        "execution",
        "postmortem",
        "gates",
    ),
    "api": CORE
    | _set(
        "verification",
        "intake",
        "runbooks",
        "matching",
        "config",
        "gitsync",
        "controls",
        "incidents",
        "execution",
        "postmortem",
        "slack",
        "gates",
    ),
    # The web console: pages over the same handlers and services as the API (it imports the
    # API's Services and handlers so a refusal in the browser is the API's refusal).
    "web": CORE
    | _set(
        "api",
        "verification",
        "intake",
        "runbooks",
        "matching",
        "config",
        "controls",
        "incidents",
        "execution",
        "postmortem",
    ),
    # A runnable demo stack: separate processes, talks HTTP only.
    "demo": RUNTIME | _set("auth"),
    # Wiring: builds every long-lived object.
    "app": CORE
    | _set(
        "intake",
        "runbooks",
        "matching",
        "config",
        "gitsync",
        "controls",
        "incidents",
        "execution",
        "postmortem",
        "slack",
        "api",
        "web",
        "verification",
        "gates",
    ),
    # The command line starts the app, runs the demo and prints the API's JSON shapes.
    "cli": CORE
    | _set(
        "verification",
        "intake",
        "runbooks",
        "matching",
        "config",
        "gitsync",
        "controls",
        "incidents",
        "execution",
        "postmortem",
        "api",
        "app",
        "demo",
        "gates",
    ),
    "__main__": _set("cli"),
}
NOT_YET: frozenset[str] = _set()
"""Placed in the table before it exists."""

CORE_PACKAGES = _set("incidents", "store", "matching", "runbooks", "execution", "scheduling")
"""The engine, the store, matching and execution: nothing of Slack, ours or the SDK's."""

SLACK_LIBRARIES = _set("slack_bolt", "slack_sdk")


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module: ours resolved to a module that exists, else as written
    path: Path  # relative to the repository
    line: int
    type_only: bool = False

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def package_of(module: str) -> str:
    """``actions.x.y`` → ``actions``; ``bot.incidents.engine`` → ``incidents``;
    ``bot.errors`` → ``errors``; ``bot`` → ``bot``."""
    parts = module.split(".")
    if parts[0] == "actions":
        return "actions"
    return parts[1] if len(parts) > 1 else parts[0]


def _modules(repo: Path) -> dict[str, Path]:
    found = {}
    for root in ROOTS:
        for path in sorted((repo / root).rglob("*.py")):
            parts = list(path.relative_to(repo).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def collect_imports(repo: Path = REPO) -> list[Import]:
    """Every import in ``bot/`` and ``actions/``, anywhere in the module."""
    modules = _modules(repo)
    found: list[Import] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        type_only = _type_checking_lines(tree)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    stem = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    stem = node.module or ""
                # `from bot.store import incidents` imports the module bot.store.incidents.
                targets = [
                    f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem
                    for alias in node.names
                ]
            else:
                continue
            for target in dict.fromkeys(targets):  # once per module a statement names
                resolved = target
                while resolved.split(".")[0] in ROOTS and resolved not in modules:
                    resolved = resolved.rpartition(".")[0]
                found.append(
                    Import(
                        module,
                        resolved or target,
                        path.relative_to(repo),
                        node.lineno,
                        node.lineno in type_only,
                    )
                )
    return found


def _ours(imports: Iterable[Import]) -> Iterator[Import]:
    return (i for i in imports if i.target.split(".")[0] in ROOTS)


def _describe(edge: Import) -> str:
    how = ", type only" if edge.type_only else ""
    return f"{edge.where} ({edge.source} imports {edge.target}{how})"


def layering_violations(
    imports: Iterable[Import], allowed: Mapping[str, frozenset[str]] = ALLOWED
) -> list[str]:
    problems = []
    for edge in _ours(imports):
        source, target = package_of(edge.source), package_of(edge.target)
        if source == target:
            continue
        if source not in allowed:
            problems.append(f"{edge.where}: package {source!r} is not placed in ALLOWED")
        elif target not in allowed[source]:
            problems.append(
                f"{_describe(edge)}: {source} may not import {target}; "
                f"{source} may import only: {', '.join(sorted(allowed[source])) or 'nothing'}"
            )
    return problems


def _graph(edges: Iterable[tuple[str, str, Import]]) -> dict[str, dict[str, Import]]:
    graph: dict[str, dict[str, Import]] = defaultdict(dict)
    for source, target, edge in edges:
        if source != target:
            graph[source].setdefault(target, edge)
    return graph


def find_cycles(graph: Mapping[str, Mapping[str, Import | None]]) -> list[list[str]]:
    """One cycle through each strongly connected component with more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graphs here are a few hundred nodes
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: Mapping[str, Mapping[str, object]], component: set[str]) -> list[str]:
    """A shortest cycle from the component's first node back to itself (breadth first)."""
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, {})):
                if nxt not in component:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle in the component {component}")  # pragma: no cover


def render_cycle(cycle: list[str], graph: Mapping[str, Mapping[str, Import]]) -> str:
    steps = [f"{a} → {b}  ({graph[a][b].where})" for a, b in itertools.pairwise(cycle)]
    return "cycle: " + " → ".join(cycle) + "\n    " + "\n    ".join(steps)


def package_cycles(imports: Iterable[Import]) -> list[str]:
    graph = _graph((package_of(i.source), package_of(i.target), i) for i in _ours(imports))
    return [render_cycle(cycle, graph) for cycle in find_cycles(graph)]


def module_cycles(imports: Iterable[Import]) -> list[str]:
    graph = _graph((i.source, i.target, i) for i in _ours(imports))
    return [render_cycle(cycle, graph) for cycle in find_cycles(graph)]


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    found = collect_imports()
    assert len(found) > 500, "the scan found too few imports; is REPO right?"
    return found


# ---- the rules --------------------------------------------------------------------------


def test_no_package_cycle(imports: list[Import]) -> None:
    cycles = package_cycles(imports)
    assert not cycles, "\n".join(cycles)


def test_no_module_cycle(imports: list[Import]) -> None:
    cycles = module_cycles(imports)
    assert not cycles, "\n".join(cycles)


def test_every_import_follows_the_layering(imports: list[Import]) -> None:
    problems = layering_violations(imports)
    assert not problems, "backwards imports:\n" + "\n".join(problems)


def test_actions_import_nothing_of_bot(imports: list[Import]) -> None:
    wrong = [
        _describe(i)
        for i in imports
        if package_of(i.source) == "actions" and i.target.split(".")[0] == "bot"
    ]
    assert not wrong, "actions/ must not import bot/:\n" + "\n".join(wrong)


def test_the_core_imports_nothing_of_slack(imports: list[Import]) -> None:
    wrong = [
        _describe(i)
        for i in imports
        if i.source.startswith("bot.")
        and package_of(i.source) in CORE_PACKAGES
        and (
            i.target.split(".")[0] in SLACK_LIBRARIES
            or (i.target.startswith("bot.") and package_of(i.target) == "slack")
        )
    ]
    assert not wrong, "the core must not know about Slack:\n" + "\n".join(wrong)


def test_only_bot_slack_imports_the_slack_libraries(imports: list[Import]) -> None:
    wrong = [
        _describe(i)
        for i in imports
        if i.target.split(".")[0] in SLACK_LIBRARIES and not i.source.startswith("bot.slack.")
    ]
    assert not wrong, "only bot/slack may import slack_bolt or slack_sdk:\n" + "\n".join(wrong)


def test_every_package_is_placed(imports: list[Import]) -> None:
    packages = {package_of(m) for m in _modules(REPO)}
    assert packages - ALLOWED.keys() == set(), "place these packages in ALLOWED"
    assert ALLOWED.keys() - packages <= NOT_YET, "ALLOWED names packages that do not exist"


def test_the_table_itself_is_an_order() -> None:
    graph = {source: dict.fromkeys(targets) for source, targets in ALLOWED.items()}
    assert find_cycles(graph) == []
    unknown = {t for targets in ALLOWED.values() for t in targets} - ALLOWED.keys()
    assert not unknown


# ---- the checker can fail ---------------------------------------------------------------


def test_a_backwards_import_is_reported_with_its_file_and_line() -> None:
    backwards = Import(
        "bot.store.incidents", "bot.incidents.lifecycle", Path("bot/store/incidents.py"), 16
    )
    forwards = Import(
        "bot.incidents.engine", "bot.store.incidents", Path("bot/incidents/engine.py"), 43
    )
    assert layering_violations([forwards]) == []
    [problem] = layering_violations([forwards, backwards])
    assert problem.startswith(
        "bot/store/incidents.py:16 (bot.store.incidents imports bot.incidents.lifecycle): "
        "store may not import incidents;"
    )
    [cycle] = package_cycles([forwards, backwards])
    assert cycle.splitlines()[0] == "cycle: incidents → store → incidents"
    assert "bot/store/incidents.py:16" in cycle


def test_imports_inside_functions_and_type_checking_blocks_are_seen(tmp_path: Path) -> None:
    (tmp_path / "bot" / "store").mkdir(parents=True)
    (tmp_path / "bot" / "incidents").mkdir()
    (tmp_path / "actions").mkdir()
    for folder in ("bot", "bot/store", "bot/incidents", "actions"):
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "bot" / "incidents" / "lifecycle.py").write_text("")
    (tmp_path / "bot" / "store" / "rows.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..incidents.lifecycle import X\n"
        "def f():\n"
        "    from bot.incidents import lifecycle\n"
    )
    found = [i for i in collect_imports(tmp_path) if i.target.startswith("bot.")]
    assert [(i.target, i.line, i.type_only) for i in found] == [
        ("bot.incidents.lifecycle", 3, True),
        ("bot.incidents.lifecycle", 5, False),
    ]
    assert len(layering_violations(found)) == 2
