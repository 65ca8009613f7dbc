"""Every code block in the README and docs is run or checked, so a stale example fails CI.

How a block is classified, and how to mark one that cannot run here, is in
:mod:`tests.docs.blocks`. Shell examples run in order, per document, in a scratch folder that
holds copies of ``runbooks/``, ``examples/`` and ``docs/`` (and the ``alert.json`` that
``runbooks/README.md`` shows), against a real ``ballast serve`` started in that folder (so the
server and the CLI share ``./data/ballast.db``, as for a user). ``curl`` reaches that server
for the documented hosts (``localhost:8080``, ``ballast.internal:8080``) through a ``.curlrc``
that also makes an HTTP error fail the example. ``$BALLAST_API_TOKEN`` and
``$BALLAST_WEBHOOK_TOKEN``, ``$BALLAST_OFREP_TOKEN`` and ``$BALLAST_METRICS_TOKEN`` are set on
both sides; ``$ALICE_TOKEN`` is the named token the
docs make for U024BE7LH (responder, operator), listed in the server's ``ballast.yaml``.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.auth.tokens import config_line
from tests.conftest import need_binary
from tests.docs.blocks import (
    NOT_RUN_REASONS,
    REPO,
    Block,
    UnknownKind,
    all_blocks,
    blocks_of,
    doc_files,
    kind_of,
)
from tests.e2e.processes import free_port, wait_until

BLOCKS = all_blocks()
API_TOKEN = "docs-api-token"
ALICE_TOKEN = "docs-alice-token"
WEBHOOK_TOKEN = "docs-webhook-token"
OFREP_TOKEN = "docs-ofrep-token"
METRICS_TOKEN = "docs-metrics-token"
DOC_HOSTS = ("localhost:8080", "127.0.0.1:8080", "ballast.internal:8080")
COMMAND_TIMEOUT = 120

# The alert runbooks/README.md shows with `cat alert.json`; README.md explains it too.
ALERT_JSON = (
    '{"labels": {"alertname": "ToolCallFailureRate", "service": "support-assistant", '
    '"tool": "refund", "env": "prod"},\n'
    ' "annotations": {"summary": "refund: 64% of calls failed over 5m"}}\n'
)


def _kind(block: Block) -> str:
    try:
        return kind_of(block)
    except UnknownKind as err:
        return f"unknown: {err}"


# --- every block has a kind ------------------------------------------------------------------


def test_the_docs_have_blocks() -> None:
    files = {str(path) for path in doc_files()}
    assert {"README.md", "docs/webhooks.md", "runbooks/README.md"} <= files
    assert len(BLOCKS) > 30


def test_every_block_is_run_checked_or_marked() -> None:
    problems = [
        f"{block.where}: {_kind(block)[len('unknown: ') :]}. Make it runnable, or mark it on "
        "the line above the fence with <!-- check: KIND --> or <!-- not-run: REASON --> "
        "(see tests/docs/blocks.py)"
        for block in BLOCKS
        if _kind(block).startswith("unknown: ")
    ]
    assert not problems, "\n".join(problems)


def test_not_run_reasons_are_from_the_allowed_set() -> None:
    problems = [
        f"{block.where}: <!-- not-run: {block.not_run_reason} --> gives no allowed reason; "
        f"start it with one of: {', '.join(NOT_RUN_REASONS)}"
        for block in BLOCKS
        if block.not_run_reason is not None and not block.not_run_reason.startswith(NOT_RUN_REASONS)
    ]
    assert not problems, "\n".join(problems)


def test_blocks_run_elsewhere_name_a_real_test() -> None:
    """``<!-- not-run: run by tests/X.py ... (name) -->``: that test exists and names the block."""
    problems = []
    for block in BLOCKS:
        reason = block.not_run_reason or ""
        if not reason.startswith("run by tests/"):
            continue
        path = REPO / reason.removeprefix("run by ").split()[0].rstrip(",:;")
        label = re.search(r"\((\S+)\)\s*$", reason)
        if not path.is_file():
            problems.append(f"{block.where}: {path.relative_to(REPO)} does not exist")
        elif label is None or f'"{label.group(1)}"' not in path.read_text(encoding="utf-8"):
            problems.append(f"{block.where}: {path.name} never runs a block labelled (name)")
    assert not problems, "\n".join(problems)


def test_the_extractor_sees_markers_indented_blocks_and_unknown_kinds(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Text.\n\n<!-- not-run: needs docker -->\n```sh\ndocker run x\n```\n\n"
        "- item:\n\n  ```yaml\n  services: {}\n  ```\n\n```text\nplain\n```\n",
        encoding="utf-8",
    )
    [docker, indented, plain] = blocks_of(Path("doc.md"), tmp_path)
    assert (docker.line, docker.not_run_reason, kind_of(docker)) == (4, "needs docker", "not-run")
    assert (indented.body, kind_of(indented)) == ("services: {}\n", "ballast.yaml")
    with pytest.raises(UnknownKind, match="text block"):
        kind_of(plain)


# --- static checks, one test per block -------------------------------------------------------

STATIC = [b for b in BLOCKS if _kind(b) not in ("shell", "console", "not-run", "github-workflow")]
STATIC += [b for b in BLOCKS if _kind(b) == "github-workflow"]


@pytest.mark.parametrize("block", STATIC, ids=lambda b: b.where)
def test_block_checks(block: Block, tmp_path: Path) -> None:
    kind = kind_of(block)
    argument = block.marker[1].split(None, 1)[1:] if block.marker else []
    CHECKERS[kind](block, tmp_path, *argument)


def check_ballast_yaml(block: Block, tmp_path: Path) -> None:
    from bot.config import load_config

    path = tmp_path / "ballast.yaml"
    path.write_text(block.body, encoding="utf-8")
    load_config(path)  # raises ConfigError naming every problem


def _load_runbook(data: dict[str, Any], tmp_path: Path) -> None:
    from actions.registry import default_registry
    from bot.runbooks.loader import load_catalog

    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "example.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    load = load_catalog([folder], default_registry())
    errors = [str(d) for d in load.diagnostics if d.severity == "error"]
    assert not errors, "\n".join(errors)


def check_runbook(block: Block, tmp_path: Path) -> None:
    _load_runbook(yaml.safe_load(block.body), tmp_path)


def check_runbook_fragment(block: Block, tmp_path: Path) -> None:
    """Put the fragment into tests/example_runbook.yaml and load that runbook."""
    base = yaml.safe_load((REPO / "tests" / "example_runbook.yaml").read_text(encoding="utf-8"))
    fragment = yaml.safe_load(block.body)
    if isinstance(fragment, list):  # mitigations
        base["mitigations"] = [*base["mitigations"], *fragment]
    else:
        base.update(fragment)
    _load_runbook(base, tmp_path)


def check_alertmanager_yml(block: Block, tmp_path: Path) -> None:
    amtool = need_binary("amtool")
    path = tmp_path / "alertmanager.yml"
    path.write_text(block.body, encoding="utf-8")
    done = subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def check_github_workflow(block: Block, tmp_path: Path) -> None:
    """Its ``ballast`` steps run against a copy of the repository's runbooks."""
    workflow = yaml.safe_load(block.body)
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    commands = [step["run"] for step in steps if str(step.get("run", "")).startswith("ballast ")]
    assert commands, "a workflow example with no ballast step checks nothing here"
    shutil.copytree(REPO / "runbooks", tmp_path / "runbooks")
    for command in commands:
        done = run_shell(command, tmp_path, cli_env(None))
        assert done.returncode == 0, f"{command}:\n{done.stdout}"


def _repo_hooks() -> list[dict[str, Any]]:
    hooks: list[dict[str, Any]] = yaml.safe_load(
        (REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    )
    return hooks


def check_pre_commit_hooks(block: Block, tmp_path: Path) -> None:
    """The same hooks as .pre-commit-hooks.yaml, each field shown as it is there."""
    published = {hook["id"]: hook for hook in _repo_hooks()}
    shown = yaml.safe_load(block.body)
    assert [hook["id"] for hook in shown] == list(published)
    for hook in shown:
        differ = {k: v for k, v in hook.items() if published[hook["id"]].get(k) != v}
        assert not differ, f"{hook['id']}: {differ} differs from .pre-commit-hooks.yaml"


def check_pre_commit_config(block: Block, tmp_path: Path) -> None:
    published = {hook["id"] for hook in _repo_hooks()}
    used = {hook["id"] for repo in yaml.safe_load(block.body)["repos"] for hook in repo["hooks"]}
    assert used <= published, f"hooks not in .pre-commit-hooks.yaml: {used - published}"


def check_schema_modeline(block: Block, tmp_path: Path) -> None:
    [target] = re.findall(r"\$schema=(\S+)", block.body)
    assert (REPO / "runbooks" / target).is_file(), f"{target} (from runbooks/) does not exist"


def check_kubernetes(block: Block, tmp_path: Path) -> None:
    for document in yaml.safe_load_all(block.body):
        assert document["apiVersion"]
        assert document["kind"]
        assert document["metadata"]["name"]


def check_json(block: Block, tmp_path: Path) -> None:
    json.loads(block.body)


def check_webhook_payload(block: Block, tmp_path: Path) -> None:
    from bot.intake import detect_source, parse_payload

    data = json.loads(block.body)
    batch = parse_payload(detect_source(data), data)
    assert batch.alerts


def check_vscode_settings(block: Block, tmp_path: Path) -> None:
    for schema in json.loads(block.body)["yaml.schemas"]:
        assert (REPO / schema).is_file(), f"{schema} does not exist"


def check_python(block: Block, tmp_path: Path) -> None:
    """Compiles, and what it imports exists."""
    tree = ast.parse(block.body, filename=block.where)
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            exec(compile(ast.Module([node], []), block.where, "exec"), {})


def check_python_signatures(block: Block, tmp_path: Path, module: str = "") -> None:
    """Lines such as ``parse_payload(source, data) -> AlertBatch``: each name is in MODULE."""
    assert module, "say which module: <!-- check: python-signatures bot.intake -->"
    imported = importlib.import_module(module)
    names = re.findall(r"(?:^|/ )\s*([A-Za-z_]\w*)\(", block.body, re.M)
    assert names, "no signatures found"
    missing = [name for name in names if not hasattr(imported, name)]
    assert not missing, f"{module} has no {missing}"


CHECKERS: dict[str, Any] = {
    "ballast.yaml": check_ballast_yaml,
    "runbook": check_runbook,
    "runbook-fragment": check_runbook_fragment,
    "alertmanager.yml": check_alertmanager_yml,
    "github-workflow": check_github_workflow,
    "pre-commit-hooks": check_pre_commit_hooks,
    "pre-commit-config": check_pre_commit_config,
    "schema-modeline": check_schema_modeline,
    "kubernetes": check_kubernetes,
    "json": check_json,
    "webhook-payload": check_webhook_payload,
    "vscode-settings": check_vscode_settings,
    "python": check_python,
    "python-signatures": check_python_signatures,
}


# --- shell examples, run in order per document against a real server -------------------------


def cli_env(server_url: str | None, home: Path | None = None) -> dict[str, str]:
    """The environment a user has: no test settings, the docs' tokens, ballast on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BALLAST_", "SLACK_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["BALLAST_API_TOKEN"] = API_TOKEN
    env["ALICE_TOKEN"] = ALICE_TOKEN
    env["BALLAST_WEBHOOK_TOKEN"] = WEBHOOK_TOKEN
    env["BALLAST_OFREP_TOKEN"] = OFREP_TOKEN
    env["BALLAST_METRICS_TOKEN"] = METRICS_TOKEN
    env["COLUMNS"] = "200"
    if home is not None:
        env["CURL_HOME"] = str(home)
    if server_url is not None:
        env["BALLAST_URL"] = server_url
    return env


def run_shell(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


class Sandbox:
    """A user's folder for one document's examples, with ``ballast serve`` running in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for folder in ("runbooks", "examples", "docs"):
            shutil.copytree(REPO / folder, root / folder)
        (root / "alert.json").write_text(ALERT_JSON, encoding="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rc = [
            "fail-with-body",
            "silent",
            "show-error",
            "max-time = 30",
            *(f'connect-to = "{host}:127.0.0.1:{self.port}"' for host in DOC_HOSTS),
        ]
        (root / ".curlrc").write_text("\n".join(rc) + "\n", encoding="utf-8")
        server_env = {k: v for k, v in cli_env(None).items() if k not in ("COLUMNS", "BALLAST_URL")}
        alice = config_line("alice", ALICE_TOKEN, ["responder", "operator"], "U024BE7LH")
        (root / "server.yaml").write_text(f"auth:\n  tokens:\n    {alice}\n", encoding="utf-8")
        server_env["BALLAST_CONFIG"] = str(root / "server.yaml")
        self.log = root / "serve.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
                cwd=root,
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"ballast serve exited:\n{self.log.read_text()}")
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200

        wait_until(ready, 60, "ballast serve to be ready")
        self.env = cli_env(self.url, home=root)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def console_commands(body: str) -> list[tuple[str, list[str]]]:
    """``$ command`` lines (with ``\\`` continuations) and the output shown under each."""
    commands: list[tuple[str, list[str]]] = []
    lines = body.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("$ "):
            if commands:
                commands[-1][1].append(line.rstrip())
            index += 1
            continue
        command = line[2:]
        while command.rstrip().endswith("\\") and index + 1 < len(lines):
            index += 1
            command += "\n" + lines[index]  # bash joins the continuation itself
        commands.append((command, []))
        index += 1
    return commands


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Expected lines in order; a ``...`` line stands for any number of lines."""
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    segments: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == "...":
            segments.append([])
        else:
            segments[-1].append(line)
    position = 0
    for number, segment in enumerate(segments):
        if not segment:
            continue
        anchored = number == 0
        for start in range(position, len(actual) - len(segment) + 1):
            if actual[start : start + len(segment)] == segment:
                break
            if anchored:
                return False
        else:
            return False
        position = start + len(segment)
    return not segments[-1] or position == len(actual)


SHELL_DOCS = sorted({b.path for b in BLOCKS if _kind(b) in ("shell", "console")}, key=str)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    need_binary("curl")
    box = Sandbox(tmp_path)
    try:
        yield box
    finally:
        box.stop()


@pytest.mark.slow
@pytest.mark.parametrize("doc", SHELL_DOCS, ids=str)
def test_shell_examples(doc: Path, sandbox: Sandbox) -> None:
    for block in blocks_of(doc):
        kind = _kind(block)
        if kind == "shell":
            done = run_shell(block.body, sandbox.root, sandbox.env)
            assert done.returncode == 0, (
                f"{block.where} failed (exit {done.returncode}):\n{block.body}\n{done.stdout}"
            )
        elif kind == "console":
            for command, expected in console_commands(block.body):
                done = run_shell(command, sandbox.root, sandbox.env)
                actual = [line.rstrip() for line in done.stdout.splitlines()]
                assert done.returncode == 0, f"{block.where}: $ {command}\n{done.stdout}"
                assert output_matches(expected, actual), (
                    f"{block.where}: $ {command}\nexpected (... = any lines):\n"
                    + "\n".join(expected)
                    + "\n\ngot:\n"
                    + done.stdout
                )


def test_console_output_matching() -> None:
    actual = ["PASS a", "PASS b", "PASS c", "3 cases passed"]
    assert output_matches(["PASS a", "...", "3 cases passed"], actual)
    assert output_matches(["PASS a", "PASS b", "..."], actual)
    assert not output_matches(["PASS b", "...", "3 cases passed"], actual)  # not at the start
    assert not output_matches(["PASS a", "...", "2 cases passed"], actual)
    assert not output_matches(["PASS a", "PASS b"], actual)  # more output than shown
    assert console_commands("$ echo a \\\n    | cat\na\n$ true\n") == [
        ("echo a \\\n    | cat", ["a"]),
        ("true", []),
    ]


@pytest.mark.slow
def test_a_stale_example_fails(sandbox: Sandbox) -> None:
    """The sandbox turns what a stale example does into a failure: an HTTP error from curl,
    a failing ballast command, a failing step of several."""
    for stale in (
        "curl localhost:8080/api/v1/incidents/999",  # 404
        "curl -X POST ballast.internal:8080/api/v1/incidents/1/acknowledge -d '{}'",  # 422
        "ballast replay examples/alerts/no-such-file.json",
        "true\nfalse\ntrue",
    ):
        done = run_shell(stale, sandbox.root, sandbox.env)
        assert done.returncode != 0, (stale, done.stdout)
    fresh = run_shell("curl localhost:8080/healthz", sandbox.root, sandbox.env)
    assert (fresh.returncode, fresh.stdout) == (0, '{"status":"ok"}')
