"""Link templates whose values are percent-encoded: trace search URLs (``traces:`` in
ballast.yaml).

A template is a URL with ``{name}`` placeholders (``{{`` and ``}}`` are literal braces)::

    https://jaeger.example/search?service={service}&start={start_us}&end={end_us}

Every value is percent-encoded as a URL component (``quote(value, safe="")``), because the
values are alert labels and labels are the sender's text: ``{labels.tool}`` holding
``x&evil=1#`` cannot add a query parameter, a fragment or a path. ``{name|json}`` first escapes
the value as the inside of a JSON string (``"`` → ``\\"``), for the many trace UIs (Grafana
Explore, Jaeger's tags, Honeycomb) that carry a JSON document in one query parameter: there a
quote in a label cannot end the string it is placed in. Each ``|json`` escapes once more, for
a string inside a string: ``{service|json|json}`` in a TraceQL string (``\\"…\\"``) inside
Grafana's JSON.

Placeholders are checked when the template is loaded (an unknown name is an error naming it),
so rendering fails only on a value the incident does not have (a label its alerts lack).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from bot.errors import TemplateError

NAMES = (
    "service",
    "incident_id",
    "alertname",
    "start",
    "end",
    "start_s",
    "end_s",
    "start_ms",
    "end_ms",
    "start_us",
    "end_us",
    # What was live for the service (the change log's latest model, prompt and index).
    "model",
    "prompt_version",
    "retrieval_index",
    # One trace (an exemplar's), in a ``trace_url`` template.
    "trace_id",
)
"""The placeholders besides ``labels.<name>``; the README's Configuration lists what each holds."""

_PART = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER = re.compile(r"(?P<name>labels\.[^|{}]+|[a-z_]+)(?P<filters>(?:\|json)*)")


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str  # "service", or "labels.tool"
    json: int  # how many times to escape it as the inside of a JSON string first


@dataclass(frozen=True, slots=True)
class UrlTemplate:
    """A parsed template: literal text and placeholders, in order."""

    source: str
    parts: tuple[str | Placeholder, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names it needs (``tool`` for ``{labels.tool}``)."""
        return tuple(
            part.name.removeprefix("labels.")
            for part in self.parts
            if isinstance(part, Placeholder) and part.name.startswith("labels.")
        )

    def render(self, values: Mapping[str, str]) -> str:
        """The URL with every placeholder's value encoded; TemplateError names a missing one."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = values.get(part.name)
            if value is None:
                what = (
                    f"label {part.name.removeprefix('labels.')!r}"
                    if part.name.startswith("labels.")
                    else part.name
                )
                raise TemplateError(f"the incident has no {what} for {{{part.name}}}")
            for _ in range(part.json):
                value = json.dumps(value, ensure_ascii=False)[1:-1]
            out.append(quote(value, safe="", errors="replace"))
        return "".join(out)


def parse_url_template(source: str) -> UrlTemplate:
    """Parse ``source``; raises ``ValueError`` naming an unknown or malformed placeholder."""
    parts: list[str | Placeholder] = []
    position = 0
    for found in _PART.finditer(source):
        parts.append(source[position : found.start()])
        position = found.end()
        token = found.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
            continue
        inner = found.group(1)
        if inner is None:
            raise ValueError(
                f"a lone {token!r} at character {found.start() + 1}: write {token * 2} for a "
                "literal brace"
            )
        placeholder = _PLACEHOLDER.fullmatch(inner.strip())
        if placeholder is None or (
            not placeholder["name"].startswith("labels.") and placeholder["name"] not in NAMES
        ):
            raise ValueError(
                f"unknown placeholder {{{inner}}}: use labels.<name> or one of "
                f"{', '.join(NAMES)}, optionally followed by |json (once per level of quoting)"
            )
        parts.append(Placeholder(placeholder["name"], placeholder["filters"].count("|json")))
    parts.append(source[position:])
    return UrlTemplate(source, tuple(part for part in parts if part != ""))
