"""The change log API: deploy pipelines and people record what went live; anyone with the
``reader`` role lists it (docs/changes.md).

Recording needs the ``automation`` or ``operator`` role; the authenticated principal is who
recorded it (``by``, who shipped it, defaults to the same). Retrying a record with the same
``external_id`` and content answers 200 with the stored change; the same id with other content
is a 409 naming the fields that differ. Bad input is a 422 naming the field.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from actions.control_values import MAX_ACTOR, MAX_REASON
from bot.api.json_body import JsonBodyRoute
from bot.api.principals import require
from bot.api.schemas import PersonText
from bot.api.services import Services, services_of
from bot.auth.principal import Principal
from bot.auth.roles import Role
from bot.changelog.kinds import RECORDABLE, ChangeKind
from bot.changelog.log import Change, ChangeConflict, NewChange
from bot.incidents.changes import ChangeKind as IncidentChangeKind
from bot.incidents.changes import Note
from bot.incidents.lifecycle import IncidentStatus
from bot.runbooks.schema import SLUG_PATTERN
from bot.store import incidents as repo

router = APIRouter(prefix="/api/v1", tags=["changes"], route_class=JsonBodyRoute)

MAX_FUTURE = timedelta(minutes=5)  # clock skew between a pipeline and Ballast
RecordableKind = Annotated[
    ChangeKind,
    AfterValidator(lambda kind: _recordable(kind)),  # defined below
    Field(
        description="prompt, model, retrieval_index, guardrail, tool_schema, model_settings "
        "or build (control is Ballast's own)."
    ),
]
Text = Annotated[str, PersonText]


def _recordable(kind: ChangeKind) -> ChangeKind:
    if kind not in RECORDABLE:
        raise ValueError(
            f"kind {kind.value!r} is recorded by Ballast itself; record one of "
            + ", ".join(k.value for k in RECORDABLE)
        )
    return kind


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(pattern=SLUG_PATTERN, max_length=63)
    kind: RecordableKind
    version: Text = Field(min_length=1, max_length=300)
    previous: Text | None = Field(default=None, min_length=1, max_length=300)
    by: Text | None = Field(
        default=None, min_length=1, max_length=MAX_ACTOR, description="Who shipped it."
    )
    link: str | None = Field(default=None, max_length=2000, description="An http(s) URL.")
    note: Text = Field(default="", max_length=MAX_REASON)
    at: datetime | None = Field(
        default=None, description="When it went live (with a timezone); default: now."
    )
    external_id: Text | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The pipeline's own id: recording it again is idempotent.",
    )

    @field_validator("link")
    @classmethod
    def _http_link(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ValueError("must not contain spaces or control characters")
        return value

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a timezone, e.g. 2026-12-04T10:15:00Z")
        return value


class ChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    external_id: str | None
    service: str
    kind: str
    version: str
    previous: str | None
    by: str
    link: str | None
    note: str
    at: datetime
    recorded_at: datetime
    recorded_by: str
    source: str
    control_key: str | None


class ChangeList(BaseModel):
    changes: list[ChangeOut]


RecorderDep = Annotated[Principal, Depends(require(Role.AUTOMATION, Role.OPERATOR))]
Reader = [Depends(require(Role.READER))]


@router.post(
    "/changes",
    response_model=ChangeOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": ChangeOut, "description": "Recorded before (same id, same "
                     "content)."}, 409: {"description": "The id was recorded with other "
                     "content."}},
)  # fmt: skip
async def record_change(
    body: ChangeIn, request: Request, response: Response, principal: RecorderDep
) -> ChangeOut:
    """Record a change that went live (a deploy pipeline's step, or a person)."""
    services = services_of(request)
    if body.at is not None and body.at > services.clock() + MAX_FUTURE:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"at: {body.at.isoformat()} is in the future; record a change once it is live",
        )
    new = NewChange(
        service=body.service,
        kind=body.kind,
        version=body.version,
        previous=body.previous,
        by=body.by,
        link=body.link,
        note=body.note,
        at=body.at,
        external_id=body.external_id,
    )
    try:
        change, created = await services.changes.record(new, recorded_by=principal.name)
    except ChangeConflict as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    else:
        await _tell_open_incidents(services, change)
    return _out(change)


async def _tell_open_incidents(services: Services, change: Change) -> None:
    """A change that went live while its service has an open incident goes to the incident's
    thread (and its message's "Recent AI changes"): it may be the cause, or the fix."""
    open_statuses = [s.value for s in IncidentStatus if s.is_open]
    async with services.db.sessions() as session:
        incidents = await repo.list_incidents(
            session, statuses=open_statuses, service=change.service, limit=20
        )
    previous = f"{change.previous} → " if change.previous else ""
    note = Note(f"AI change went live: {change.kind} {previous}{change.version} by {change.by}")
    for incident in incidents:
        await services.bus.changed(incident.id, IncidentChangeKind.UPDATED, note)


@router.get("/changes", response_model=ChangeList, dependencies=Reader)
async def list_changes(
    request: Request,
    service: Annotated[str | None, Query(pattern=SLUG_PATTERN, max_length=63)] = None,
    kind: Annotated[list[ChangeKind] | None, Query()] = None,
    since: Annotated[
        datetime | None, Query(description="Only changes live at or after (with timezone).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ChangeList:
    """Newest first. ``kind`` may repeat."""
    if since is not None and since.tzinfo is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "since: needs a timezone, e.g. 2026-12-04T10:15:00Z",
        )
    changes = await services_of(request).changes.list(
        service=service, kinds=[k.value for k in kind or ()], since=since, limit=limit
    )
    return ChangeList(changes=[_out(change) for change in changes])


def _out(change: Change) -> ChangeOut:
    return ChangeOut.model_validate(change)
