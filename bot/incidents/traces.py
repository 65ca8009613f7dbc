"""Trace search links for an incident, from the ``traces:`` templates of ballast.yaml.

A responder should get from an incident to example traces of the failing requests in one
click: each template is filled with the incident's service, its first alert's labels and a
time range around it (``before`` the detection to ``after`` the resolve, or to now while it
is open), each value percent-encoded (:mod:`bot.runbooks.url_templates`). A template needing a
label the incident's alerts lack gives a link with a note instead of a broken URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.config import TraceLinkConfig
from bot.errors import TemplateError
from bot.incidents.read_model import AlertOut, IncidentSummary, TraceLink


class TraceLinks:
    """The configured templates, parsed once; :meth:`for_incident` fills them in."""

    def __init__(self, configs: Sequence[TraceLinkConfig] = ()) -> None:
        self._links = [(config, config.template) for config in configs]

    def __bool__(self) -> bool:
        return bool(self._links)

    def for_incident(
        self, incident: IncidentSummary, alerts: Sequence[AlertOut], now: datetime | None = None
    ) -> list[TraceLink]:
        now = now or datetime.now(UTC)
        labels = dict(alerts[0].labels) if alerts else {}
        labels.update(incident.group_labels)
        out = []
        for config, template in self._links:
            if config.services and incident.service not in config.services:
                continue
            start = _utc(incident.detected_at) - config.before
            end = _utc(incident.resolved_at) + config.after if incident.resolved_at else now
            values = {
                "incident_id": str(incident.id),
                "alertname": labels.get("alertname"),
                "service": incident.service,
                "start": start.isoformat().replace("+00:00", "Z"),
                "end": end.isoformat().replace("+00:00", "Z"),
                **_epochs("start", start),
                **_epochs("end", end),
                **{f"labels.{name}": value for name, value in labels.items()},
            }
            present = {name: value for name, value in values.items() if value is not None}
            try:
                out.append(TraceLink(title=config.title, url=template.render(present)))
            except TemplateError as err:
                out.append(TraceLink(title=config.title, url=None, note=f"no link: {err}"))
        return out


def _epochs(name: str, at: datetime) -> dict[str, str]:
    micros = int(at.timestamp()) * 1_000_000 + at.microsecond
    return {
        f"{name}_s": str(micros // 1_000_000),
        f"{name}_ms": str(micros // 1_000),
        f"{name}_us": str(micros),
    }


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
