"""Render the facts into Markdown with a Jinja2 template, in a sandbox.

Templates come from git, so they run in Jinja's ``SandboxedEnvironment`` with
``StrictUndefined``: a template cannot reach Python internals, and a misspelt variable is an
error naming the template and line instead of an empty string in the draft. The template is,
first found: the runbook's ``postmortem.template`` (relative to the runbook file), the team's
``_postmortem.md.j2`` beside the runbooks (the loader skips ``_`` files), the built-in default.
A template that fails falls back to the default, and the draft says why in ``template_error``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from bot.errors import TemplateError
from bot.postmortem.markdown import Safe, code, escape_value, link, md, url
from bot.postmortem.models import PostmortemFacts

log = logging.getLogger(__name__)

DEFAULT_DIR = Path(__file__).with_name("templates")
DEFAULT_TEMPLATE = DEFAULT_DIR / "default.md.j2"
TEAM_TEMPLATE = "_postmortem.md.j2"


@dataclass(frozen=True, slots=True)
class Draft:
    incident_id: int
    title: str
    summary: str
    markdown: str
    template: str
    polished: bool = False
    template_error: str | None = None


def utc(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """``1h 5m 3s``; whole seconds (the journal has no finer meaning)."""
    if seconds is None:
        return "—"
    total = round(seconds)
    sign, total = ("-" if total < 0 else ""), abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    if minutes or (hours and secs):
        parts.append(f"{minutes}m")
    if secs or not parts:
        parts.append(f"{secs}s")
    return sign + " ".join(parts)


def value(raw: Any) -> str:
    """A control value as the flag convention writes it; None is an unset key."""
    if raw is None:
        return "unset"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def span(start: datetime, until: datetime | None) -> str:
    """A timeline time, or a range for a collapsed run (an en dash between the two times)."""
    first = start.strftime("%Y-%m-%d %H:%M:%S")
    if until is None or until == start:
        return first
    last = until.strftime("%H:%M:%S" if until.date() == start.date() else "%Y-%m-%d %H:%M:%S")
    return f"{first}\N{EN DASH}{last}"


def cell(text: Any) -> Safe:
    """Text safe inside a Markdown table cell (one line, no column breaks); plain text is
    escaped, Markdown already made (``| code``) only has its pipes escaped."""
    if isinstance(text, Safe):
        return Safe(re.sub(r"\s+", " ", text).replace("|", "\\|"))
    return md(text)


def slug(text: str, limit: int = 60) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "incident"


def file_name(facts: PostmortemFacts) -> str:
    """``<UTC date of opening>-<id>-<title slug>.md``: sorted by date, unique per incident."""
    return f"{facts.opened_at:%Y-%m-%d}-{facts.incident_id}-{slug(facts.title)}.md"


def summary_of(facts: PostmortemFacts) -> str:
    """The summary paragraph, from facts only. Values in backticks are names and control
    values a polish must keep verbatim (``bot.postmortem.polish`` checks)."""
    d = facts.detection
    alert = f" from alert {code(d.alertname)}" if d.alertname else ""
    sentences = [
        f"Incident #{facts.incident_id} “{md(facts.title)}” (severity {code(facts.severity)}, "
        f"service {code(facts.service or 'unknown')}) opened at {utc(facts.opened_at)}{alert}."
    ]
    if d.acknowledged_at is not None:
        sentences.append(
            f"It was acknowledged by {code(d.acknowledged_by)} at {utc(d.acknowledged_at)}."
        )
    else:
        sentences.append("It was never acknowledged.")
    applied = [m for m in facts.mitigations if m.applied_at is not None]
    if applied:
        parts = []
        for m in applied:
            change = (
                f" ({code(m.change.key)}: {code(value(m.change.before))} → "
                f"{code(value(m.change.after))})"
                if m.change
                else ""
            )
            undone = f", undone at {utc(m.undone_at)}" if m.undone_at else ""
            parts.append(f"{md(m.title)}{change} at {utc(m.applied_at)}{undone}")
        sentences.append(f"Mitigations applied: {'; '.join(parts)}.")
    else:
        sentences.append("No mitigation was applied through Ballast.")
    if facts.reopen_count:
        sentences.append(f"It was re-opened {facts.reopen_count} time(s).")
    if facts.resolved_at is not None:
        sentences.append(
            f"It was resolved at {utc(facts.resolved_at)} by {code(facts.resolved_by)}, "
            f"{duration(facts.phase('resolve').seconds)} after it opened."
        )
    else:
        sentences.append(f"It is still {code(facts.status)}.")
    return " ".join(sentences)


def choose_template(facts: PostmortemFacts, runbooks_root: Path | None) -> Path:
    """The runbook's own template, else the team's beside the runbooks, else the default."""
    if facts.runbook and facts.runbook.template and facts.runbook_path:
        return (Path(facts.runbook_path).parent / facts.runbook.template).resolve()
    if runbooks_root is not None:
        folder = runbooks_root if runbooks_root.is_dir() else runbooks_root.parent
        team = folder / TEAM_TEMPLATE
        if team.is_file():
            return team
    return DEFAULT_TEMPLATE


def render_draft(
    facts: PostmortemFacts, *, runbooks_root: Path | None = None, summary: str | None = None
) -> Draft:
    """Render with the chosen template; a failing one falls back to the default."""
    chosen = choose_template(facts, runbooks_root)
    text = summary if summary is not None else summary_of(facts)
    problem = None
    try:
        markdown = _render(chosen, facts, text)
    except TemplateError as err:
        if chosen == DEFAULT_TEMPLATE:
            raise
        log.error("postmortem of #%d: %s; using the default template", facts.incident_id, err)
        problem = str(err)
        chosen = DEFAULT_TEMPLATE
        markdown = _render(chosen, facts, text)
    return Draft(
        incident_id=facts.incident_id,
        title=f"Postmortem: {facts.title}",
        summary=text,
        markdown=markdown,
        template=str(chosen),
        polished=summary is not None,
        template_error=problem,
    )


def _environment(folder: Path) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(folder), str(DEFAULT_DIR)]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=escape_value,
    )
    env.filters.update(
        utc=utc, duration=duration, value=value, cell=cell, md=md, code=code, url=url
    )
    env.globals.update(span=span, link=link)
    return env


def _render(path: Path, facts: PostmortemFacts, summary: str) -> str:
    try:
        template = _environment(path.parent).get_template(path.name)
        return template.render(facts=facts, summary=Safe(summary), file_name=file_name(facts))
    except jinja2.TemplateNotFound as err:
        raise TemplateError(
            f"postmortem template {path} not found; fix `postmortem.template` in the runbook "
            f"(it is relative to the runbook file) or add the file ({err})"
        ) from None
    except jinja2.TemplateSyntaxError as err:
        raise TemplateError(
            f"{err.filename or path}:{err.lineno}: postmortem template syntax error: {err.message}"
        ) from None
    except (jinja2.TemplateError, TypeError, ValueError) as err:
        raise TemplateError(f"{path}: postmortem template failed: {err}") from None
