"""Checks of a runbook's mitigations against the action registry, before any alert exists.

For each mitigation: a unique id, a known action, params valid for that action's params model,
``mode: auto`` only on a low-risk action and ``undo_after`` only on one that can be undone.
Param errors on a value that is a template are left for after rendering
(``ballast runbooks test`` renders every example alert and calls :func:`params_problems`).

Risk with templated params: literal params count as written. A templated param whose type is
an enum is tried with every member and the highest risk counts, so ``level: "{{ ... }}"`` on
``set_autonomy`` is high risk because it could render to ``full``. Any other templated param
is handed to the action as its template text; built-in actions rate risk from enum fields
only. ``ballast runbooks test`` re-rates the rendered params of every example alert.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import itertools
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from actions import Action, ActionRegistry, Risk
from bot.errors import Diagnostic
from bot.runbooks.model_fields import enum_members, field_name
from bot.runbooks.schema import MitigationMode
from bot.runbooks.schema_errors import Problem, translate, where
from bot.runbooks.templates import is_template
from bot.runbooks.yaml_positions import DataPath, PositionedDocument


def check_mitigations(
    doc: PositionedDocument, registry: ActionRegistry, out: list[Diagnostic]
) -> bool:
    """Ids, actions, params and risk of every mitigation; True if an id repeats."""
    items = doc.data.get("mitigations")
    seen: dict[str, int] = {}
    repeated = False
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        here: DataPath = ("mitigations", i)
        mitigation_id = item.get("id")
        if isinstance(mitigation_id, str):
            if mitigation_id in seen:
                repeated = True
                line, _ = doc.position(("mitigations", seen[mitigation_id], "id"))
                out.append(
                    doc.diagnostic(
                        (*here, "id"),
                        f"{where((*here, 'id'))}: duplicate mitigation id {mitigation_id!r} "
                        f"(first used at line {line}); give each mitigation its own id",
                    )
                )
            else:
                seen[mitigation_id] = i
        name = item.get("action")
        if not isinstance(name, str):
            continue
        action = registry.get(name)
        if action is None:
            close = difflib.get_close_matches(name, list(registry), n=1)
            fix = (
                f"did you mean {close[0]!r}?" if close else f"known actions: {', '.join(registry)}"
            )
            loc = (*here, "action")
            out.append(doc.diagnostic(loc, f"{where(loc)}: unknown action {name!r}; {fix}"))
            continue
        params = item.get("params", {})
        if not isinstance(params, dict):
            continue
        problems = params_problems(action, params, (*here, "params"), skip_templates=True)
        out.extend(doc.diagnostic(at, message, key=on_key) for at, message, on_key in problems)
        if not problems:
            _check_mode(doc, action, params, item, here, out)
    return repeated


def params_problems(
    action: Action[Any], params: dict[str, Any], base: DataPath, *, skip_templates: bool
) -> list[Problem]:
    """Errors of ``params`` against the action's model, as (location, message, on-key).

    With ``skip_templates``, value errors on template strings are dropped: those values are
    checked once rendered. Unknown and missing params are reported either way.
    """
    try:
        action.parse(params)
    except ValidationError as err:
        details = err.errors(include_url=False)
    else:
        return []
    if skip_templates:
        details = [
            detail
            for detail in details
            if detail["type"] in ("missing", "extra_forbidden")
            or not _is_templated(params, tuple(detail["loc"]))
        ]
    return translate(details, action.params_model, base, "param", f" for action {action.name}")


def _check_mode(
    doc: PositionedDocument,
    action: Action[Any],
    params: dict[str, Any],
    item: dict[str, Any],
    here: DataPath,
    out: list[Diagnostic],
) -> None:
    """``auto`` needs a low-risk action; ``undo_after`` needs an action that can be undone."""
    candidates, guessed = _static_params(action, params)
    try:
        risks = [action.risk(candidate) for candidate in candidates]
        reversible = all(action.reversible(candidate) for candidate in candidates)
    except Exception:  # a third-party action's rating may not cope with template text
        risks, reversible = [Risk.HIGH], True
        guessed = True
    worst = max(risks, key=lambda risk: risk.rank)
    if item.get("mode") == MitigationMode.AUTO.value and worst is not Risk.LOW:
        loc = (*here, "mode")
        why = " (a templated param could render to a riskier value)" if guessed else ""
        out.append(
            doc.diagnostic(
                loc,
                f"{where(loc)}: `mode: auto` runs only low-risk actions, but {action.name} "
                f"with these params is {worst.value} risk{why}; use `mode: approve`",
            )
        )
    if item.get("undo_after") is not None and not reversible:
        loc = (*here, "undo_after")
        out.append(
            doc.diagnostic(
                loc,
                f"{where(loc)}: action {action.name} cannot be undone with these params, "
                "so there is nothing to undo after a while; remove `undo_after`",
            )
        )


def _is_templated(value: Any, loc: DataPath) -> bool:
    for part in loc:
        if isinstance(value, str):
            break
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(value, str) and is_template(value)


def _static_params(action: Action[Any], params: dict[str, Any]) -> tuple[list[Any], bool]:
    """Params instances to rate at load time, and whether templated enums were guessed."""
    try:
        return [action.parse(params)], False
    except ValidationError:
        pass
    model = action.params_model
    choices: list[list[tuple[str, Any]]] = []
    for key, raw in params.items():
        name = field_name(model, key)
        if name is None:
            continue
        if isinstance(raw, str) and is_template(raw):
            members = enum_members(model.model_fields[name].annotation)
            choices.append([(name, member) for member in members] or [(name, raw)])
            continue
        with contextlib.suppress(ValidationError):  # fails only for templates inside it
            raw = _adapter(model, name).validate_python(raw)
        choices.append([(name, raw)])
    instances = [model.model_construct(**dict(combo)) for combo in itertools.product(*choices)]
    return instances, any(len(options) > 1 for options in choices)


@functools.cache
def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    # Constraints are left out: literal values were checked with the whole model already.
    annotation = model.model_fields[name].annotation
    if annotation is None:  # pydantic's "no annotation"; a model field always has one
        raise TypeError(f"{model.__name__}.{name} has no type annotation")
    return TypeAdapter(annotation)
