"""Runbook templates: titles, dashboard URLs and action params, rendered over one alert.

Jinja2's sandboxed environment with ``StrictUndefined``: a template that names a label the
alert does not carry fails loudly instead of rendering an empty string into a flag key.
Autoescape is off because nothing here is HTML. Templates are checked when the runbook loads
(:func:`template_problems`: syntax, unknown filters and tests, unknown top-level names) and
rendered when an alert arrives (:func:`render_template`). Compiled templates are cached.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta, nodes
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing

from bot.errors import TemplateError

TEMPLATE_NAMES = frozenset(
    {"labels", "annotations", "status", "starts_at", "ends_at", "fingerprint", "generator_url"}
)
_NAMES_TEXT = ", ".join(sorted(TEMPLATE_NAMES))

Finalize = Callable[[Any], Any]
"""Applied to the value of every ``{{ … }}`` (never to the template's literal text): how an
action keeps label values in their place, e.g. percent-encoded inside a URL."""
FinalizeFor = Callable[[tuple[str, ...]], Finalize | None]
"""Which :data:`Finalize` a param at a path (``("undo", "url")``) is rendered with."""
_MARKERS = ("{{", "{%", "{#")


class _Labels(dict[str, Any]):
    """The alert's labels; a distinct type so a missing key is reported as a missing label."""


class _Annotations(dict[str, Any]):
    """The alert's annotations, for the same reason as :class:`_Labels`."""


class _AlertUndefined(StrictUndefined):
    """Says which label or annotation is missing, instead of "'dict object' has no attribute"."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        name = self._undefined_name
        owner = self._undefined_obj
        for kind, cls in (("label", _Labels), ("annotation", _Annotations)):
            if isinstance(owner, cls):
                present = ", ".join(sorted(owner)) or "none"
                plural = f"{kind}s"
                return (
                    f"{kind} {name!r} is not set on this alert (its {plural}: {present}); "
                    f"set it in the alert rule, or give a fallback: "
                    f"{{{{ {plural}.{name} | default('unknown') }}}}"
                )
        if owner is missing and isinstance(name, str):
            return f"{name!r} is not defined; templates can use {_NAMES_TEXT}"
        message: str = super()._undefined_message
        return message


@functools.cache
def _environment(finalize: Finalize | None = None) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=_AlertUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=finalize,
    )


@functools.lru_cache(maxsize=8192)
def _compiled(source: str, finalize: Finalize | None = None) -> jinja2.Template:
    return _environment(finalize).from_string(source)


def is_template(value: str) -> bool:
    """Whether a string holds Jinja2 markup; plain strings are used as written."""
    return any(marker in value for marker in _MARKERS)


@functools.lru_cache(maxsize=8192)
def _problems(source: str) -> tuple[str, ...]:
    env = _environment()
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as err:
        where = f" (line {err.lineno} of the template)" if "\n" in source else ""
        return (f"template syntax error: {err.message}{where}",)
    problems: list[str] = []
    if any(
        True for _ in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport))
    ):
        problems.append(
            "templates cannot extend, include or import other templates; write the text inline"
        )
    # Walked by hand: Jinja only rejects unknown filters and tests outside conditionals.
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        kind, known = (
            ("filter", env.filters) if isinstance(node, nodes.Filter) else ("test", env.tests)
        )
        if node.name not in known:
            problems.append(_unknown(kind, node.name, known))
    undeclared: set[str] = set()
    loaded = {node.name for node in tree.find_all(nodes.Name) if node.ctx == "load"}
    if not loaded <= TEMPLATE_NAMES:  # only then pay for Jinja's scope analysis
        try:
            undeclared = meta.find_undeclared_variables(tree)
        except jinja2.TemplateError as err:  # the code generator's checks, e.g. unknown filters
            if not problems:
                problems.append(f"template error: {err.message}")
    for name in sorted(undeclared - TEMPLATE_NAMES):
        close = _closest(name, TEMPLATE_NAMES)
        hint = f" (did you mean {close!r}?)" if close else ""
        problems.append(f"unknown variable {name!r}{hint}; templates can use {_NAMES_TEXT}")
    return tuple(dict.fromkeys(problems))


def template_problems(source: str) -> list[str]:
    """Everything wrong with a template that can be known without an alert; empty if fine."""
    return list(_problems(source))


def render_template(
    source: str, context: Mapping[str, object], finalize: Finalize | None = None
) -> str:
    """Render over an alert's template context; :class:`TemplateError` names what is missing."""
    try:
        template = _compiled(source, finalize)
    except jinja2.TemplateError as err:
        raise TemplateError(f"invalid template {source!r}: {err}") from None
    values = dict(context)
    for name, wrapper in (("labels", _Labels), ("annotations", _Annotations)):
        found = values.get(name)
        if isinstance(found, Mapping):
            values[name] = wrapper(found)
    try:
        return template.render(values)
    except jinja2.UndefinedError as err:
        raise TemplateError(str(err)) from None
    except jinja2.TemplateError as err:
        raise TemplateError(f"template {source!r} failed: {err}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as err:
        raise TemplateError(f"template {source!r} failed: {type(err).__name__}: {err}") from None


def render_params(
    value: Any,
    context: Mapping[str, object],
    finalize_for: FinalizeFor | None = None,
    path: tuple[str, ...] = (),
) -> Any:
    """Render every template string inside nested dicts and lists; other values stay as they are.

    ``finalize_for`` (the action's) says how the values in the string at each path are made
    safe for where they land.
    """
    if isinstance(value, str):
        if not is_template(value):
            return value
        return render_template(value, context, finalize_for(path) if finalize_for else None)
    if isinstance(value, Mapping):
        return {
            key: render_params(item, context, finalize_for, (*path, str(key)))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [render_params(item, context, finalize_for, path) for item in value]
    return value


def _unknown(kind: str, name: str, known: Mapping[str, object]) -> str:
    close = _closest(name, known)
    hint = f"did you mean {close!r}?" if close else f"see the Jinja2 built-in {kind}s"
    return f"unknown {kind} {name!r}; {hint}"


def _closest(name: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return close[0] if close else None
