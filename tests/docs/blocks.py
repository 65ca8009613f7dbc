"""The fenced code blocks of the project's Markdown, and what kind of example each one is.

Every block is an example that a test runs or checks. Its kind comes from an HTML comment on
the line just before the fence (invisible on GitHub), or else from its language and content:

``<!-- not-run: REASON -->``
    cannot run here; REASON must start with one of :data:`NOT_RUN_REASONS`
    (``<!-- not-run: needs docker -->``, ``<!-- not-run: diagram -->``).
``<!-- check: KIND -->``
    check it as KIND, one of :data:`KINDS` (for blocks whose kind cannot be inferred).

Without a comment: ``sh``/``bash``/``shell`` blocks are run, ``console`` blocks are run and
their output compared; YAML is recognised by content (a runbook, a runbook fragment,
``ballast.yaml``, ``alertmanager.yml``, a GitHub workflow, pre-commit files, a schema
modeline, a Kubernetes manifest); JSON must parse (and a webhook body must be accepted);
Python must compile and its imports must import. Anything else fails, telling the author to
mark it or make it runnable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Folders whose Markdown is not documentation for users (or not ours).
SKIPPED_DIRS = frozenset(
    {".git", ".cache", "tests", "node_modules", "data", "build", "dist", ".venv", "venv"}
)

# Why an example may stay unrun. A new reason is a decision for review: add it here.
NOT_RUN_REASONS = (
    "needs docker",
    "needs kubectl",
    "needs a Kubernetes cluster",
    "needs systemd",
    "needs GitHub Actions",
    "needs GitLab CI",
    "needs a Slack workspace",
    "installs packages",
    "diagram",
    "sample output",
    "runs until stopped",
    "run by tests/",
)

SHELL_LANGS = frozenset({"sh", "bash", "shell", "console"})

KINDS = (
    "shell",
    "console",
    "ballast.yaml",
    "runbook",
    "runbook-fragment",
    "alertmanager.yml",
    "github-workflow",
    "pre-commit-hooks",
    "pre-commit-config",
    "schema-modeline",
    "kubernetes",
    "json",
    "webhook-payload",
    "vscode-settings",
    "python",
    "python-signatures",
)

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<verb>not-run|check)\s*:\s*(?P<arg>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path  # relative to the repository
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    marker: tuple[str, str] | None  # ("not-run", reason) or ("check", kind)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def not_run_reason(self) -> str | None:
        return self.marker[1] if self.marker and self.marker[0] == "not-run" else None


class UnknownKind(Exception):
    """The block's kind cannot be told: the author must mark it or make it runnable."""


def doc_files(root: Path = REPO) -> list[Path]:
    """Every Markdown file of the repository outside :data:`SKIPPED_DIRS`, sorted."""
    found = []
    for path in root.rglob("*.md"):
        relative = path.relative_to(root)
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in relative.parts):
            continue
        found.append(relative)
    return sorted(found, key=lambda p: (len(p.parts) > 1, str(p)))  # README.md first


def blocks_of(relative: Path, root: Path = REPO) -> list[Block]:
    lines = (root / relative).read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        closing = re.compile(rf"^ {{0,{indent + 3}}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        body = "\n".join(_dedent(line, indent) for line in lines[index + 1 : end])
        found.append(
            Block(
                path=relative,
                line=index + 1,
                lang=(opening["info"].split() or [""])[0].lower(),
                body=body + "\n",
                marker=_marker_before(lines, index),
            )
        )
        index = end + 1
    return found


def _dedent(line: str, indent: int) -> str:
    """Drop a list item's indentation from a fenced line (never more than it has)."""
    return line[min(indent, len(line) - len(line.lstrip(" "))) :]


def _marker_before(lines: list[str], index: int) -> tuple[str, str] | None:
    """The ``<!-- not-run: ... -->`` or ``<!-- check: ... -->`` comment just above a fence
    (blank lines between are allowed)."""
    above = index - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above < 0:
        return None
    found = _MARKER.match(lines[above])
    return (found["verb"], found["arg"]) if found else None


def all_blocks(root: Path = REPO) -> list[Block]:
    return [block for path in doc_files(root) for block in blocks_of(path, root)]


def kind_of(block: Block) -> str:
    """The checker for a block that is run or checked; :class:`UnknownKind` if none fits."""
    if block.marker is not None:
        verb, argument = block.marker
        if verb == "not-run":
            return "not-run"
        kind = (argument.split() or [""])[0]  # "python-signatures bot.intake": its module
        if kind not in KINDS:
            raise UnknownKind(
                f"<!-- check: {argument} --> names no kind; known: {', '.join(KINDS)}"
            )
        return kind
    if block.lang in SHELL_LANGS:
        return "console" if block.lang == "console" else "shell"
    if block.lang in ("yaml", "yml"):
        return _yaml_kind(block)
    if block.lang == "json":
        return _json_kind(block)
    if block.lang in ("python", "py"):
        return "python"
    raise UnknownKind(f"a {block.lang or 'plain'} block, which no test can run or check as it is")


def _yaml_kind(block: Block) -> str:
    import yaml

    first = block.body.lstrip().splitlines()[0] if block.body.strip() else ""
    if re.match(r"#\s*(\S*/)?alertmanager\.ya?ml\b", first):
        return "alertmanager.yml"
    if re.match(r"#\s*\.github/workflows/", first):
        return "github-workflow"
    try:
        data = yaml.safe_load(block.body)
    except yaml.YAMLError as err:
        raise UnknownKind(f"not valid YAML: {err}") from None
    if data is None and "yaml-language-server: $schema=" in block.body:
        return "schema-modeline"
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        if all("entry" in item for item in data):
            return "pre-commit-hooks"
        if all("action" in item for item in data):
            return "runbook-fragment"  # a list of mitigations
    if isinstance(data, dict):
        if "apiVersion" in data and "kind" in data:
            return "kubernetes"
        if "repos" in data:
            return "pre-commit-config"
        if "id" in data and "match" in data:
            return "runbook"
        from bot.config import BallastConfig
        from bot.runbooks.schema import Runbook

        keys = set(data)
        config_keys = set(BallastConfig.model_fields)
        runbook_keys = set(Runbook.model_fields)
        in_config, in_runbook = keys <= config_keys, keys <= runbook_keys
        if in_config and in_runbook:
            raise UnknownKind(
                f"its keys {sorted(keys)} fit both ballast.yaml and a runbook: "
                "say which with <!-- check: ballast.yaml --> or <!-- check: runbook-fragment -->"
            )
        if in_config:
            return "ballast.yaml"
        if in_runbook:
            return "runbook-fragment"
    raise UnknownKind("YAML that is none of the kinds a test knows how to check")


def _json_kind(block: Block) -> str:
    import json

    try:
        data = json.loads(block.body)
    except ValueError as err:
        raise UnknownKind(f"not valid JSON: {err}") from None
    if isinstance(data, dict) and ("alerts" in data or "labels" in data):
        return "webhook-payload"
    if isinstance(data, dict) and "yaml.schemas" in data:
        return "vscode-settings"
    return "json"
