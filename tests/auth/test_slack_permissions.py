"""The Slack permissions table of docs/security.md, tried cell by cell.

The table (after ``<!-- permissions: slack -->``) lists every slash command and button against
four relations to the incident: owner, responder group member, ``slack.responders``, other
member. For each row this test starts Ballast (SQLite and PostgreSQL) with the Slack emulator,
and for each cell opens a fresh incident, sends the command or clicks the button as a user of
that relation, with a request signed as Slack signs it, and checks the outcome: ``yes`` acts
(its effect is there, nothing refused), ``no`` is refused ephemerally, journaled, and changes
nothing. Every command in ``/ballast help`` and every button kind must have a row, so a new one
cannot ship without a line in the table.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.config import BallastConfig
from bot.incidents.actors import Actor
from bot.incidents.detail import load_incident_detail
from bot.slack.commands import _USAGE
from bot.slack.ids import ActionId
from bot.store import incidents as repo
from tests.permissions_table import SECURITY, table_cells
from tests.slack_emulator import SlackEmulator
from tests.slack_emulator.payloads import SlackUser, click, slash_command_form
from tests.slack_emulator.server import DEFAULT_CHANNEL
from tests.slack_emulator.signing import RequestSigner

MARKER = "<!-- permissions: slack -->"
RUNBOOKS = Path(__file__).resolve().parent / "runbooks"
SECRET = "5c1a0b2e9d8f7a6b5c4d3e2f1a0b9c8d"
BOT_TOKEN = "xoxb-ballast-permissions"
CHANNEL = DEFAULT_CHANNEL
RUNBOOK_ID = "svc/permissions"

OWNER = SlackUser("U0OWNER1", "owner")
SECOND_OWNER = "U0OWNER2"  # in @oncall through teams:, requests what Approve approves
GROUPIE = SlackUser("U0GROUPIE", "groupie")
LISTED = SlackUser("U0LISTED", "listed")
OTHER = SlackUser("U0OTHER", "other")
RELATIONS = {
    "owner": OWNER,
    "responder group member": GROUPIE,
    "`slack.responders`": LISTED,
    "other member": OTHER,
}
CONFIG = {
    "teams": {"@oncall": [SECOND_OWNER]},
    # The gate request's Approve button: owners of the release, here the owner alone.
    "gates": {"svc-gate": {"model": {"approvals": 2, "owners": [OWNER.id]}}},
    "slack": {
        "usergroup_ids": {"@incident-responders": "S0RESPOND"},
        "responder_groups": ["@incident-responders"],
        "responders": [LISTED.id],
    },
}


@dataclass(frozen=True)
class Row:
    """One line of the table: what to try, and the expected outcome per relation."""

    label: str
    command: str | None  # the slash command's name (``ack``), or None for a button
    button: ActionId | None
    cells: dict[str, bool]  # relation → allowed


def read_table(path: Path = SECURITY) -> tuple[list[str], list[Row]]:
    relations, body = table_cells("slack", path)
    rows = []
    for cells in body:
        label, *answers = cells
        if any(answer not in ("yes", "no") for answer in answers):
            raise AssertionError(f"{label}: cells must be yes or no, not {answers}")
        code = re.search(r"`([^`]+)`", label)
        assert code, f"row {label!r} names no command or action id in backticks"
        text = code.group(1)
        command = text.split()[1] if text.startswith("/ballast ") else None
        button = None if command else ActionId(text)
        allowed = {rel: a == "yes" for rel, a in zip(relations, answers, strict=True)}
        rows.append(Row(label, command, button, allowed))
    return relations, rows


RELATION_NAMES, ROWS = read_table()


def test_the_table_covers_every_command_and_button() -> None:
    assert list(RELATIONS) == RELATION_NAMES
    commands = [row.command for row in ROWS if row.command]
    buttons = [row.button for row in ROWS if row.button]
    assert sorted(commands) == sorted(_USAGE), "every /ballast command needs exactly one row"
    assert sorted(buttons) == sorted(ActionId), "every button kind needs exactly one row"


def test_the_parser_reads_what_it_is_given(tmp_path: Path) -> None:
    page = tmp_path / "security.md"
    page.write_text(
        f"{MARKER}\n| x | owner | other member |\n| --- | --- | --- |\n"
        "| `/ballast ack ID` | yes | no |\n| Undo (`ballast.undo`) | no | yes |\n\nafter\n"
    )
    relations, rows = read_table(page)
    assert relations == ["owner", "other member"]
    assert rows == [
        Row("`/ballast ack ID`", "ack", None, {"owner": True, "other member": False}),
        Row("Undo (`ballast.undo`)", None, ActionId.UNDO, {"owner": False, "other member": True}),
    ]
    page.write_text(f"{MARKER}\n| x | owner |\n| --- | --- |\n| `/ballast ack ID` | maybe |\n")
    with pytest.raises(AssertionError, match="yes or no"):
        read_table(page)


# ---- trying the cells -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    users = (OWNER, GROUPIE, LISTED, OTHER)
    with SlackEmulator(users=users, time_scale=60) as emulator:
        yield emulator


@pytest.fixture
def runbooks_dir() -> Path:
    return RUNBOOKS


@pytest.fixture
async def h(make_harness: Any, slack: SlackEmulator) -> Any:
    slack.reset()
    slack.set_usergroup("S0RESPOND", [GROUPIE.id])
    return await make_harness(
        config=BallastConfig.model_validate(CONFIG),
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        slack_channel=CHANNEL.id,
    )


async def settle(h: Any) -> None:
    for _ in range(3):
        await h.settle()
        h.services.clock.advance(seconds=16)
        await h.services.delivery.drain()
        await asyncio.sleep(0.02)


async def wait_for(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    for _ in range(200):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Cell:
    """One incident of its own, opened for one cell."""

    def __init__(self, h: Any, slack: SlackEmulator, name: str) -> None:
        self.h = h
        self.slack = slack
        self.service = f"svc-{name}"
        self.title = f"search failing on {self.service}"
        self.id = 0

    async def open(self) -> None:
        alert = {
            "labels": {"alertname": "ToolFailing", "service": self.service, "tool": "search"},
            "starts_at": "2026-11-27T02:00:00Z",
        }
        assert (await self.h.client.post("/webhooks/generic", json={"alerts": [alert]})).is_success
        await settle(self.h)
        async with self.h.services.db.sessions() as session:
            listed = await repo.list_incidents(session, limit=100)
        [incident] = [i for i in listed if i.title == self.title]
        self.id = incident.id

    async def incident(self) -> dict[str, Any]:
        """Read in-process, so the cell depends on Slack alone, not on API credentials."""
        s = self.h.services
        detail = await load_incident_detail(s.db, s.catalog, s.registry, self.id)
        return detail.model_dump(mode="json")

    async def mitigation(self, mitigation_id: str) -> dict[str, Any]:
        mitigations = (await self.incident())["mitigations"]
        return next(m for m in mitigations if m["id"] == mitigation_id)

    def message(self) -> dict[str, Any]:
        for message in self.slack.messages(CHANNEL.id):
            if self.title in str(message.get("text", "")):
                return message
        raise AssertionError(f"no incident message for {self.service}")

    async def run_as(self, person: str, mitigation_id: str) -> None:
        """Setup done in-process by an owner (not through Slack: not what the cell tries)."""
        await self.h.services.executor.run(self.id, mitigation_id, Actor.local(person))
        await settle(self.h)


@dataclass(frozen=True)
class Attempt:
    setup: Callable[[Cell], Awaitable[None]] | None
    slash: str | None  # the command text, {id} for the incident
    click: str | None  # the action id to click on the incident's message
    effect: Callable[[Cell, dict[str, Any]], Awaitable[bool]]  # did it act?


async def _nothing(cell: Cell) -> None:
    return None


async def _applied_supervised(cell: Cell) -> None:
    await cell.run_as(OWNER.id, "supervised")


async def _requested_full(cell: Cell) -> None:
    await cell.run_as(SECOND_OWNER, "full-autonomy")
    assert (await cell.mitigation("full-autonomy"))["state"] == "awaiting_approval"


async def _answered(cell: Cell, answer: dict[str, Any]) -> bool:
    return bool(answer.get("text") or answer.get("blocks"))


def _status(status: str) -> Callable[[Cell, dict[str, Any]], Awaitable[bool]]:
    async def check(cell: Cell, answer: dict[str, Any]) -> bool:
        return bool((await cell.incident())["status"] == status)

    return check


def _state(mitigation_id: str, state: str) -> Callable[[Cell, dict[str, Any]], Awaitable[bool]]:
    async def check(cell: Cell, answer: dict[str, Any]) -> bool:
        return bool((await cell.mitigation(mitigation_id))["state"] == state)

    return check


def _journaled(kind: str) -> Callable[[Cell, dict[str, Any]], Awaitable[bool]]:
    async def check(cell: Cell, answer: dict[str, Any]) -> bool:
        return any(entry["kind"] == kind for entry in (await cell.incident())["timeline"])

    return check


ATTEMPTS: dict[str, Attempt] = {
    "help": Attempt(None, "help", None, _answered),
    "list": Attempt(None, "list", None, _answered),
    "show": Attempt(None, "show {id}", None, _answered),
    "runbooks": Attempt(None, "runbooks", None, _answered),
    "runbook": Attempt(None, f"runbook {RUNBOOK_ID}", None, _answered),
    "controls": Attempt(None, "controls", None, _answered),
    "postmortem": Attempt(None, "postmortem {id}", None, _answered),
    "ack": Attempt(None, "ack {id}", None, _status("acknowledged")),
    "resolve": Attempt(None, "resolve {id} fixed upstream", None, _status("resolved")),
    "escalate": Attempt(None, "escalate {id}", None, _journaled("escalated")),
    "run": Attempt(None, "run {id} supervised", None, _state("supervised", "applied")),
    "undo": Attempt(
        _applied_supervised, "undo {id} supervised", None, _state("supervised", "undone")
    ),
    ActionId.ACK: Attempt(None, None, "ballast.ack", _status("acknowledged")),
    ActionId.RESOLVE: Attempt(None, None, "ballast.resolve", _status("resolved")),
    ActionId.SKIP: Attempt(None, None, "ballast.skip:supervised", _journaled("mitigation_skipped")),
    ActionId.RUN: Attempt(None, None, "ballast.run:supervised", _state("supervised", "applied")),
    ActionId.APPROVE: Attempt(
        _requested_full, None, "ballast.approve:full-autonomy", _state("full-autonomy", "applied")
    ),
    ActionId.MARK_DONE: Attempt(
        None, None, "ballast.mark_done:check-provider", _journaled("mitigation_done_manually")
    ),
    ActionId.UNDO: Attempt(
        _applied_supervised, None, "ballast.undo:supervised", _state("supervised", "undone")
    ),
    # Not on an incident message: tried by _gate_cells on a gate request message.
    ActionId.GATE_APPROVE: Attempt(None, None, "ballast.gate_approve", _answered),
}
REFUSALS = ("refused", "mitigation_refused")


def _row_id(row: Row) -> str:
    return row.command or (row.button.value if row.button else row.label)


async def _gate_cells(h: Any, slack: SlackEmulator, row: Row) -> list[str]:
    """The gate request's Approve button, per relation: a release of its own is blocked for
    want of approvals (its request posted), the user clicks; acted: their approval counts;
    refused: the ephemeral :no_entry: and the refusal in the change log, no approval."""
    from bot.changelog.kinds import ChangeKind

    signer = RequestSigner(SECRET)
    failures = []
    for n, (relation, allowed) in enumerate(row.cells.items()):
        user = RELATIONS[relation]
        release = {"service": "svc-gate", "kind": "model", "version": f"m-{n}"}
        assert (await h.client.post("/api/v1/gates/check", json=release)).status_code == 200
        await settle(h)
        [message] = [m for m in slack.messages(CHANNEL.id) if f"m-{n}`" in str(m["blocks"])]
        url = slack.response_url("actions")
        payload = click(message, str(attempt_id(row)), user=user, channel=CHANNEL, response_url=url)
        request = signer.interaction(payload)
        response = await h.client.post(
            "/slack/events", content=request.body, headers=request.headers
        )
        assert response.status_code == 200

        async def posted(url: str = url) -> list[Any]:
            return slack.response_posts(url)

        [post] = await wait_for(posted, f"the answer to {row.label} by {relation}")
        answer = dict(post.body)
        assert answer.get("response_type") == "ephemeral"
        approvals = await h.services.gates.approvals("svc-gate", ChangeKind.MODEL, f"m-{n}")
        acted = user.id in approvals.approvers
        changes = (await h.client.get("/api/v1/changes", params={"service": "svc-gate"})).json()
        journaled = any(
            c["by"] == user.id and c["note"].startswith("approval refused")
            for c in changes["changes"]
        )
        refused = str(answer.get("text", "")).startswith(":no_entry:")
        outcome = (
            "acted"
            if acted and not refused and not journaled
            else "refused"
            if refused and journaled and not acted
            else f"unclear (acted={acted}, refused={refused}, journaled={journaled})"
        )
        if outcome != ("acted" if allowed else "refused"):
            failures.append(f"{row.label} by {relation}: got {outcome}")
    return failures


def attempt_id(row: Row) -> str:
    attempt = ATTEMPTS[row.command or row.button or ""]
    assert attempt.click is not None
    return attempt.click


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
async def test_every_cell(h: Any, slack: SlackEmulator, row: Row) -> None:
    if row.button is ActionId.GATE_APPROVE:
        gate_failures = await _gate_cells(h, slack, row)
        assert not gate_failures, "\n".join(gate_failures)
        return
    attempt = ATTEMPTS[row.command or row.button or ""]
    signer = RequestSigner(SECRET)
    failures = []
    for n, (relation, allowed) in enumerate(row.cells.items()):
        user = RELATIONS[relation]
        cell = Cell(h, slack, f"{_row_id(row).replace('.', '-').replace('_', '-')}-{n}")
        await cell.open()
        await (attempt.setup or _nothing)(cell)
        before = await cell.incident()
        if attempt.slash is not None:
            url = slack.response_url("commands")
            text = attempt.slash.format(id=cell.id)
            form = slash_command_form(
                "/ballast", text, user=user, channel=CHANNEL, response_url=url
            )
            request = signer.slash_command(form)
        else:
            assert attempt.click is not None
            url = slack.response_url("actions")
            payload = click(
                cell.message(), attempt.click, user=user, channel=CHANNEL, response_url=url
            )
            request = signer.interaction(payload)
        response = await h.client.post(
            "/slack/events", content=request.body, headers=request.headers
        )
        assert response.status_code == 200

        async def posted(url: str = url) -> list[Any]:
            return slack.response_posts(url)

        [post] = await wait_for(posted, f"the answer to {row.label} by {relation}")
        answer = dict(post.body)
        after = await cell.incident()
        new_kinds = [e["kind"] for e in after["timeline"][len(before["timeline"]) :]]
        refused = str(answer.get("text", "")).startswith(":no_entry:")
        journaled = any(kind in REFUSALS for kind in new_kinds)
        acted = await attempt.effect(cell, answer)
        outcome = (
            "acted"
            if acted and not refused and not journaled
            else "refused"
            if refused and journaled and not acted
            else f"unclear (acted={acted}, refused={refused}, journaled={journaled})"
        )
        expected = "acted" if allowed else "refused"
        assert answer.get("response_type") == "ephemeral"
        if outcome != expected:
            failures.append(
                f"{row.label} by {relation}: table says {'yes' if allowed else 'no'}, "
                f"got {outcome}: {str(answer.get('text'))[:200]!r}"
            )
        if not allowed:
            assert after["status"] == before["status"]
            assert after["mitigations"] == before["mitigations"]
            for secret in (SECRET, BOT_TOKEN):
                assert secret not in str(after["timeline"])
    assert not failures, "\n".join(failures)
