"""The ``/ballast`` slash command: text in, one small typed command out.

Parsing is separate from doing, so the listener branches on types (``match command: case
Run(...)``) and every mistake (unknown subcommand, missing or extra argument, a bad id) is a
:class:`CommandError` whose message is the usage to show the user, never a stack trace.
Subcommands are case-insensitive; incident ids may be written ``42`` or ``#42``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from actions.base import NAME_PATTERN
from bot.errors import BallastError
from bot.runbooks.schema import RUNBOOK_ID_PATTERN, SLUG_PATTERN
from bot.slack.text import escape

MAX_TEXT = 4000  # far above any real command; stops pathological input early
MAX_REASON = 2000  # as the API's ActorBody.reason
_INCIDENT_ID = re.compile(r"#?([0-9]{1,18})")


@dataclass(frozen=True, slots=True)
class Help:
    topic: str | None = None  # a subcommand, for its usage only


@dataclass(frozen=True, slots=True)
class ListIncidents:
    pass


@dataclass(frozen=True, slots=True)
class Show:
    incident_id: int


@dataclass(frozen=True, slots=True)
class Ack:
    incident_id: int


@dataclass(frozen=True, slots=True)
class Resolve:
    incident_id: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Run:
    incident_id: int
    mitigation_id: str


@dataclass(frozen=True, slots=True)
class Undo:
    incident_id: int
    mitigation_id: str


@dataclass(frozen=True, slots=True)
class Escalate:
    incident_id: int


@dataclass(frozen=True, slots=True)
class Runbooks:
    query: str | None = None


@dataclass(frozen=True, slots=True)
class ShowRunbook:
    runbook_id: str


@dataclass(frozen=True, slots=True)
class Controls:
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Postmortem:
    incident_id: int


Command = (
    Help
    | ListIncidents
    | Show
    | Ack
    | Resolve
    | Run
    | Undo
    | Escalate
    | Runbooks
    | ShowRunbook
    | Controls
    | Postmortem
)


class CommandError(BallastError, ValueError):
    """The text is not a valid ``/ballast`` command; ``str(err)`` is what to answer."""

    def __init__(self, problem: str, usage: str | None = None) -> None:
        self.problem = problem
        self.usage = usage
        lines = [problem] + ([f"Usage: `{usage}`"] if usage else []) + ["", HELP]
        super().__init__("\n".join(lines))


# name → (usage, one-line description); the order is the order of the help text.
_USAGE: dict[str, tuple[str, str]] = {
    "help": ("/ballast help [COMMAND]", "this help, or one command's usage"),
    "list": ("/ballast list", "open incidents, most severe first"),
    "show": ("/ballast show ID", "post an incident's message again, here"),
    "ack": ("/ballast ack ID", "acknowledge: you are on it (stops escalation)"),
    "resolve": ("/ballast resolve ID [REASON…]", "resolve, with an optional reason"),
    "run": ("/ballast run ID MITIGATION", "run or approve a mitigation (same rules as the button)"),
    "undo": ("/ballast undo ID MITIGATION", "undo an applied mitigation"),
    "escalate": ("/ballast escalate ID", "escalate now, without waiting for the timer"),
    "runbooks": ("/ballast runbooks [QUERY…]", "list runbooks, or search them"),
    "runbook": ("/ballast runbook RUNBOOK_ID", "show one runbook"),
    "controls": ("/ballast controls [SERVICE]", "current AI control values"),
    "postmortem": ("/ballast postmortem ID", "draft the postmortem of an incident"),
}
_ALIASES = {"acknowledge": "ack", "ls": "list", "?": "help", "-h": "help", "--help": "help"}

HELP = "\n".join(
    [
        "*Ballast* — incident response from Slack. IDs are incident numbers: `42` or `#42`.",
        *(f"`{usage}` — {what}" for usage, what in _USAGE.values()),
    ]
)


def parse_command(text: str) -> Command:
    """Parse what the user typed after ``/ballast``; raises :class:`CommandError` only."""
    if len(text) > MAX_TEXT:
        raise CommandError(f"that command is {len(text)} characters long; try a shorter one")
    first, _, rest = _split(text)
    if not first:
        return Help()
    name = first.lower()
    name = _ALIASES.get(name, name)
    parser = _PARSERS.get(name)
    if parser is None:
        close = difflib.get_close_matches(name, list(_USAGE), n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise CommandError(f"Unknown command `{_quote(first)}`.{hint}")
    return parser(_Args(name, rest))


def _split(text: str) -> tuple[str, str, str]:
    """Like ``str.partition`` at the first run of whitespace (any Unicode space, tab, newline)."""
    parts = text.split(maxsplit=1)
    if not parts:
        return "", "", ""
    return parts[0], " ", parts[1] if len(parts) > 1 else ""


class _Args:
    """The text after the subcommand, consumed word by word with usage-aware errors.

    Kept as text, not a word list, so a free-form tail (a resolve reason) keeps its spacing.
    """

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text.strip()

    def fail(self, problem: str) -> CommandError:
        return CommandError(problem, _USAGE[self.name][0])

    def more(self) -> bool:
        return bool(self.text)

    def take(self, what: str) -> str:
        if not self.text:
            raise self.fail(f"`{self.name}` needs {what}.")
        word, _, self.text = _split(self.text)
        self.text = self.text.strip()
        return word

    def rest(self) -> str | None:
        text, self.text = self.text, ""
        return text or None

    def done(self) -> None:
        if self.text:
            raise self.fail(f"`{self.name}` does not take `{_quote(self.text, 80)}`.")

    def incident(self) -> int:
        word = self.take("an incident ID")
        found = _INCIDENT_ID.fullmatch(word)
        if found is None or int(found.group(1)) < 1:
            raise self.fail(f"`{_quote(word)}` is not an incident ID; write `42` or `#42`.")
        return int(found.group(1))

    def slug(self, what: str, pattern: str, max_length: int) -> str:
        word = self.take(what).lower()
        if len(word) > max_length or not re.fullmatch(pattern, word):
            raise self.fail(f"`{_quote(word)}` is not {what}.")
        return word


def _quote(word: str, limit: int = 40) -> str:
    """User input echoed back: cut short, escaped, and unable to break out of a code span."""
    word = word if len(word) <= limit else word[: limit - 1] + "…"
    return escape(word.replace("`", "'"))


def _no_args(make: Callable[[], Command]) -> Callable[[_Args], Command]:
    def parse(args: _Args) -> Command:
        args.done()
        return make()

    return parse


def _incident_only(make: Callable[[int], Command]) -> Callable[[_Args], Command]:
    def parse(args: _Args) -> Command:
        incident_id = args.incident()
        args.done()
        return make(incident_id)

    return parse


def _with_mitigation(make: Callable[[int, str], Command]) -> Callable[[_Args], Command]:
    def parse(args: _Args) -> Command:
        incident_id = args.incident()
        mitigation = args.slug("a mitigation ID (e.g. `rollback-prompt`)", SLUG_PATTERN, 64)
        args.done()
        return make(incident_id, mitigation)

    return parse


def _help(args: _Args) -> Command:
    topic = args.take("a command").lower() if args.more() else None
    args.done()
    if topic is None:
        return Help()
    topic = _ALIASES.get(topic, topic)
    if topic not in _USAGE:
        raise args.fail(f"There is no command `{_quote(topic)}`.")
    return Help(topic)


def _resolve(args: _Args) -> Command:
    incident_id = args.incident()
    reason = args.rest()
    if reason is not None and len(reason) > MAX_REASON:
        raise args.fail(f"The reason is {len(reason)} characters; keep it under {MAX_REASON}.")
    return Resolve(incident_id, reason)


def _runbooks(args: _Args) -> Command:
    query = args.rest()
    if query is not None and len(query) > 200:
        raise args.fail("The search is too long; use a few words.")
    return Runbooks(query)


def _runbook(args: _Args) -> Command:
    runbook_id = args.slug("a runbook ID (see `/ballast runbooks`)", RUNBOOK_ID_PATTERN, 200)
    args.done()
    return ShowRunbook(runbook_id)


def _controls(args: _Args) -> Command:
    service = args.slug("a service name", NAME_PATTERN, 63) if args.more() else None
    args.done()
    return Controls(service)


_PARSERS: dict[str, Callable[[_Args], Command]] = {
    "help": _help,
    "list": _no_args(ListIncidents),
    "show": _incident_only(Show),
    "ack": _incident_only(Ack),
    "resolve": _resolve,
    "run": _with_mitigation(Run),
    "undo": _with_mitigation(Undo),
    "escalate": _incident_only(Escalate),
    "runbooks": _runbooks,
    "runbook": _runbook,
    "controls": _controls,
    "postmortem": _incident_only(Postmortem),
}


def usage(name: str) -> str:
    """One subcommand's usage line and description, for ``/ballast help NAME``."""
    line, what = _USAGE[_ALIASES.get(name, name)]
    return f"`{line}` — {what}"
