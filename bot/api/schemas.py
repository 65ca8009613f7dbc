"""The JSON shapes of the public API. Field names here are a contract with integrations.

The incident shapes (summary, detail, alerts, timeline, mitigations) are the read models of
:mod:`bot.incidents.read_model`, shared with Slack, the CLI and the postmortem.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bot.incidents.read_model import IncidentSummary


class ActorBody(BaseModel):
    """Who is acting: a Slack user id or handle, or a person's name."""

    model_config = ConfigDict(extra="forbid")
    actor: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)


class IncidentList(BaseModel):
    incidents: list[IncidentSummary]


class WebhookReceipt(BaseModel):
    received: int
    stored: int
    duplicates: int
    truncated_alerts: int = 0
