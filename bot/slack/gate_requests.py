"""Release gate requests in Slack: owners are asked with an Approve button, and the message
shows the approvals given and still needed.

A gate check blocked (also) by missing approvals posts one message per release (service, kind,
version) to the service's channel, through the outbox in the check's own transaction: a retried
check adds nothing. Each approval (a click here or ``ballast gate approve``) updates it in place
through the outbox, keyed by the number of approvals, so a replay sends nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import SlackConfig
from bot.gates.check import GateRequest
from bot.slack.ids import ActionId, GateButtonValue
from bot.slack.mrkdwn import SlackMessage, clip_text, code, join_bounded, section
from bot.slack.outbox import SlackOutbox
from bot.slack.text import mention
from bot.store.tables import SlackOutboxEntry

log = logging.getLogger(__name__)


def gate_key(service: str, kind: str, release: str) -> str:
    """The release's outbox key: bounded whatever the version's length."""
    digest = hashlib.sha256(f"{service}\0{kind}\0{release}".encode()).hexdigest()[:32]
    return f"gate:{digest}"


def approvals_version(request: GateRequest) -> str:
    """A digest of the approvals shown: a click drawn with other ones is stale."""
    parts = "\0".join([request.service, request.kind.value, request.version, *request.approvers])
    return hashlib.sha256(parts.encode()).hexdigest()[:16]


def render_gate_request(
    request: GateRequest, group_ids: Mapping[str, str] | None = None
) -> SlackMessage:
    """The request: which release, who may approve, approvals given of needed, and (until
    enough are given) an Approve button carrying the release and its approvals' version."""
    what = f"{request.service} {request.kind.value} {request.version}"
    given = join_bounded([mention(who, group_ids) for who in request.approvers], 800)
    owners = join_bounded([mention(who, group_ids) for who in request.owners], 800)
    lines = [
        ":vertical_traffic_light: *Release gate: approval needed*",
        f"{code(request.service, 63)} {code(request.kind.value, 32)} "
        f"version {code(request.version, 300)}",
        f"Owners who may approve: {owners or 'none configured'}",
        f"Approvals {len(request.approvers)} of {request.needed}" + (f": {given}" if given else ""),
    ]
    blocks: list[Any] = []
    if request.complete:
        lines.append(":white_check_mark: Enough owners approved; run the gate check again.")
    blocks.append(section("\n".join(lines)))
    if not request.complete:
        value = GateButtonValue(
            service=request.service,
            kind=request.kind.value,
            release=request.version,
            version=approvals_version(request),
        )
        blocks.append(
            ActionsBlock(
                block_id="ballast.gate",
                elements=[
                    ButtonElement(
                        text="Approve",
                        action_id=ActionId.GATE_APPROVE.value,
                        value=value.encode(),
                        style="primary",
                    )
                ],
            )
        )
    text = f"Release gate: {what}: approvals {len(request.approvers)} of {request.needed}"
    return SlackMessage(text=clip_text(text, 2000), blocks=[b.to_dict() for b in blocks])


class SlackGateRequests:
    """``bot.gates.check.GateRequests`` through the Slack outbox."""

    def __init__(
        self, outbox: SlackOutbox, config: SlackConfig, *, fallback_channel: str | None
    ) -> None:
        self._outbox = outbox
        self._config = config
        self._fallback = fallback_channel

    async def requested(self, session: AsyncSession, request: GateRequest) -> None:
        channel = self._config.channel_for(None, request.service, self._fallback)
        if channel is None:
            log.error(
                "no Slack channel for the gate request of %s: set slack.service_channels "
                "in ballast.yaml or BALLAST_SLACK_CHANNEL",
                request.service,
            )
            return
        key = gate_key(request.service, request.kind.value, request.version)
        message = render_gate_request(request, self._config.usergroup_ids).as_kwargs()
        await self._outbox.notify(session, channel, message, key)

    async def approved(self, session: AsyncSession, request: GateRequest) -> None:
        """Update the request in place once it is posted (its ``ts`` is in the outbox row)."""
        key = gate_key(request.service, request.kind.value, request.version)
        posted = await session.scalar(
            select(SlackOutboxEntry.response).where(
                SlackOutboxEntry.idempotency_key == f"notify:{key}"
            )
        )
        if not posted or not posted.get("ts") or not posted.get("channel"):
            log.info("gate request %s is not posted yet; its next update shows the approvals", key)
            return
        channel, ts = str(posted["channel"]), str(posted["ts"])
        await self._outbox.call(
            session,
            "chat.update",
            {
                "channel": channel,
                "ts": ts,
                **render_gate_request(request, self._config.usergroup_ids).as_kwargs(),
            },
            f"{key}:approvals:{len(request.approvers)}",
            channel=channel,
            lane=f"channel:{channel}",
        )
