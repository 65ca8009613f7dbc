"""``ballast controls list|set|history``: the built-in control store, straight from the database.

Works without a running server (the database named by ``BALLAST_DATABASE_URL``), so a
responder can flip a kill switch even when Ballast itself is down. Every ``set`` is recorded
in the key's history with the actor, exactly like a change made through the API or Slack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from bot.cli.base import command, new_app
from bot.cli.output import fail, run_async
from bot.cli.store import DatabaseUrlOption, load_settings, open_existing

if TYPE_CHECKING:
    from actions.backends.base import FlagValue, WriteResult
    from actions.control_values import ControlKey
    from bot.controls.store import BuiltinControlStore, ControlChange

controls_app = new_app(help="Read and set AI control values in the built-in store.")

T = TypeVar("T")


@command(controls_app, "list")
def list_command(
    service: Annotated[
        str | None, typer.Option(metavar="NAME", help="Only this service's keys.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List the control values AI applications read over OFREP."""
    from bot.api.controls import ControlOut

    if service is not None and not _is_name(service):
        fail(f"--service {service!r} is not a service name (a-z 0-9 _ -, at most 63)")
    controls = _run(database_url, lambda store: store.list(service))
    if as_json:
        out = {"controls": [ControlOut.model_validate(c).model_dump(mode="json") for c in controls]}
        typer.echo(json.dumps(out, indent=2))
        return
    if not controls:
        typer.echo("no control values" + (f" for {service}" if service else ""))
        return
    width = max(len(c.key) for c in controls)
    for control in controls:
        typer.echo(
            f"{control.key:<{width}}  {_show(control.value):<16} v{control.version:<4} "
            f"{control.updated_at:%Y-%m-%d %H:%M:%SZ}  {control.updated_by}"
        )


@command(controls_app, "set")
def set_command(
    key: Annotated[
        str, typer.Argument(metavar="KEY", help="e.g. support.tools.web_search.enabled")
    ],
    value: Annotated[
        str, typer.Argument(metavar="VALUE", help="true/false for tool switches, else a string.")
    ],
    actor: Annotated[
        str,
        typer.Option(
            metavar="NAME", envvar="BALLAST_ACTOR", help="Who is making the change (recorded)."
        ),
    ],
    reason: Annotated[
        str, typer.Option(metavar="TEXT", help="Why (recorded in the history).")
    ] = "",
    database_url: DatabaseUrlOption = None,
) -> None:
    """Set a control value; applications see it within a fraction of a second."""
    from actions.control_values import parse_key

    parsed = _parse_value(key, value)
    _check_builtin(database_url, parse_key(key))
    result: WriteResult = _run(
        database_url, lambda store: store.write(key, parsed, actor=actor, reason=reason)
    )
    note = "" if result.response.get("changed") else " (unchanged)"
    typer.echo(
        f"{key}: {_show(result.before)} → {_show(result.after)}"
        f" (version {result.response.get('version')}){note}"
    )


@command(controls_app, "history")
def history_command(
    key: Annotated[str, typer.Argument(metavar="KEY")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many, newest first.")] = 50,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show who changed a key, when, why and through which backend, newest first."""
    from actions.control_values import ControlValueError, parse_key
    from bot.api.controls import ChangeOut

    try:
        parse_key(key)
    except ControlValueError as err:
        fail(str(err))
    changes: list[ControlChange] = _run(database_url, lambda store: store.history(key, limit=limit))
    if as_json:
        out = {
            "key": key,
            "history": [ChangeOut.model_validate(c).model_dump(mode="json") for c in changes],
        }
        typer.echo(json.dumps(out, indent=2))
        return
    if not changes:
        typer.echo(f"no recorded changes of {key}")
        return
    for change in changes:
        why = f"  ({change.reason})" if change.reason else ""
        typer.echo(
            f"{change.at:%Y-%m-%d %H:%M:%SZ}  {change.actor:<14} "
            f"{_show(change.before)} → {_show(change.after)}  [{change.source}]{why}"
        )


def _parse_value(key: str, text: str) -> FlagValue:
    """``true``/``false`` for tool switches, the text itself for every other key."""
    from actions.control_values import ControlValueError, parse_key

    try:
        control = parse_key(key)
    except ControlValueError as err:
        fail(str(err))
    if control.value_type != "bool":
        return text
    if text.lower() not in ("true", "false"):
        fail(f"{key} is a tool switch: VALUE must be true or false, not {text!r}")
    return text.lower() == "true"


def _check_builtin(database_url: str | None, control: ControlKey) -> None:
    """Refuse to set a key in the built-in store when ballast.yaml puts it elsewhere."""
    from bot.config import load_config
    from bot.errors import ConfigError

    try:
        config = load_config(load_settings(database_url).config)
    except ConfigError as err:
        fail(str(err))
    service = config.services.get(control.service)
    if service is not None and service.backend.type != "builtin":
        fail(
            f"{control.service}'s controls live in {service.backend.type} "
            f"(services.{control.service}.backend in ballast.yaml), which its applications "
            f"read; setting {control.key} here would change nothing they see"
        )


def _run(database_url: str | None, work: Callable[[BuiltinControlStore], Awaitable[T]]) -> T:
    """Run ``work`` against the store of ``BALLAST_DATABASE_URL``; errors exit 1 with a line.

    The database must exist: a missing one means the wrong folder or URL, and a control set in
    a new, empty database would reach no application.
    """
    from actions.errors import ActionError
    from bot.controls.store import BuiltinControlStore

    async def main() -> T:
        db = await open_existing(load_settings(database_url))
        try:
            return await work(BuiltinControlStore(db, _utc_now))
        finally:
            await db.close()

    try:
        return run_async(main())
    except ActionError as err:  # ControlValueError included: it names the key and the fix
        fail(str(err))


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _is_name(text: str) -> bool:
    from actions.base import NAME_PATTERN

    return re.fullmatch(NAME_PATTERN, text) is not None


def _show(value: FlagValue | None) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
