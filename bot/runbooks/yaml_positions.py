"""YAML data that remembers where each value was written.

libyaml composes the node tree, and the python data is built from it by hand so that every
key and value keeps its position: :meth:`PositionedDocument.position` turns a data path like
``("mitigations", 0, "titel")`` into the line and column of that key or value. Mapping keys are
always the text as written (so ``on:`` is ``"on"``, not ``True``), a key written twice is an
error instead of silently keeping the last one, and a file that expands past
:data:`MAX_NODES` nodes (an alias bomb) is refused.

Nothing here knows what a runbook is; :mod:`bot.runbooks.checks` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import Diagnostic

DataPath = tuple[str | int, ...]
"""Where a value sits in the data: mapping keys and list indexes, from the root."""

MAX_NODES = 100_000  # far above any real runbook; stops alias bombs
_TAG = "tag:yaml.org,2002:"
_CONSTRUCTORS = yaml.constructor.SafeConstructor.yaml_constructors


@dataclass(slots=True)
class PositionedDocument:
    """One file's data plus, for every data path, its key node and value node.

    ``nodes`` is empty only for a file with no YAML document at all (``data`` is then None).
    """

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
        first = self.content_column(loc)
        if first is not None:
            col = first + column - 1
        return Diagnostic(self.path, line, col, message)

    def content_column(self, loc: DataPath) -> int | None:
        """The 1-based column of a string scalar's first character, when the scalar is on one
        line and written as is (no escapes, no folding), so its columns map one to one."""
        found = self.nodes.get(loc)
        if found is None or not isinstance(found[1], yaml.ScalarNode):
            return None
        node = found[1]
        quote = 1 if node.style in ("'", '"') else 0
        width = node.end_mark.column - node.start_mark.column
        if node.start_mark.line == node.end_mark.line and width == len(node.value) + 2 * quote:
            return int(node.start_mark.column) + 1 + quote
        return None


def read_document(path: Path, diagnostics: list[Diagnostic]) -> PositionedDocument | None:
    """Parse one file; None (with the reason in ``diagnostics``) when it is not usable YAML."""
    doc = PositionedDocument(path)
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
        return doc
    builder = _Builder(doc, loader, diagnostics)
    try:
        doc.data = builder.value(root, (), None)
    except _TooLarge:
        diagnostics.append(
            Diagnostic(path, 1, 1, f"file expands to over {MAX_NODES} YAML nodes (aliases?)")
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


class _TooLarge(Exception):
    """The document expands past ``MAX_NODES`` nodes."""


class _Builder:
    """Builds python data from a node tree, recording each node under its data path."""

    def __init__(
        self, doc: PositionedDocument, loader: yaml.CSafeLoader, out: list[Diagnostic]
    ) -> None:
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
        if self.count > MAX_NODES:
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
