"""The operator API of the built-in control store: list, show with history, set (audited).

Reading needs the ``reader`` role, setting the ``operator`` role; the authenticated principal
is the actor, and each change lands in the key's history with how it authenticated. A key
outside the convention or a value its key cannot hold is a 422 that names the key and the
allowed values; nothing changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from actions.base import NAME_PATTERN
from actions.control_values import KEY_SHAPES, MAX_REASON, ControlKey, ControlValueError, parse_key
from actions.errors import ActionError, RetryableError
from bot.api.json_body import JsonBodyRoute
from bot.api.principals import acting, require
from bot.api.schemas import ACTOR_DESCRIPTION, ActorText, ReasonText
from bot.api.services import services_of
from bot.auth.principal import Principal
from bot.auth.roles import Role
from bot.controls.store import BuiltinControlStore
from bot.incidents.actors import Actor

router = APIRouter(prefix="/api/v1", tags=["controls"], route_class=JsonBodyRoute)


class ControlOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    value: bool | str
    value_type: str
    version: int
    updated_at: datetime
    updated_by: str


class ChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    before: bool | str | None
    after: bool | str | None
    actor: str
    reason: str
    at: datetime
    source: str


class ControlList(BaseModel):
    controls: list[ControlOut]


class ControlDetail(BaseModel):
    """A key's value in the built-in store (null if it holds none) and its history.

    The history covers every backend, so a key held in flagd or Unleash shows its changes
    here with a null value.
    """

    key: str
    value: bool | str | None
    value_type: str | None
    version: int | None
    updated_at: datetime | None
    updated_by: str | None
    history: list[ChangeOut]


class ControlWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Any = Field(description="true/false for tool switches, a string for the rest.")
    actor: ActorText | None = Field(default=None, description=ACTOR_DESCRIPTION)
    reason: ReasonText | None = None


class ControlWriteOut(BaseModel):
    key: str
    before: bool | str | None
    after: bool | str
    changed: bool
    version: int
    history_id: int
    backend: str


def store_of(request: Request) -> BuiltinControlStore:
    """The one store ``bot.app`` built, shared with OFREP and the executor."""
    return services_of(request).controls


StoreDep = Annotated[BuiltinControlStore, Depends(store_of)]

_KEY_SHAPE = (
    r"^[a-z0-9][a-z0-9_-]{0,62}\.(tools\.[a-z0-9][a-z0-9_-]{0,62}\.enabled|autonomy|model"
    r"|prompt_version|retrieval_index|human_review)$"
)
KeyPath = Annotated[
    str,
    # For OpenAPI readers and generators only: _check_key refuses the rest with a 422 that names
    # the key and the shapes (pydantic's pattern error would not).
    Path(description=f"A control key: {KEY_SHAPES}.", json_schema_extra={"pattern": _KEY_SHAPE}),
]
OperatorDep = Annotated[Principal, Depends(require(Role.OPERATOR))]
Reader = [Depends(require(Role.READER))]


@router.get("/controls", response_model=ControlList, dependencies=Reader)
async def list_controls(
    store: StoreDep,
    service: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
) -> ControlList:
    """Every value in the built-in store, by key; ``service`` keeps that service's keys."""
    try:
        controls = await store.list(service)
    except ActionError as err:
        raise _unavailable(err) from None
    return ControlList(controls=[ControlOut.model_validate(c) for c in controls])


@router.get("/controls/{key}", response_model=ControlDetail, dependencies=Reader)
async def show_control(
    key: KeyPath, store: StoreDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> ControlDetail:
    """One key: its value and its history through every backend, newest first."""
    _check_key(key)
    try:
        control = await store.get(key)
        history = await store.history(key, limit=limit)
    except ActionError as err:
        raise _unavailable(err) from None
    if control is None and not history:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"{key} has no value in the built-in store and no recorded changes; "
            f"set it with PUT /api/v1/controls/{key}",
        )
    return ControlDetail(
        key=key,
        value=None if control is None else control.value,
        value_type=None if control is None else control.value_type,
        version=None if control is None else control.version,
        updated_at=None if control is None else control.updated_at,
        updated_by=None if control is None else control.updated_by,
        history=[ChangeOut.model_validate(change) for change in history],
    )


@router.put("/controls/{key}", response_model=ControlWriteOut)
async def set_control(
    key: KeyPath, body: ControlWrite, store: StoreDep, request: Request, principal: OperatorDep
) -> ControlWriteOut:
    """Set a value; AI applications reading the key over OFREP see it on their next read."""
    control = _check_key(key)
    holder = services_of(request).contexts.backend_for(control.service).name
    if holder != store.name:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{control.service}'s controls live in {holder} (services.{control.service}.backend "
            f"in ballast.yaml), which its applications read; setting {key} in the built-in "
            "store would change nothing they see. Change it there, or run a mitigation.",
        )
    actor = acting(principal, body.actor)
    try:
        result = await store.write(
            key, body.value, actor=actor.name, reason=audited_reason(actor, body.reason or "")
        )
    except ControlValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    except ActionError as err:
        raise _unavailable(err) from None
    assert result.after is not None  # a write never removes the key
    return ControlWriteOut(
        key=key,
        before=result.before,
        after=result.after,
        changed=bool(result.response["changed"]),
        version=int(result.response["version"]),
        history_id=int(result.response["history_id"]),
        backend=store.name,
    )


def audited_reason(actor: Actor, reason: str) -> str:
    """The history row's reason, with how the change was authenticated (its audit trail)."""
    via = f"[via {actor.method.value} {actor.principal}"
    via += f" for {actor.claimed}]" if actor.claimed is not None else "]"
    return f"{reason[: MAX_REASON - len(via) - 1]} {via}" if reason else via


def _check_key(key: str) -> ControlKey:
    try:
        return parse_key(key)
    except ControlValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None


def _unavailable(err: ActionError) -> HTTPException:
    if isinstance(err, RetryableError):
        return HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, str(err), headers={"Retry-After": "1"}
        )
    return HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(err))
