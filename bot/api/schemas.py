"""The JSON shapes of the public API. Field names here are a contract with integrations.

The incident shapes (summary, detail, alerts, timeline, mitigations) are the read models of
:mod:`bot.incidents.read_model`, shared with Slack, the CLI and the postmortem.

Every id, cursor and count a client sends is range-checked here (a number no column can hold is
a 422, never a database overflow), and every free text a person types (actor, reason, comment)
refuses control characters with a 422 naming the field: a NUL cannot be stored in PostgreSQL,
and a newline or an ANSI escape in an actor would forge lines in a log or a terminal.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from actions.control_values import MAX_ACTOR, MAX_REASON
from bot.incidents.read_model import IncidentSummary

MAX_ID = 2**63 - 1
"""The largest value of a 64-bit signed id column (PostgreSQL BIGINT, SQLite INTEGER)."""

_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
"""Control characters (NUL, newline, ESC…), lone surrogates, line and paragraph separators."""
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
"""Bidirectional overrides: they make text read differently from what it holds."""


def control_character(text: str) -> str | None:
    """The first character of ``text`` no person's text should hold, as ``U+XXXX``, or None."""
    for char in text:
        if char in _BIDI_CONTROLS or unicodedata.category(char) in _REFUSED_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def _no_control_characters(text: str) -> str:
    found = control_character(text)
    if found is not None:
        raise ValueError(
            f"must not contain control characters (found {found}); "
            "newlines, tabs, NUL and terminal escapes are refused"
        )
    return text


# The same rule for OpenAPI readers and generators (checked by _no_control_characters, which
# names the character; pydantic's own pattern error would not).
_PERSON_PATTERN = (
    "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u061c\\u200e\\u200f"
    "\\u202a-\\u202e\\u2066-\\u2069]*$"
)
PersonText = AfterValidator(_no_control_characters)
ActorText = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ACTOR, json_schema_extra={"pattern": _PERSON_PATTERN}),
    PersonText,
]
ReasonText = Annotated[
    str, Field(max_length=MAX_REASON, json_schema_extra={"pattern": _PERSON_PATTERN}), PersonText
]

IncidentIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="An incident id (1 to 2^63-1).")]
BeforeIdQuery = Annotated[
    int | None,
    Query(ge=1, le=MAX_ID, description="Only incidents with a smaller id (paging backwards)."),
]

ACTOR_DESCRIPTION = (
    "Optional: the authenticated principal acts. Naming someone else needs the impersonate "
    "role (a chat bridge); 'ballast' and group handles are refused."
)


class ActorBody(BaseModel):
    """An optional claimed actor (see :data:`ACTOR_DESCRIPTION`) and a reason."""

    model_config = ConfigDict(extra="forbid")
    actor: ActorText | None = Field(default=None, description=ACTOR_DESCRIPTION)
    reason: ReasonText | None = None


CommentText = Annotated[
    str,
    Field(min_length=1, max_length=MAX_REASON, json_schema_extra={"pattern": _PERSON_PATTERN}),
    PersonText,
]


class CommentBody(BaseModel):
    """A note for the incident's record, by the principal (or the claimed actor)."""

    model_config = ConfigDict(extra="forbid")
    actor: ActorText | None = Field(default=None, description=ACTOR_DESCRIPTION)
    text: CommentText


class EscalationOut(BaseModel):
    """What ``POST .../escalate`` fired: the step (1-based) and what it did."""

    incident_id: int
    step: int
    summary: str


class IncidentList(BaseModel):
    incidents: list[IncidentSummary]


class WebhookReceipt(BaseModel):
    received: int
    stored: int
    duplicates: int
    truncated_alerts: int = 0
    # Only when nothing was taken from the delivery on purpose (a PagerDuty acknowledgement,
    # an Opsgenie note): why. Left out of the answer otherwise.
    ignored: str | None = None
