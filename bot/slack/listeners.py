"""What Ballast does when someone uses it in Slack: slash commands and button clicks.

Every request is acked at once (Slack gives 3 seconds, network included) and the work runs
after the ack, as a Bolt lazy listener; answers
go back through ``respond`` (the request's response_url) as ephemeral messages, and changes to
the incident reach the channel message through the change bus and the outbox. The clicking
user is the actor (``Actor.slack``: the person is the Slack user id), checked by the same
policy as the API; acknowledge, resolve, escalate and skip also need a responder
(:mod:`bot.slack.responders`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp

from actions.registry import ActionRegistry
from bot.changelog.kinds import ChangeKind as ReleaseKind
from bot.config import SlackConfig
from bot.controls.store import BuiltinControlStore
from bot.errors import BallastError, ConflictError, NotFoundError, PolicyError
from bot.execution.executor import MitigationExecutor
from bot.execution.results import RunResult
from bot.gates.check import ReleaseGates
from bot.incidents import operations
from bot.incidents.actors import Actor
from bot.incidents.changes import ChangeBus, ChangeKind, Note
from bot.incidents.detail import SUMMARY_TIMELINE_KINDS, load_incident_detail
from bot.incidents.escalation import Escalator
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.read_model import IncidentSummary
from bot.incidents.timeline import TimelineKind
from bot.incidents.traces import TraceLinks
from bot.postmortem.service import PostmortemService
from bot.runbooks.catalog import LiveCatalog
from bot.slack import commands as cmd
from bot.slack.answers import (
    render_controls,
    render_incident_list,
    render_runbook,
    render_runbook_list,
)
from bot.slack.delivery import SlackDelivery
from bot.slack.gate_requests import approvals_version, render_gate_request
from bot.slack.ids import (
    ActionId,
    ButtonValue,
    ButtonValueError,
    GateButtonValue,
    parse_action_id,
)
from bot.slack.incident_message import render_incident
from bot.slack.mrkdwn import MAX_BLOCKS, SlackMessage, section
from bot.slack.outbox import SlackOutbox
from bot.slack.responders import NotAResponder, Responders
from bot.slack.text import escape
from bot.slack.view import MESSAGE_ALERT_SAMPLE, IncidentView, build_view
from bot.store import incidents as repo
from bot.store.database import Database

log = logging.getLogger(__name__)


class SlackServices(Protocol):
    """What the handlers use of the running bot (``bot.api.services.Services`` is one).

    Read-only properties, so the real container, whose optional parts are ``X | None``
    fields, matches structurally without Slack importing the API.
    """

    @property
    def db(self) -> Database: ...
    @property
    def catalog(self) -> LiveCatalog: ...
    @property
    def registry(self) -> ActionRegistry: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...
    @property
    def bus(self) -> ChangeBus: ...
    @property
    def executor(self) -> MitigationExecutor: ...
    @property
    def escalator(self) -> Escalator: ...
    @property
    def controls(self) -> BuiltinControlStore: ...
    @property
    def postmortems(self) -> PostmortemService | None: ...
    @property
    def outbox(self) -> SlackOutbox: ...
    @property
    def delivery(self) -> SlackDelivery | None: ...
    @property
    def slack_config(self) -> SlackConfig: ...
    @property
    def responders(self) -> Responders: ...
    @property
    def traces(self) -> TraceLinks: ...
    @property
    def gates(self) -> ReleaseGates | None: ...


def register(app: AsyncApp, services: SlackServices) -> None:
    """Ack-only listeners, with the work in lazy listeners that Bolt runs after the ack.

    With ``process_before_response=True`` Bolt answers Slack as soon as ``_ack`` returns and
    only then starts the lazy work, so no Web API call or response_url post can beat the 2xx.
    """
    handlers = SlackHandlers(services)
    app.command("/ballast")(ack=_ack, lazy=[handlers.on_command])
    for kind in ActionId:
        app.action(kind.pattern)(ack=_ack, lazy=[handlers.on_button])
    app.event("app_mention")(ack=_ack, lazy=[handlers.on_mention])


async def _ack(ack: Any) -> None:
    await ack()


class SlackHandlers:
    def __init__(self, services: SlackServices) -> None:
        self._services = services

    @property
    def _bus(self) -> ChangeBus:
        return self._services.bus

    # ---- /ballast -----------------------------------------------------------------------

    async def on_command(self, command: dict[str, Any], respond: Any) -> None:
        actor = str(command.get("user_id", ""))
        try:
            parsed = cmd.parse_command(str(command.get("text", "")))
            message = await self._answer(parsed, actor)
        except cmd.CommandError as err:
            message = _text(str(err))  # already mrkdwn: commands escape what they echo
        except NotAResponder as err:
            message = _text(f":no_entry: {err.markup}")  # mentions from ids, names escaped
        except PolicyError as err:
            message = _text(f":no_entry: {escape(str(err))}")
        except BallastError as err:
            message = _text(f":warning: {escape(str(err))}")
        except Exception:
            log.exception("/ballast %r failed", command.get("text"))
            message = _text(":warning: That failed inside Ballast; the error is in its log.")
        await respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())

    async def _answer(self, command: cmd.Command, actor: str) -> SlackMessage:
        s = self._services
        if isinstance(command, cmd.Help):
            return _text(cmd.usage(command.topic) if command.topic else cmd.HELP)
        if isinstance(command, cmd.ListIncidents):
            async with s.db.sessions() as session:
                rows = await repo.list_incidents(
                    session, statuses=[st for st in IncidentStatus if st.is_open], limit=50
                )
            return render_incident_list([IncidentSummary.model_validate(row) for row in rows])
        if isinstance(command, cmd.Show):
            detail = await load_incident_detail(
                s.db,
                s.catalog,
                s.registry,
                command.incident_id,
                traces=s.traces,
                now=s.clock(),
                planner=s.executor.plan_now,
                alert_limit=MESSAGE_ALERT_SAMPLE,
                timeline_kinds=SUMMARY_TIMELINE_KINDS,
            )
            runbook = s.catalog.current.runbooks.get(detail.runbook_id or "")
            return render_incident(build_view(detail, runbook))
        if isinstance(command, cmd.Ack):
            return _text(await self._acknowledge(command.incident_id, actor))
        if isinstance(command, cmd.Resolve):
            return _text(await self._resolve(command.incident_id, actor, command.reason or ""))
        if isinstance(command, cmd.Run):
            result = await s.executor.run(
                command.incident_id, command.mitigation_id, Actor.slack(actor)
            )
            return _text(_result(command.mitigation_id, result))
        if isinstance(command, cmd.Undo):
            result = await s.executor.undo(
                command.incident_id, command.mitigation_id, Actor.slack(actor)
            )
            return _text(_result(command.mitigation_id, result))
        if isinstance(command, cmd.Escalate):
            await self._require_responder(command.incident_id, actor, "escalate")
            escalated = await s.escalator.escalate_now(command.incident_id, Actor.slack(actor))
            return _text(escape(escalated))
        if isinstance(command, cmd.Runbooks):
            query = (command.query or "").lower()
            runbooks = [
                r
                for r in sorted(s.catalog.current.runbooks.values(), key=lambda r: r.id)
                if not query or query in r.id.lower() or query in r.title.lower()
            ]
            return render_runbook_list(runbooks, command.query)
        if isinstance(command, cmd.ShowRunbook):
            runbook = s.catalog.current.runbooks.get(command.runbook_id)
            if runbook is None:
                raise NotFoundError(f"no runbook {command.runbook_id!r}; try /ballast runbooks")
            return render_runbook(runbook)
        if isinstance(command, cmd.Controls):
            return render_controls(await s.controls.list(command.service), service=command.service)
        if isinstance(command, cmd.Postmortem):
            return _text(await self._postmortem(command.incident_id))
        raise ConflictError(f"unsupported command {command!r}")

    async def _postmortem(self, incident_id: int) -> str:
        """The summary here; the full Markdown as replies in the incident's thread."""
        postmortems = self._services.postmortems
        if postmortems is None:
            raise ConflictError("postmortems are not wired in this process; build it with bot.app")
        draft = await postmortems.draft(incident_id)
        posted = await postmortems.post_on_demand(draft)
        where = (
            "The full draft is going to the incident thread."
            if posted
            else f"#{incident_id} has no Slack thread; `ballast postmortem {incident_id}` "
            "prints the full draft."
        )
        return f"*{escape(draft.title)}*\n{escape(draft.summary)}\n{where}"

    async def _require_responder(self, incident_id: int, actor: str, what: str) -> None:
        """Refuse (ephemerally, by raising) and journal unless ``actor`` is a responder."""
        s = self._services
        async with s.db.sessions() as session:
            incident = await repo.get(session, incident_id)
        runbook = s.catalog.current.runbooks.get(incident.runbook_id or "")
        owners = runbook.owners if runbook else []
        details: dict[str, Any] = {"action": what, "via": "slack", "reason": "not a responder"}
        try:
            # The same person identity as the executor's owner rule (a group id is no one).
            who = Actor.slack(actor)
            details["auth"] = who.audit()
            await s.responders.check(who.owner_identity(), owners, what, incident_id)
        except PolicyError:
            async with s.db.transaction() as session:
                repo.append_timeline(
                    session,
                    incident_id,
                    at=s.clock(),
                    actor=actor,
                    kind=TimelineKind.REFUSED,
                    summary=f"{what} refused for {escape(actor[:64])}: not a responder",
                    details=details,
                )
            raise

    async def _acknowledge(self, incident_id: int, actor: str) -> str:
        await self._require_responder(incident_id, actor, "acknowledge")
        async with self._services.db.transaction() as session:
            changed = await operations.acknowledge(
                session, incident_id, actor, self._services.clock()
            )
        if changed:
            await self._bus.changed(incident_id, ChangeKind.STATUS, Note("Acknowledged", actor))
            return f"#{incident_id} acknowledged."
        return f"#{incident_id} was already acknowledged."

    async def _resolve(self, incident_id: int, actor: str, reason: str) -> str:
        await self._require_responder(incident_id, actor, "resolve")
        async with self._services.db.transaction() as session:
            changed = await operations.resolve(
                session, incident_id, actor, self._services.clock(), reason
            )
        if changed:
            await self._bus.changed(incident_id, ChangeKind.RESOLVED, Note("Resolved", actor))
            return f"#{incident_id} resolved."
        return f"#{incident_id} was already resolved."

    # ---- buttons ------------------------------------------------------------------------

    async def on_button(self, body: dict[str, Any], respond: Any) -> None:
        actor = str(body.get("user", {}).get("id", ""))
        action = (body.get("actions") or [{}])[0]
        try:
            kind, mitigation_id = parse_action_id(str(action.get("action_id", "")))
            if kind is ActionId.GATE_APPROVE:
                message = await self._gate_click(
                    GateButtonValue.decode(str(action.get("value", ""))), actor
                )
            else:
                value = ButtonValue.decode(str(action.get("value", "")), expected=kind)
                message = await self._click(kind, value, mitigation_id, actor)
        except ButtonValueError as err:
            problem = escape(str(err))
            message = _text(
                f":warning: That button is not one Ballast made or it is out of date: {problem}"
            )
        except NotAResponder as err:
            message = _text(f":no_entry: {err.markup}")  # mentions from ids, names escaped
        except PolicyError as err:
            message = _text(f":no_entry: {escape(str(err))}")
        except BallastError as err:
            message = _text(f":warning: {escape(str(err))}")
        except Exception:
            log.exception("button %r failed", action.get("action_id"))
            message = _text(":warning: That failed inside Ballast; the error is in its log.")
        await respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())

    async def _click(
        self, kind: ActionId, value: ButtonValue, mitigation_id: str | None, actor: str
    ) -> SlackMessage:
        if mitigation_id != value.mitigation_id:
            raise ButtonValueError("the button's value names another mitigation than its id")
        view = await self._current_view(value.incident_id)
        if _current_version(view, mitigation_id) != value.version:
            return _changed(view)
        return _text(await self._act(kind, value.incident_id, mitigation_id, actor))

    async def _gate_click(self, value: GateButtonValue, actor: str) -> SlackMessage:
        """An owner approves a release from its gate request: the clicking person, under the
        same owner rules as ``ballast gate approve`` (a refusal is journaled by the gate)."""
        gates = self._services.gates
        if gates is None:
            raise ConflictError("release gates are not set up in this process")
        try:
            kind = ReleaseKind(value.kind)
        except ValueError:
            raise ButtonValueError(f"{value.kind!r} is not a kind of change") from None
        current = await gates.approvals(value.service, kind, value.release)
        if approvals_version(current) != value.version:
            card = render_gate_request(current, self._services.slack_config.usergroup_ids)
            notice = section(f":arrows_counterclockwise: {CHANGED}").to_dict()
            return SlackMessage(text=CHANGED, blocks=[notice, *card.blocks])
        person = Actor.slack(actor).owner_identity()
        approvers = await gates.approve(value.service, kind, value.release, person)
        return _text(
            escape(
                f"Approved {value.service} {kind.value} {value.release}: "
                f"approvals {len(approvers)} of {current.needed}"
            )
        )

    async def _current_view(self, incident_id: int) -> IncidentView:
        s = self._services
        detail = await load_incident_detail(
            s.db,
            s.catalog,
            s.registry,
            incident_id,
            traces=s.traces,
            now=s.clock(),
            planner=s.executor.plan_now,
            alert_limit=MESSAGE_ALERT_SAMPLE,
            timeline_kinds=SUMMARY_TIMELINE_KINDS,
        )
        runbook = s.catalog.current.runbooks.get(detail.runbook_id or "")
        return build_view(detail, runbook, group_ids=s.slack_config.usergroup_ids)

    async def _act(
        self, kind: ActionId, incident_id: int, mitigation_id: str | None, actor: str
    ) -> str:
        if kind is ActionId.ACK:
            return await self._acknowledge(incident_id, actor)
        if kind is ActionId.RESOLVE:
            return await self._resolve(incident_id, actor, "resolved from Slack")
        if mitigation_id is None:
            raise ButtonValueError("a mitigation button without a mitigation id")
        if kind in (ActionId.RUN, ActionId.APPROVE, ActionId.MARK_DONE):
            result = await self._services.executor.run(
                incident_id, mitigation_id, Actor.slack(actor)
            )
        elif kind is ActionId.UNDO:
            result = await self._services.executor.undo(
                incident_id, mitigation_id, Actor.slack(actor)
            )
        else:  # SKIP
            return await self._skip(incident_id, mitigation_id, actor)
        return _result(mitigation_id, result)

    async def _skip(self, incident_id: int, mitigation_id: str, actor: str) -> str:
        await self._require_responder(incident_id, actor, "skip a mitigation of")
        async with self._services.db.transaction() as session:
            repo.append_timeline(
                session,
                incident_id,
                at=self._services.clock(),
                actor=actor,
                kind=TimelineKind.MITIGATION_SKIPPED,
                summary=f"{mitigation_id} skipped by {actor}",
                details={"mitigation_id": mitigation_id},
            )
        await self._bus.changed(
            incident_id, ChangeKind.UPDATED, Note(f"{mitigation_id} skipped", actor)
        )
        return f"{mitigation_id} skipped; it stays available."

    # ---- events -------------------------------------------------------------------------

    async def on_mention(self, body: dict[str, Any], say: Any) -> None:
        """Answer a mention once, even when Slack retries the event (same event_id)."""
        event = body.get("event", {})
        channel = str(event.get("channel", ""))
        async with self._services.db.transaction() as session:
            await self._services.outbox.notify(
                session,
                channel,
                {"text": "Use `/ballast help` to see what I can do."},
                f"event:{body.get('event_id', '')}",
            )
        if self._services.delivery is not None:
            self._services.delivery.wake()


CHANGED = "This message changed; here is the current one. Nothing was done."


def _current_version(view: IncidentView, mitigation_id: str | None) -> str | None:
    """The version a button for this incident (or mitigation) would carry if drawn now."""
    if mitigation_id is None:
        return view.version
    mitigation = view.mitigation(mitigation_id)
    return mitigation.version if mitigation is not None else None


def _changed(view: IncidentView) -> SlackMessage:
    """The answer to a stale click: the notice, then the card as it stands now."""
    card = render_incident(view)
    notice = section(f":arrows_counterclockwise: {CHANGED}").to_dict()
    return SlackMessage(text=CHANGED, blocks=[notice, *card.blocks][:MAX_BLOCKS])


def _result(mitigation_id: str, result: RunResult) -> str:
    """A run's answer: its message can quote rendered params (label values), so escaped."""
    return escape(f"{mitigation_id}: {result.state}. {result.message}")


def _text(text: str) -> SlackMessage:
    return SlackMessage(text=text[:3000], blocks=[])
