"""Checking a flagd flag document the way flagd would resolve it, before anyone reads it.

``openfeature-flagd-core`` (what the Python in-process/file provider uses) accepts a
``defaultVariant`` that is not a variant, unknown JsonLogic operators and mixed variant types,
and fails only when a flag is evaluated; a file provider meeting a document it cannot parse
keeps the last good flags without a word. So every flag is checked here: state, variants of
one type, ``defaultVariant`` among them, targeting an object using only operators flagd knows
(``$ref`` resolved against ``$evaluators``). Where flagd-core is installed, the document is
also loaded into it and every flag resolved once, exactly as a provider would.
"""

from __future__ import annotations

import json
from typing import Any

from actions.backends.base import FlagValue

# JsonLogic as flagd evaluates it, plus flagd's own operators.
KNOWN_OPERATORS = frozenset(
    {
        "if", "?:", "and", "or", "!", "!!", "==", "===", "!=", "!==", ">", ">=", "<", "<=",
        "%", "*", "+", "-", "/", "cat", "in", "log", "max", "min", "merge", "missing",
        "missing_some", "substr", "var", "map", "filter", "reduce", "all", "some", "none",
        "fractional", "starts_with", "ends_with", "sem_ver",
    }
)  # fmt: skip
_MAX_PROBLEMS = 10


class FlagdDocumentError(ValueError):
    """The document (or one flag) is not something flagd would serve as written."""


def same_value(a: object, b: object) -> bool:
    """Equal and of the same JSON type (``True == 1`` in Python, not in a flag)."""
    return type(a) is type(b) and a == b


def json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict | list):
        return "object"
    return "null"


def resolve_default(key: str, flag: Any) -> FlagValue | None:
    """What a provider serves for a static flag: the default variant's value.

    None when the flag is DISABLED (the application uses its own default). Raises
    ``FlagdDocumentError`` when the flag is malformed or does not hold a bool or string.
    """
    problems = flag_problems(key, flag, {})
    if problems:
        raise FlagdDocumentError("; ".join(problems))
    if flag["state"] == "DISABLED":
        return None
    value = flag["variants"][flag["defaultVariant"]]
    if not isinstance(value, bool | str):
        raise FlagdDocumentError(f"flags.{key} holds a {json_type(value)}, not a bool or string")
    return value


def validate_document(document: Any) -> None:
    """Raise ``FlagdDocumentError`` naming every problem (up to ten) in the document."""
    if not isinstance(document, dict) or not isinstance(document.get("flags"), dict):
        raise FlagdDocumentError("the document needs a top-level `flags` object")
    evaluators = document.get("$evaluators", {})
    problems: list[str] = []
    if not isinstance(evaluators, dict):
        problems.append("`$evaluators` must be an object")
        evaluators = {}
    problems.extend(_metadata_problems("metadata", document.get("metadata")))
    for key, flag in document["flags"].items():
        problems.extend(flag_problems(key, flag, evaluators))
    if problems:
        more = len(problems) - _MAX_PROBLEMS
        text = "; ".join(problems[:_MAX_PROBLEMS])
        raise FlagdDocumentError(text + (f" (and {more} more)" if more > 0 else ""))
    _resolve_with_flagd_core(document)


def flag_problems(key: str, flag: Any, evaluators: dict[str, Any]) -> list[str]:
    where = f"flags.{key}"
    if not isinstance(flag, dict):
        return [f"{where} must be an object"]
    problems: list[str] = []
    state = flag.get("state")
    if state not in ("ENABLED", "DISABLED"):
        problems.append(f"{where}.state must be ENABLED or DISABLED, got {state!r}")
    variants = flag.get("variants")
    if not isinstance(variants, dict) or not variants:
        return [*problems, f"{where}.variants must be a non-empty object"]
    types = sorted({json_type(v) for v in variants.values()})
    if "null" in types:
        problems.append(f"{where}.variants may not hold null")
    elif len(types) > 1:
        problems.append(f"{where}.variants mix types ({', '.join(types)}); use one type per flag")
    default = flag.get("defaultVariant")
    if not isinstance(default, str) or default not in variants:
        names = ", ".join(variants)
        problems.append(f"{where}.defaultVariant {default!r} is not one of its variants ({names})")
    if "targeting" in flag:
        targeting = flag["targeting"]
        if not isinstance(targeting, dict):
            problems.append(f"{where}.targeting must be an object")
        else:
            problems.extend(_operator_problems(f"{where}.targeting", targeting, evaluators, ()))
    problems.extend(_metadata_problems(f"{where}.metadata", flag.get("metadata")))
    return problems


def _operator_problems(
    where: str, node: Any, evaluators: dict[str, Any], seen: tuple[str, ...]
) -> list[str]:
    """Unknown operators anywhere in a JsonLogic tree (any one-key object is an operation)."""
    if isinstance(node, list):
        return [p for item in node for p in _operator_problems(where, item, evaluators, seen)]
    if not isinstance(node, dict) or len(node) != 1:
        return []
    op, args = next(iter(node.items()))
    if op == "$ref":
        if not isinstance(args, str) or args not in evaluators:
            return [f"{where} refers to an unknown evaluator {args!r} (see `$evaluators`)"]
        if args in seen:
            return [f"{where}: evaluator {args!r} refers to itself"]
        return _operator_problems(where, evaluators[args], evaluators, (*seen, args))
    if op not in KNOWN_OPERATORS:
        return [f"{where} uses {op!r}, which flagd does not know"]
    return _operator_problems(where, args, evaluators, seen)


def _metadata_problems(where: str, metadata: Any) -> list[str]:
    if metadata is None:
        return []
    if not isinstance(metadata, dict):
        return [f"{where} must be an object"]
    return [
        f"{where}.{name} must be a string, number or boolean"
        for name, value in metadata.items()
        if json_type(value) not in ("boolean", "string", "number")
    ]


def _resolve_with_flagd_core(document: dict[str, Any]) -> None:
    """Load into flagd-core and resolve each flag once, if flagd-core is installed."""
    try:
        from openfeature.contrib.tools.flagd.core import FlagdCore
        from openfeature.evaluation_context import EvaluationContext
    except ImportError:
        return
    core = FlagdCore()
    try:
        core.set_flags(json.dumps(document))  # A string: flagd-core mutates dicts it is given.
    except Exception as err:
        raise FlagdDocumentError(f"flagd cannot load the document: {err}") from None
    context = EvaluationContext()
    for key, flag in document["flags"].items():
        kind = json_type(next(iter(flag["variants"].values())))
        try:
            if kind == "boolean":
                core.resolve_boolean_value(key, False, context)
            elif kind == "string":
                core.resolve_string_value(key, "", context)
            elif kind == "number":
                core.resolve_float_value(key, 0.0, context)
            else:
                core.resolve_object_value(key, {}, context)
        except Exception as err:
            raise FlagdDocumentError(f"flags.{key} does not resolve in flagd: {err}") from None
