"""Validate one runbook file's data: the schema, and what the schema alone cannot point at.

:func:`check_runbook` validates against :class:`~bot.runbooks.schema.Runbook` and reports every
problem at its own key or value: schema errors (through :mod:`bot.runbooks.schema_errors`),
matcher syntax (the column of the bad matcher, also inside a comma-separated item), templates,
the order of escalation steps, and the mitigations (:mod:`bot.runbooks.mitigation_checks`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from actions import ActionRegistry
from bot.errors import Diagnostic, MatcherSyntaxError
from bot.runbooks.duration import format_duration, parse_duration
from bot.runbooks.mitigation_checks import check_mitigations
from bot.runbooks.model_fields import fields_of
from bot.runbooks.promql import promql_template_problems
from bot.runbooks.promql_syntax import QuerySite, query_site
from bot.runbooks.schema import Runbook, parse_match_item
from bot.runbooks.schema_errors import show, translate, where
from bot.runbooks.templates import is_template, template_problems
from bot.runbooks.yaml_positions import DataPath, PositionedDocument


def check_shape(doc: PositionedDocument, out: list[Diagnostic]) -> bool:
    """Whether the file holds a mapping of fields; if not, say which fields a runbook needs."""
    if not doc.nodes:
        out.append(Diagnostic(doc.path, 1, 1, "empty file: " + _needs()))
        return False
    if not isinstance(doc.data, dict):
        out.append(
            doc.diagnostic(
                (), f"a runbook file must be a mapping of fields, got {show(doc.data)}; " + _needs()
            )
        )
        return False
    return True


def _needs() -> str:
    return "a runbook needs " + ", ".join(
        f"`{name}:`" for name in fields_of(Runbook, required=True)
    )


def check_runbook(
    doc: PositionedDocument, registry: ActionRegistry, out: list[Diagnostic]
) -> Runbook | None:
    """Validate one mapping; the runbook, or None when the schema rejects it."""
    data: dict[str, Any] = doc.data
    duplicate_ids = check_mitigations(doc, registry, out)
    for loc, text in _template_fields(data):
        out.extend(doc.diagnostic(loc, f"{where(loc)}: {p}") for p in template_problems(text))
    for loc, text in _verify_queries(data):
        out.extend(
            doc.diagnostic(loc, f"{where(loc)}: {p}") for p in promql_template_problems(text)
        )
    for loc, text in _panel_queries(data):
        if "{{" in text or "{%" in text:
            out.append(
                doc.diagnostic(
                    loc,
                    f"{where(loc)}: scorecard panels are not templated (the same panel is read "
                    "for every incident); write the PromQL as is",
                )
            )
    try:
        return Runbook.model_validate(data)
    except ValidationError as err:
        details = err.errors(include_url=False)
    # List-level validators are re-done here to point at the item at fault, and always run:
    # pydantic skips them when any item of the list is invalid.
    own = {("match",), ("escalation",)} | ({("mitigations",)} if duplicate_ids else set())
    details = [d for d in details if not (d["type"] == "value_error" and tuple(d["loc"]) in own)]
    for at, message, on_key in translate(details, Runbook, (), "field", ""):
        out.append(doc.diagnostic(at, message, key=on_key))
    matchers = data.get("match")
    for index, text in enumerate(matchers if isinstance(matchers, list) else []):
        if isinstance(text, str):
            try:
                parse_match_item(text)
            except MatcherSyntaxError as err:  # the column of the bad matcher inside the item
                out.append(doc.at_column(("match", index), err.column, f"match[{index}]: {err}"))
    out.extend(_escalation_order(doc, data.get("escalation")))
    return None


def _escalation_order(doc: PositionedDocument, steps: Any) -> Iterator[Diagnostic]:
    previous: timedelta | None = None
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        try:
            after = parse_duration(step["after"])
        except (KeyError, TypeError, ValueError):
            continue
        if previous is not None and after <= previous:
            loc = ("escalation", i, "after")
            yield doc.diagnostic(
                loc,
                f"{where(loc)}: {format_duration(after)} comes after a step at "
                f"{format_duration(previous)}; order escalation steps by increasing `after`",
            )
        previous = after


def _verify_queries(data: dict[str, Any]) -> Iterator[tuple[DataPath, str]]:
    """Every ``mitigations[i].verify.checks[j].query`` that is a string."""
    items = data.get("mitigations")
    for i, item in enumerate(items if isinstance(items, list) else []):
        verify = item.get("verify") if isinstance(item, dict) else None
        checks = verify.get("checks") if isinstance(verify, dict) else None
        for j, check in enumerate(checks if isinstance(checks, list) else []):
            if isinstance(check, dict) and isinstance(check.get("query"), str):
                yield ("mitigations", i, "verify", "checks", j, "query"), check["query"]


def query_sites(doc: PositionedDocument) -> list[QuerySite]:
    """Every PromQL query of the runbook that is fit to parse: verify queries whose templates
    are well placed, and its own scorecard panels."""
    data = doc.data
    sites = [
        query_site(doc, loc, text)
        for loc, text in _verify_queries(data)
        if not promql_template_problems(text)
    ]
    sites.extend(
        query_site(doc, loc, text)
        for loc, text in _panel_queries(data)
        if "{{" not in text and "{%" not in text
    )
    return sites


def check_panel_names(
    doc: PositionedDocument,
    runbook: Runbook,
    panels: Mapping[str, Sequence[str]],
    config: str,
    out: list[Diagnostic],
    severity: str = "error",
) -> None:
    """Each name in ``scorecard.show`` must be a panel of the service's scorecard in ``config``."""
    known = list(panels.get(runbook.service, []))
    for i, name in enumerate(runbook.scorecard.show):
        if name in known:
            continue
        loc = ("scorecard", "show", i)
        if not known:
            why = f"service {runbook.service!r} has no scorecard in {config}"
            fix = f"define services.{runbook.service}.scorecard there, or remove it"
        else:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
            why = f"{runbook.service}'s scorecard in {config} has no such panel"
            fix = f"did you mean {close[0]!r}?" if close else f"its panels: {', '.join(known)}"
        message = f"{where(loc)}: unknown panel {name!r}: {why}; {fix}"
        out.append(doc.diagnostic(loc, message, severity=severity))


def _panel_queries(data: dict[str, Any]) -> Iterator[tuple[DataPath, str]]:
    """Every ``scorecard.panels[i].query`` that is a string."""
    scorecard = data.get("scorecard")
    panels = scorecard.get("panels") if isinstance(scorecard, dict) else None
    for i, panel in enumerate(panels if isinstance(panels, list) else []):
        if isinstance(panel, dict) and isinstance(panel.get("query"), str):
            yield ("scorecard", "panels", i, "query"), panel["query"]


def _template_fields(data: dict[str, Any]) -> Iterator[tuple[DataPath, str]]:
    """Every template: the title, dashboard URLs, escalation notify and mitigation params."""
    yield from _templates_in(data.get("title"), ("title",))
    for key, leaf in (("dashboards", "url"), ("escalation", "notify"), ("mitigations", "params")):
        items = data.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict) or leaf not in item:
                continue
            if leaf == "params" and not isinstance(item[leaf], dict):
                continue  # the schema error says params must be a mapping
            yield from _templates_in(item[leaf], (key, i, leaf))


def _templates_in(value: Any, loc: DataPath) -> Iterator[tuple[DataPath, str]]:
    if isinstance(value, str) and is_template(value):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _templates_in(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _templates_in(item, (*loc, index))
