"""One row of the incident message per mitigation: preview, risk, state, who approved it.

A row is a section (and the buttons its state allows, :mod:`bot.slack.buttons`), so the
incident message can count how many rows still fit.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import ActionsBlock, Block

from actions.base import Risk
from bot.execution.results import ExecutionState
from bot.incidents.read_model import NOT_RUN
from bot.runbooks.schema import MitigationMode
from bot.slack.buttons import mitigation_button
from bot.slack.mrkdwn import clip_text, code, fit, section
from bot.slack.text import escape
from bot.slack.view import IncidentView, MitigationView

_RISK = {
    Risk.LOW: ":large_green_circle: low risk",
    Risk.MEDIUM: ":large_orange_circle: medium risk",
    Risk.HIGH: ":red_circle: high risk",
}
_STATE: dict[str, str] = {
    NOT_RUN: "not run yet",
    ExecutionState.AWAITING_APPROVAL: ":hourglass_flowing_sand: awaiting approval",
    ExecutionState.RUNNING: ":gear: running…",
    ExecutionState.APPLIED: ":white_check_mark: applied",
    ExecutionState.UNDOING: ":leftwards_arrow_with_hook: undoing…",
    ExecutionState.UNDONE: ":leftwards_arrow_with_hook: undone",
    ExecutionState.FAILED: ":x: failed",
    ExecutionState.DONE_MANUALLY: ":ballot_box_with_check: done by hand",
}
_RAN = frozenset(
    {
        ExecutionState.RUNNING,
        ExecutionState.APPLIED,
        ExecutionState.UNDOING,
        ExecutionState.UNDONE,
        ExecutionState.FAILED,
    }
)
"""States in which the approvals given are shown as who ran it."""
_CHANGED = frozenset({ExecutionState.APPLIED, ExecutionState.UNDOING, ExecutionState.UNDONE})
"""States in which the control's before → after is shown."""
_VERDICT = {
    "recovered": ":large_green_circle:",
    "not_recovered": ":large_yellow_circle:",
    "worse": ":red_circle:",
    "unknown": ":grey_question:",
}
"""How a verification verdict is marked in the row (the text says it in words too)."""


def mitigation_blocks(view: IncidentView, number: int, m: MitigationView) -> list[Block]:
    blocks: list[Block] = [section(_mitigation_text(number, m))]
    if m.actions:
        buttons = [mitigation_button(view, m, kind) for kind in m.actions]
        blocks.append(ActionsBlock(block_id=f"ballast.mitigation:{m.id}", elements=buttons))
    return blocks


def _mitigation_text(number: int, m: MitigationView) -> str:
    risk = _RISK[m.risk] if m.risk else ":grey_question: risk unknown"
    if m.mode == MitigationMode.MANUAL:
        how = "done by hand"
    elif m.mode == MitigationMode.AUTO and m.approvals_needed == 0:
        how = "runs automatically"
    else:
        how = f"needs {m.approvals_needed} approval" + (
            "s (two people)" if m.approvals_needed > 1 else ""
        )
    undo = {True: "reversible", False: "cannot be undone", None: ""}[m.reversible]
    undo = "" if m.mode == MitigationMode.MANUAL else undo
    meta = " · ".join(p for p in (risk, how, undo, _STATE.get(m.state, escape(m.state))) if p)
    lines = [f"*{number}. {clip_text(m.title, 200)}*", meta]
    if m.preview:
        lines.append(f"> {clip_text(m.preview, 800)}")
    if m.plan is not None:
        key, before, after = m.plan
        verb = "Approving sets" if m.state == ExecutionState.AWAITING_APPROVAL else "Sets"
        lines.append(f"{verb} {code(key, 120)}: {code(before, 200)} → {code(after, 200)}")
        if m.plan_why:
            lines.append(f"_{clip_text(m.plan_why, 600)}_")
    elif m.plan_error:
        lines.append(
            f":grey_question: Cannot tell what it would set: {clip_text(m.plan_error, 400)}"
        )
    if m.state == ExecutionState.AWAITING_APPROVAL:
        so_far = _people(m.approvals) or "none"
        lines.append(
            f"Requested by {m.requested_by or 'unknown'} · approvals {len(m.approvals)} of "
            f"{m.approvals_needed}: {so_far}"
        )
    elif m.approvals and m.state in _RAN:
        lines.append(_who_ran(m))
    if m.changed_value and m.state in _CHANGED:
        lines.append(f"{code(m.before or 'unset', 200)} → {code(m.after or 'unset', 200)}")
    if m.state == ExecutionState.UNDONE and m.undone_by:
        lines.append(f"Undone by {m.undone_by}")
    if m.error and m.state == ExecutionState.FAILED:
        lines.append(f":warning: {clip_text(m.error, 600)}")
    if m.verdict:
        icon = _VERDICT.get(m.verdict, ":grey_question:")
        lines.append(f"{icon} {clip_text(m.verified or m.verdict, 600)}")
    return fit(lines[0], lines[1:])


def _who_ran(m: MitigationView) -> str:
    if m.approvals == (m.requested_by,):
        return f"Run by {m.requested_by}"
    return f"Requested by {m.requested_by or 'unknown'} · approved by {_people(m.approvals)}"


def _people(who: Sequence[str], shown: int = 10) -> str:
    more = f" +{len(who) - shown} more" if len(who) > shown else ""
    return ", ".join(who[:shown]) + more
