"""Logging set-up: readable lines by default, one JSON object per line for log shippers.

Messages quote what arrived from outside (alert labels, actors, Slack text), so one log record
is always one line: the text format writes control characters in a message as escapes
(``\\n``, ``\\x1b``), so a label cannot forge a second line or colour the terminal; JSON
escapes them by itself.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from bot.settings import LogFormat

# Record attributes that are not extra fields. ``color_message`` is uvicorn's copy of the
# message with ANSI colour codes, for its own formatter: never ours.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}
# APScheduler logs every job run at INFO ("Running job ...", "... executed successfully"):
# with the one-second timer poll that was nine lines in ten of a quiet server's log.
_QUIET = ("apscheduler",)
# C0 and C1 controls (newline, carriage return, ESC...) and Unicode's line separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def escape_controls(text: str) -> str:
    """Control characters as Python escapes: ``\\n``, ``\\x1b``, ``\\u2028``."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class TextFormatter(logging.Formatter):
    """The readable format, one line per message whatever the message quotes.

    A traceback (``exc_info``) keeps its lines: it is Ballast's own text, printed after.
    """

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(fmt: LogFormat, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
