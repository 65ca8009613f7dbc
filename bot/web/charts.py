"""Charts drawn on the server as inline SVG, each with a text alternative (a title, a
description and a table the page shows beside it): alerts per minute over an incident, and each
scorecard panel across the snapshots taken during its life. No script, no chart library."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from markupsafe import Markup, escape

from bot.incidents.read_model import IncidentDetail

WIDTH, HEIGHT, PAD = 640, 160, 28
PANEL_WIDTH = 400  # scorecard panels sit three to a row: a narrower frame keeps text readable
MAX_BARS = 120


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG and the rows of its text alternative (label, value as people read it)."""

    title: str
    svg: Markup
    rows: list[tuple[str, str]]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _frame(title: str, description: str, body: str, width: int = WIDTH) -> Markup:
    return Markup(  # noqa: S704 - numbers, fixed markup and escaped text only
        f'<svg class="chart" viewBox="0 0 {width} {HEIGHT}" role="img" '
        f'aria-labelledby="{_id(title)}-t {_id(title)}-d" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{_id(title)}-t">{escape(title)}</title>'
        f'<desc id="{_id(title)}-d">{escape(description)}</desc>'
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{width - 4}" '
        f'y2="{HEIGHT - PAD}"/>{body}</svg>'
    )


def _id(title: str) -> str:
    """A stable element id for a chart's title (unique per title on a page)."""
    return "chart-" + hashlib.sha256(title.encode()).hexdigest()[:12]


def alerts_per_minute(
    per_minute: Iterable[tuple[datetime, int]], resolved_at: datetime | None, now: datetime
) -> Chart | None:
    """Alerts that started in each minute (or wider step on a long incident): every alert of
    the incident, though its page lists only some. ``per_minute``: (a time in the minute, how
    many started then), as ``bot.store.incidents.alert_starts_per_minute`` counts them."""
    minutes_seen = sorted((_utc(at), count) for at, count in per_minute if count)
    if not minutes_seen:
        return None
    first = minutes_seen[0][0].replace(second=0, microsecond=0)
    last = minutes_seen[-1][0]
    end = _utc(resolved_at) if resolved_at else max(_utc(now), last)
    minutes = max(1, int((end - first).total_seconds() // 60) + 1)
    step = max(1, -(-minutes // MAX_BARS))  # minutes per bar
    bars = -(-minutes // step)
    counts = [0] * bars
    for at, count in minutes_seen:
        counts[min(bars - 1, int((at - first).total_seconds() // 60) // step)] += count
    top = max(counts)
    width = (WIDTH - PAD - 4) / bars
    body = []
    for i, count in enumerate(counts):
        height = (HEIGHT - 2 * PAD) * count / top
        at = first + timedelta(minutes=i * step)
        body.append(
            f'<rect class="bar" x="{PAD + i * width:.1f}" y="{HEIGHT - PAD - height:.1f}" '
            f'width="{max(width - 1, 1):.1f}" height="{height:.1f}">'
            f"<title>{at:%H:%M} UTC: {count}</title></rect>"
        )
    shown = "%H:%M" if end - first < timedelta(days=1) else "%m-%d %H:%M"
    body.append(f'<text x="{PAD}" y="{HEIGHT - 8}">{first:{shown}} UTC</text>')
    body.append(
        f'<text x="{WIDTH - 4}" y="{HEIGHT - 8}" text-anchor="end">{end:{shown}} UTC</text>'
    )
    body.append(f'<text x="{PAD - 4}" y="{PAD}" text-anchor="end">{top}</text>')
    unit = "minute" if step == 1 else f"{step} minutes"
    title = f"Alerts per {unit}"
    rows = [
        (f"{first + timedelta(minutes=i * step):%Y-%m-%d %H:%M} UTC", str(count))
        for i, count in enumerate(counts)
        if count
    ]
    description = (
        f"{sum(counts)} alerts from {first:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, "
        f"at most {top} per {unit}."
    )
    return Chart(title, _frame(title, description, "".join(body)), rows)


def scorecard_panels(detail: IncidentDetail) -> list[Chart]:
    """One line per scorecard panel through the snapshots (open, verifications, resolve)."""
    snapshots = sorted(detail.scorecards, key=lambda s: _utc(s.taken_at))
    names: list[str] = []
    for snapshot in snapshots:
        names += [p.name for p in snapshot.panels if p.name not in names]
    charts = []
    for name in names:
        points = []
        for snapshot in snapshots:
            for panel in snapshot.panels:
                if panel.name == name:
                    points.append((snapshot, panel))
        known = [p.value * p.scale for _, p in points if p.value is not None]
        low, high = (min(known), max(known)) if known else (0.0, 1.0)
        span = (high - low) or 1.0
        step = (PANEL_WIDTH - 2 * PAD) / max(1, len(points) - 1)
        body, line = [], []
        for i, (snapshot, panel) in enumerate(points):
            x = PAD + i * step if len(points) > 1 else PANEL_WIDTH / 2
            anchor = "middle"  # the end points' labels stay inside the frame
            if len(points) > 1 and i in (0, len(points) - 1):
                anchor = "start" if i == 0 else "end"
            label = escape(f"{snapshot.label}: {panel.shown}")
            if panel.value is None:
                body.append(f'<text x="{x:.1f}" y="{HEIGHT / 2:.0f}" text-anchor="middle">?</text>')
            else:
                y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * ((panel.value * panel.scale) - low) / span
                line.append(f"{x:.1f},{y:.1f}")
                body.append(
                    f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="5">'
                    f"<title>{label}</title></circle>"
                )
                body.append(
                    f'<text x="{x:.1f}" y="{y - 9:.1f}" text-anchor="{anchor}">'
                    f"{escape(panel.shown)}</text>"
                )
            body.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
                f"{escape(snapshot.moment)}</text>"
            )
        if len(line) > 1:
            body.insert(0, f'<polyline class="line" points="{" ".join(line)}"/>')
        good = points[0][1].good if points else "down"
        title = f"{name} ({'lower' if good == 'down' else 'higher'} is better)"
        rows = [(f"{s.label} ({_utc(s.taken_at):%Y-%m-%d %H:%M} UTC)", p.shown) for s, p in points]
        description = ", ".join(f"{label}: {value}" for label, value in rows)
        svg = _frame(title, description, "".join(body), PANEL_WIDTH)
        charts.append(Chart(title, svg, rows))
    return charts
