"""The pieces every ``ballast`` command is built from: plain help, ``-h``, typed-free usage.

Help is plain text (no Rich): it reads like ``amtool``'s or ``kubectl``'s, pipes cleanly, and
keeps Rich out of start-up. Typer 0.29 writes each parameter's Python type (``<str>``,
``<list[Path]>``) next to it; the classes below drop those, so every value option names its
value with an explicit ``metavar`` instead. Options read from the environment say which variable.

This module must stay cheap to import: ``ballast --help`` imports it and every command module,
and the command modules import their heavy dependencies inside the command functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

F = TypeVar("F", bound=Callable[..., Any])

MAX_ID = 2**63 - 1
"""The largest id a 64-bit column holds (as bot.api.schemas.MAX_ID): larger is a usage error."""
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
_PYTHON_TYPE = re.compile(r" ?<[A-Za-z_][^<>]*>")


def _format_parameters(command: Any, ctx: Any, formatter: Any) -> None:
    arguments: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        name, text = record
        # Older typer escapes "[" for Rich even when help is plain (a backslash before [required]).
        row = (_PYTHON_TYPE.sub("", name), text.replace("\\[", "["))
        (arguments if param.param_type_name == "argument" else options).append(row)
    for title, rows in (("Arguments", arguments), ("Options", options)):
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows)


class Command(TyperCommand):
    def format_options(self, ctx: Any, formatter: Any) -> None:
        _format_parameters(self, ctx, formatter)


class Group(TyperGroup):
    def format_options(self, ctx: Any, formatter: Any) -> None:
        _format_parameters(self, ctx, formatter)
        self.format_commands(ctx, formatter)


def new_app(help: str, **kwargs: Any) -> typer.Typer:
    """A typer app (or sub-app) with plain help and ``-h``; register commands with
    :func:`command`."""
    return typer.Typer(
        help=help,
        cls=Group,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings=CONTEXT_SETTINGS,
        **kwargs,
    )


def command(app: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """``app.command(name)`` with the plain-help command class."""
    decorator: Callable[[F], F] = app.command(
        name, cls=Command, context_settings=CONTEXT_SETTINGS, **kwargs
    )
    return decorator


class PayloadSource(StrEnum):
    """``bot.intake.alert.AlertSource``'s values, without importing the payload parsers at
    start-up (a test keeps the two equal)."""

    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    GENERIC = "generic"
    PAGERDUTY = "pagerduty"
    DATADOG = "datadog"
    OPSGENIE = "opsgenie"


SourceOption = Annotated[
    PayloadSource | None,
    typer.Option(
        "--source",
        metavar="FORMAT",
        help="Payload format: alertmanager, grafana, generic, pagerduty, datadog or "
        "opsgenie; detected when not given.",
    ),
]
