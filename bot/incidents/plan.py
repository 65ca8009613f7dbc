"""The mitigation plan of an incident: each runbook mitigation rendered for its alerts.

Rendering happens against the incident's first alert (its group labels are shared by every
alert of the incident). A mitigation whose params do not render or validate stays in the plan,
marked with the reason, so the responder sees why it cannot run instead of not seeing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from actions.registry import ActionRegistry
from bot.errors import TemplateError
from bot.runbooks.schema import Mitigation, Runbook
from bot.runbooks.templates import render_params


@dataclass(frozen=True, slots=True)
class PlannedMitigation:
    mitigation: Mitigation
    params: dict[str, Any] | None
    risk: str | None
    preview: str | None
    reversible: bool | None
    problem: str | None


def plan_mitigations(
    runbook: Runbook, registry: ActionRegistry, context: Mapping[str, object]
) -> list[PlannedMitigation]:
    return [plan_mitigation(m, registry, context) for m in runbook.mitigations]


def plan_mitigation(
    mitigation: Mitigation, registry: ActionRegistry, context: Mapping[str, object]
) -> PlannedMitigation:
    """One mitigation rendered (a request renders only the one it runs)."""
    action = registry.get(mitigation.action)
    if action is None:
        return PlannedMitigation(mitigation, None, None, None, None, "unknown action")
    try:
        rendered = render_params(mitigation.params, context, action.finalize_for)
        params = action.parse(rendered)
    except TemplateError as err:
        return PlannedMitigation(mitigation, None, None, None, None, f"params: {err}")
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        problem = f"params.{where}: {first['msg']}"
        return PlannedMitigation(mitigation, rendered, None, None, None, problem)
    return PlannedMitigation(
        mitigation,
        rendered,
        mitigation.rated(action.risk(params)).value,
        action.describe(params),
        action.reversible(params),
        None,
    )
