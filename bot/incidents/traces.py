"""Trace search links for an incident, from the ``traces:`` templates of ballast.yaml.

A responder should get from an incident to example traces of the failing requests in one
click: each template is filled with the incident's service, its first alert's labels, a time
range around it (``before`` the detection to ``after`` the resolve, or to now while it is open)
and what was live for the service (``model``, ``prompt_version``, ``retrieval_index``: the
change log's latest), each value percent-encoded (:mod:`bot.runbooks.url_templates`). A
template needing a value the incident lacks gives a link with a note instead of a broken URL.

Then the examples themselves: trace ids of the exemplars of the alert's PromQL, recorded in the
timeline by :mod:`bot.verification.exemplars`, each linked through ``trace_url``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.config import TraceLinkConfig
from bot.errors import TemplateError
from bot.incidents.read_model import AlertOut, IncidentSummary, TraceLink

LIVE_VERSIONS = ("model", "prompt_version", "retrieval_index")
"""The placeholders filled from the change log (what went live for the service)."""


@dataclass(frozen=True, slots=True)
class ExemplarTrace:
    """An example trace of the alert's PromQL: its id, when, and the metric it was seen on."""

    trace_id: str
    at: datetime
    metric: str


class TraceLinks:
    """The configured templates, parsed once; :meth:`for_incident` fills them in."""

    def __init__(self, configs: Sequence[TraceLinkConfig] = ()) -> None:
        self._links = [(config, config.template) for config in configs]

    def __bool__(self) -> bool:
        return bool(self._links)

    def _for_service(self, service: str | None) -> list[TraceLinkConfig]:
        return [c for c, _ in self._links if not c.services or service in c.services]

    def exemplars_wanted(self, service: str | None) -> int:
        """How many exemplar traces to look for (0: none of the service's links wants any)."""
        return max((c.exemplars for c in self._for_service(service)), default=0)

    def for_incident(
        self,
        incident: IncidentSummary,
        alerts: Sequence[AlertOut],
        now: datetime | None = None,
        *,
        versions: Mapping[str, str] | None = None,
        exemplars: Sequence[ExemplarTrace] = (),
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
                **{name: (versions or {}).get(name) for name in LIVE_VERSIONS},
                **{f"labels.{name}": value for name, value in labels.items()},
            }
            present = {name: value for name, value in values.items() if value is not None}
            try:
                out.append(TraceLink(title=config.title, url=template.render(present)))
            except TemplateError as err:
                out.append(TraceLink(title=config.title, url=None, note=f"no link: {err}"))
        out.extend(self._exemplar_links(incident.service, exemplars))
        return out

    def _exemplar_links(
        self, service: str | None, exemplars: Sequence[ExemplarTrace]
    ) -> list[TraceLink]:
        configs = self._for_service(service)
        wanted = max((c.exemplars for c in configs), default=0)
        linked = next((c for c in configs if c.trace_url), None)
        out = []
        for exemplar in exemplars[:wanted]:
            when = exemplar.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            seen = f"exemplar of {exemplar.metric} at {when}"
            title = f"Trace {exemplar.trace_id}"
            template = linked.trace_template if linked else None
            if template is None:
                out.append(TraceLink(title=title, url=None, note=seen, trace_id=exemplar.trace_id))
                continue
            try:
                url = template.render({"trace_id": exemplar.trace_id, "service": service or ""})
            except TemplateError as err:
                note = f"{seen}; no link: {err}"
                out.append(TraceLink(title=title, url=None, note=note, trace_id=exemplar.trace_id))
                continue
            out.append(TraceLink(title=f"{title} ({seen})", url=url, trace_id=exemplar.trace_id))
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
