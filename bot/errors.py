"""Every error Ballast raises on purpose, in one tree.

::

    BallastError
    ├── ConfigError              settings or ballast.yaml are wrong; the message names the key
    ├── RunbookError             a runbook cannot be loaded; carries file:line:col diagnostics
    ├── MatcherSyntaxError       an Alertmanager matcher string does not parse (has a column)
    ├── TemplateError            a Jinja2 template is invalid or references a missing variable
    ├── PayloadError             a webhook body is not what its source sends; names the field
    ├── NotFoundError            an incident, runbook or mitigation id does not exist
    ├── ConflictError            the request is valid but the incident's state forbids it
    └── PolicyError              the actor may not do this (not an owner, same person twice)

Messages say what is wrong, quote the bad value, and say how to fix it. Retryable failures
of control planes live in ``actions.errors``; only the executor retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class BallastError(Exception):
    """Base of every error Ballast raises on purpose."""


class ConfigError(BallastError):
    """Settings or ``ballast.yaml`` are wrong."""


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    """One problem found in a runbook file, printed as ``path:line:col: message``."""

    path: Path
    line: int
    col: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}:{self.col}: {prefix}{self.message}"


class RunbookError(BallastError):
    """A runbook catalog could not be loaded; ``diagnostics`` lists every problem."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.severity == "error"]
        super().__init__(f"{len(errors)} runbook error(s):\n" + "\n".join(str(d) for d in errors))


class MatcherSyntaxError(BallastError):
    """A matcher string is not valid Alertmanager matcher syntax."""

    def __init__(self, message: str, text: str, column: int = 1) -> None:
        self.text = text
        self.column = column
        super().__init__(message)


class TemplateError(BallastError):
    """A template does not compile, or rendering it referenced something undefined."""


class PayloadError(BallastError):
    """A webhook payload does not have the shape its source sends."""

    def __init__(self, message: str, field: str = "") -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class NotFoundError(BallastError):
    """The thing named does not exist."""


class ConflictError(BallastError):
    """The incident's current state forbids the request."""


class PolicyError(BallastError):
    """The actor is not allowed to do this."""
