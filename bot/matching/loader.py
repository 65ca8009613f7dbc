"""Load runbook files into a :class:`Catalog`, reporting every problem as ``path:line:col``.

One runbook per ``*.yaml``/``*.yml`` file, found recursively; names starting with ``_`` or
``.`` are skipped (shared snippets, editor files). libyaml composes the node tree, and the
python data is built from it by hand so that every key and value keeps its position: a
pydantic error on ``("mitigations", 0, "titel")`` becomes a diagnostic at that key. Mapping
keys are always the text as written (so ``on:`` is ``"on"``, not ``True``) and a key written
twice is an error instead of silently keeping the last one.

Beyond the schema, each file is checked for: matcher syntax (column inside the string),
unknown actions, action params against the action's model, templates, duplicate mitigation
and runbook ids, and ``mode: auto`` on an action that is not low risk. Param errors on a value
that is a template are left for after rendering (``ballast runbooks test`` renders every
example alert).

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
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from actions import Action, ActionRegistry, Risk, default_registry
from actions.base import NAME_PATTERN
from bot.errors import Diagnostic, MatcherSyntaxError
from bot.matching.catalog import Catalog
from bot.matching.duration import format_duration, parse_duration
from bot.matching.matcher import parse_matcher
from bot.matching.runbook import (
    LABEL_NAME_PATTERN,
    OWNER_PATTERN,
    RUNBOOK_ID_PATTERN,
    SLUG_PATTERN,
    ExpectOutcome,
    MitigationMode,
    Runbook,
)
from bot.matching.templates import is_template, template_problems

DataPath = tuple[str | int, ...]

_SUFFIXES = (".yaml", ".yml")
_MAX_NODES = 100_000  # far above any real runbook; stops alias bombs
_TAG = "tag:yaml.org,2002:"
_CONSTRUCTORS = yaml.constructor.SafeConstructor.yaml_constructors


@dataclass(frozen=True, slots=True)
class CatalogLoad:
    """What a load produced: the catalog (``None`` if any error) and every diagnostic, sorted."""

    catalog: Catalog | None
    diagnostics: list[Diagnostic]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


def load_catalog(paths: Sequence[Path], registry: ActionRegistry | None = None) -> CatalogLoad:
    """Load and validate every runbook under ``paths``; one bad file fails the whole catalog."""
    registry = registry if registry is not None else default_registry()
    files, diagnostics = runbook_files(paths)
    loaded: list[_Loaded] = []
    first_id: dict[str, str] = {}
    for path in files:
        # Node trees are dropped file by file: keeping 1,000 of them alive makes the garbage
        # collector rescan them all and triples the load time.
        doc = _compose(path, diagnostics)
        if doc is None:
            continue
        runbook = _check(doc, registry, diagnostics)
        runbook_id = doc.data.get("id")
        if isinstance(runbook_id, str):
            if runbook_id in first_id:
                diagnostics.append(
                    doc.diagnostic(
                        ("id",),
                        f"duplicate runbook id {runbook_id!r}: already defined in "
                        f"{first_id[runbook_id]}; give each runbook its own id",
                    )
                )
                continue
            line, col = doc.position(("id",))
            first_id[runbook_id] = f"{path}:{line}:{col}"
        if runbook is not None:
            examples = [doc.position(("tests", i, "alert")) for i in range(len(runbook.tests))]
            loaded.append(_Loaded(path, runbook, doc.position(("match",)), examples))
    catalog = Catalog((item.runbook for item in loaded), {i.runbook.id: i.path for i in loaded})
    diagnostics.extend(_overlaps(catalog, loaded))
    failed = any(d.severity == "error" for d in diagnostics)
    return CatalogLoad(None if failed else catalog, sorted(set(diagnostics)))


@dataclass(frozen=True, slots=True)
class _Loaded:
    path: Path
    runbook: Runbook
    match: tuple[int, int]  # where `match:` is, and each test's `alert:`, for warnings
    examples: list[tuple[int, int]]


def runbook_files(paths: Sequence[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """The runbook files under ``paths``, sorted; files named explicitly are always included."""
    found: set[Path] = set()
    problems: list[Diagnostic] = []
    for root in map(Path, paths):
        if root.is_file():
            found.add(root)
        elif root.is_dir():
            before = len(found)
            for folder, subfolders, names in os.walk(root):
                subfolders[:] = [name for name in subfolders if not name.startswith(("_", "."))]
                found.update(
                    Path(folder, name)
                    for name in names
                    if name.endswith(_SUFFIXES) and not name.startswith(("_", "."))
                )
            if len(found) == before:
                problems.append(
                    Diagnostic(root, 1, 1, "no runbook files (*.yaml, *.yml) here", "warning")
                )
        else:
            problems.append(
                Diagnostic(root, 1, 1, "no such file or folder; pass runbook files or folders")
            )
    return sorted(found), problems


# --- YAML with positions ------------------------------------------------------------------


@dataclass(slots=True)
class _Document:
    """One file's data plus, for every data path, its key node and value node."""

    path: Path
    data: Any = None
    nodes: dict[DataPath, tuple[yaml.Node | None, yaml.Node]] = field(default_factory=dict)

    def position(self, loc: DataPath, *, key: bool = False) -> tuple[int, int]:
        """1-based line and column of ``loc`` (its key if asked), else of its nearest parent."""
        for end in range(len(loc), -1, -1):
            found = self.nodes.get(loc[:end])
            if found is not None:
                key_node, value_node = found
                mark = (key_node if key and key_node is not None else value_node).start_mark
                return mark.line + 1, mark.column + 1
        return 1, 1

    def diagnostic(
        self, loc: DataPath, message: str, *, key: bool = False, severity: str = "error"
    ) -> Diagnostic:
        line, col = self.position(loc, key=key)
        return Diagnostic(self.path, line, col, message, severity)

    def at_column(self, loc: DataPath, column: int, message: str) -> Diagnostic:
        """A diagnostic at ``column`` (1-based) inside a one-line string scalar, when exact."""
        line, col = self.position(loc)
        found = self.nodes.get(loc)
        if found is not None and isinstance(found[1], yaml.ScalarNode):
            node = found[1]
            quote = 1 if node.style in ("'", '"') else 0
            width = node.end_mark.column - node.start_mark.column
            if node.start_mark.line == node.end_mark.line and width == len(node.value) + 2 * quote:
                col += quote + column - 1
        return Diagnostic(self.path, line, col, message)


def _compose(path: Path, diagnostics: list[Diagnostic]) -> _Document | None:
    doc = _Document(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        diagnostics.append(Diagnostic(path, 1, 1, f"cannot read the file: {err.strerror}"))
        return None
    loader = yaml.CSafeLoader(raw)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as err:
        diagnostics.append(_yaml_error(path, raw, err))
        return None
    finally:
        loader.dispose()
    if root is None:
        diagnostics.append(Diagnostic(path, 1, 1, "empty file: " + _needs()))
        return None
    builder = _Builder(doc, loader, diagnostics)
    try:
        doc.data = builder.value(root, (), None)
    except _TooLarge:
        diagnostics.append(
            Diagnostic(path, 1, 1, f"file expands to over {_MAX_NODES} YAML nodes (aliases?)")
        )
        return None
    if not isinstance(doc.data, dict):
        diagnostics.append(
            doc.diagnostic(
                (), f"a runbook file must be a mapping of fields, got {show(doc.data)}; " + _needs()
            )
        )
        return None
    return doc


def _yaml_error(path: Path, raw: bytes, err: yaml.YAMLError) -> Diagnostic:
    if isinstance(err, yaml.reader.ReaderError):  # bad bytes: no mark, a byte offset
        before = raw[: err.position]
        line, col = before.count(b"\n") + 1, err.position - before.rfind(b"\n")
        return Diagnostic(
            path, line, col, f"the file is not valid UTF-8 text ({err.reason}); save it as UTF-8"
        )
    if not isinstance(err, yaml.MarkedYAMLError):
        return Diagnostic(path, 1, 1, f"invalid YAML: {err}")
    mark = err.problem_mark or err.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if err.context and "single document" in err.context:
        return Diagnostic(
            path, line, col, "one runbook per file: move the document after `---` to its own file"
        )
    what = " ".join(part for part in (err.problem, err.context) if part)
    return Diagnostic(path, line, col, f"invalid YAML: {what}; check indentation and quoting")


def _needs() -> str:
    return "a runbook needs " + ", ".join(
        f"`{name}:`" for name in fields_of(Runbook, required=True)
    )


class _TooLarge(Exception):
    """The document expands past ``_MAX_NODES`` nodes."""


class _Builder:
    """Builds python data from a node tree, recording each node under its data path."""

    def __init__(self, doc: _Document, loader: yaml.CSafeLoader, out: list[Diagnostic]) -> None:
        self.doc = doc
        self.loader = loader
        self.out = out
        self.count = 0
        self.active: set[int] = set()

    def error(self, node: yaml.Node, message: str) -> None:
        mark = node.start_mark
        self.out.append(Diagnostic(self.doc.path, mark.line + 1, mark.column + 1, message))

    def value(self, node: yaml.Node, loc: DataPath, key_node: yaml.Node | None) -> Any:
        self.doc.nodes[loc] = (key_node, node)
        self.count += 1
        if self.count > _MAX_NODES:
            raise _TooLarge
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if id(node) in self.active:
            self.error(node, "an alias refers to its own parent; YAML data here must be a tree")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                self.expect_tag(node, "seq")
                return [self.value(item, (*loc, i), None) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)  # the third and last kind of node
            self.expect_tag(node, "map")
            return self.mapping(node, loc)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _TAG + "str":
            return node.value
        construct = _CONSTRUCTORS.get(node.tag)
        if construct is None or node.tag in (_TAG + "map", _TAG + "seq"):
            self.error(node, f"unsupported YAML tag {_tag(node)!r}; remove it")
            return node.value
        try:
            return construct(self.loader, node)
        except (yaml.YAMLError, ValueError, TypeError):
            self.error(node, f"{node.value!r} is not a valid {_tag(node)}")
            return node.value

    def mapping(self, node: yaml.MappingNode, loc: DataPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        own = self.doc.nodes[loc]
        for key_node, merge in node.value:  # `<<: *defaults` first: explicit keys win
            if key_node.tag != _TAG + "merge":
                continue
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.error(source, "`<<` merges a mapping or a list of mappings only")
                    continue
                for key, item in self.value(source, loc, None).items():
                    out.setdefault(key, item)
        self.doc.nodes[loc] = own
        explicit: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_node, "a mapping key must be plain text, not a list or mapping")
                continue
            key = key_node.value
            if key in explicit:
                line = explicit[key].start_mark.line + 1
                self.error(key_node, f"duplicate key {key!r} (first at line {line}); keep one")
                continue
            explicit[key] = key_node
            out[key] = self.value(value_node, (*loc, key), key_node)
        return out

    def expect_tag(self, node: yaml.Node, kind: str) -> None:
        if node.tag != _TAG + kind:
            self.error(node, f"unsupported YAML tag {_tag(node)!r}; remove it")


def _tag(node: yaml.Node) -> str:
    return node.tag.replace(_TAG, "!!", 1) if node.tag.startswith(_TAG) else node.tag


# --- checks beyond the schema -------------------------------------------------------------


def _check(doc: _Document, registry: ActionRegistry, out: list[Diagnostic]) -> Runbook | None:
    """Validate one document; the runbook, or None when the schema rejects it."""
    data: dict[str, Any] = doc.data
    duplicate_ids = _check_mitigations(doc, registry, out)
    for loc, text in _template_fields(data):
        out.extend(doc.diagnostic(loc, f"{where(loc)}: {p}") for p in template_problems(text))
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
                parse_matcher(text)
            except MatcherSyntaxError as err:
                out.append(doc.at_column(("match", index), err.column, f"match[{index}]: {err}"))
    out.extend(_escalation_order(doc, data.get("escalation")))
    return None


def _escalation_order(doc: _Document, steps: Any) -> Iterator[Diagnostic]:
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


def _template_fields(data: dict[str, Any]) -> Iterator[tuple[DataPath, str]]:
    """Templates outside mitigation params: the title, dashboard URLs, escalation notify."""
    yield from _templates_in(data.get("title"), ("title",))
    for key, leaf in (("dashboards", "url"), ("escalation", "notify")):
        items = data.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and leaf in item:
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


def _check_mitigations(doc: _Document, registry: ActionRegistry, out: list[Diagnostic]) -> bool:
    """Ids, actions, params, templates and risk of every mitigation; True if an id repeats."""
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
        params = item.get("params", {})
        if isinstance(params, dict):
            for loc, text in _templates_in(params, (*here, "params")):
                out.extend(
                    doc.diagnostic(loc, f"{where(loc)}: {p}") for p in template_problems(text)
                )
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
        if not isinstance(params, dict):
            continue
        problems = params_problems(action, params, (*here, "params"), skip_templates=True)
        out.extend(doc.diagnostic(at, message, key=on_key) for at, message, on_key in problems)
        if not problems:
            _check_mode(doc, action, params, item, here, out)
    return repeated


def _check_mode(
    doc: _Document,
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


def params_problems(
    action: Action[Any], params: dict[str, Any], base: DataPath, *, skip_templates: bool
) -> list[tuple[DataPath, str, bool]]:
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
        name = _field_name(model, key)
        if name is None:
            continue
        if isinstance(raw, str) and is_template(raw):
            members = _enum_members(model.model_fields[name].annotation)
            choices.append([(name, member) for member in members] or [(name, raw)])
            continue
        with contextlib.suppress(ValidationError):  # fails only for templates inside it
            raw = _adapter(model, name).validate_python(raw)
        choices.append([(name, raw)])
    instances = [model.model_construct(**dict(combo)) for combo in itertools.product(*choices)]
    return instances, any(len(options) > 1 for options in choices)


def _overlaps(catalog: Catalog, loaded: list[_Loaded]) -> Iterator[Diagnostic]:
    """Warn when another runbook also matches an example alert meant for this one, and when
    a runbook cannot be indexed (so every alert is checked against it)."""
    unindexed = set(catalog.unindexed())
    for item in loaded:
        if item.runbook.id in unindexed:
            yield Diagnostic(
                item.path,
                *item.match,
                'match: no matcher here has a fixed set of values (like alertname="X" or '
                'service=~"a|b"), so every alert is checked against this runbook; add one',
                "warning",
            )
        runbook = item.runbook
        for i, case in enumerate(runbook.tests):
            if case.expect is not ExpectOutcome.MATCH:
                continue
            found = catalog.match(case.alert.labels)
            if len(found) < 2 or runbook.id not in {rb.id for rb in found}:
                continue
            winner = found[0]
            for other in found:
                if other.id == runbook.id:
                    continue
                loser = other if winner.id == runbook.id else runbook
                if winner.specificity > loser.specificity:
                    why = f"with {winner.specificity} matchers to {loser.specificity}"
                else:
                    why = f"on the lower id ({winner.specificity} matchers each)"
                yield Diagnostic(
                    item.path,
                    *item.examples[i],
                    f"tests[{i}].alert: this example alert also matches runbook {other.id!r} "
                    f"({catalog.path_of(other.id)}); {winner.id!r} wins {why}; make the "
                    "matchers more specific if the overlap is not intended",
                    "warning",
                )


# --- pydantic errors in the words of a runbook author ---------------------------------------


_PATTERN_HINTS = {
    RUNBOOK_ID_PATTERN: (
        "runbook id",
        "use lowercase letters, digits, '.', '_' and '-', with '/' between parts, "
        "e.g. support-assistant/tool-failure-spike",
    ),
    SLUG_PATTERN: ("name", "use lowercase letters, digits, '_' and '-', e.g. disable-tool"),
    OWNER_PATTERN: (
        "owner",
        "use a Slack user group handle like @ai-platform-oncall or a user ID like U024BE7LH",
    ),
    LABEL_NAME_PATTERN: ("label name", "use letters, digits and '_', e.g. service"),
    NAME_PATTERN: (
        "name",
        "use lowercase letters, digits, '_' and '-' (up to 63), e.g. web_search",
    ),
}


def where(loc: DataPath) -> str:
    """``("mitigations", 0, "params")`` → ``mitigations[0].params``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def translate(
    details: Sequence[ErrorDetails], model: type[BaseModel], base: DataPath, noun: str, owner: str
) -> list[tuple[DataPath, str, bool]]:
    """pydantic errors as (where to point, message, point at the key), for ``model`` at ``base``.

    A missing field that an unknown field's "did you mean" already names is not repeated.
    """
    suggested = set()
    for detail in details:
        if detail["type"] == "extra_forbidden":
            rel = tuple(detail["loc"])
            suggested.add((*rel[:-1], _closest_field(model, rel)))
    return [
        _describe(detail, model, base, noun, owner)
        for detail in details
        if not (detail["type"] == "missing" and tuple(detail["loc"]) in suggested)
    ]


def _closest_field(model: type[BaseModel], rel: DataPath) -> str | None:
    close = difflib.get_close_matches(str(rel[-1]), fields_of(_model_at(model, rel[:-1])), n=1)
    return close[0] if close else None


def _describe(
    detail: ErrorDetails, model: type[BaseModel], base: DataPath, noun: str, owner: str
) -> tuple[DataPath, str, bool]:
    rel = tuple(detail["loc"])
    loc = (*base, *rel)
    inside = f" in {where(loc[:-1])}" if loc[:-1] else ""
    if detail["type"] == "extra_forbidden":
        name = str(rel[-1])
        close = _closest_field(model, rel)
        names = fields_of(_model_at(model, rel[:-1]))
        if close:
            fix = f"did you mean {close!r}?"
        else:
            fix = f"remove it, or use one of: {', '.join(names)}" if names else "remove it"
        return loc, f"unknown {noun} {name!r}{owner}{inside}; {fix}", True
    if detail["type"] == "missing":
        name = str(rel[-1])
        hint = _field_hint(_model_at(model, rel[:-1]), name)
        return loc[:-1], f"missing required {noun} {name!r}{owner}{inside}{hint}; add it", False
    return loc, f"{where(loc)}: {_problem(detail)}", False


def _problem(detail: ErrorDetails) -> str:
    kind = detail["type"]
    value = detail.get("input")
    ctx = detail.get("ctx") or {}
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERN_HINTS:
        what, fix = _PATTERN_HINTS[ctx["pattern"]]
        return f"{show(value)} is not a valid {what}: {fix}"
    if value is None and kind.endswith("_type"):
        return f"has no value; {_lower(detail['msg'])}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping of keys to values, got {show(value)}"
    if kind == "list_type":
        fix = f"; write it as a list: [{show(value)}]" if not isinstance(value, dict) else ""
        return f"expected a list, got {show(value)}{fix}"
    if kind == "string_type" and isinstance(value, int | float):
        return f'expected text, got {show(value)}; quote it: "{show(value)}"'
    message = str(ctx["error"]) if kind == "value_error" and "error" in ctx else detail["msg"]
    message = _lower(message)
    shown = show(value)
    if not isinstance(value, dict | list) and shown not in message:
        message += f", got {shown}"
    return message


def show(value: Any) -> str:
    """A value as a runbook author would write it, short."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    return str(value)


def fields_of(model: type[BaseModel] | None, *, required: bool = False) -> list[str]:
    """Field names as written in YAML (aliases where set), in declaration order."""
    if model is None:
        return []
    return [
        info.alias or name
        for name, info in model.model_fields.items()
        if info.is_required() or not required
    ]


def _field_name(model: type[BaseModel], key: str) -> str | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return name
    return None


def _field_hint(model: type[BaseModel] | None, key: str) -> str:
    name = _field_name(model, key) if model is not None else None
    if model is None or name is None:
        return ""
    info = model.model_fields[name]
    members = _enum_members(info.annotation)
    if members:
        return f" (one of: {', '.join(str(m.value) for m in members)})"
    if info.description:
        return f" ({_lower(info.description.rstrip('.'))})"
    return ""


def _model_at(model: type[BaseModel], loc: DataPath) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc`` (relative to ``model``), if any."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            name = _field_name(current, str(part))
            if name is None:
                return None
            current = current.model_fields[name].annotation
        elif get_origin(current) in (list, tuple, Sequence, dict, Mapping):
            current = get_args(current)[-1] if get_args(current) else Any
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that validates the value."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _enum_members(annotation: Any) -> list[Enum]:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return list(annotation)
    return []


@functools.cache
def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    # Constraints are left out: literal values were checked with the whole model already.
    return TypeAdapter(model.model_fields[name].annotation)


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]
