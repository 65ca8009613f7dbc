"""Durations written the way Prometheus and Alertmanager write them: ``90s``, ``10m``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}
_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?\Z"
)
_ORDER = ("y", "w", "d", "h", "m", "s", "ms")


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration; units must be in decreasing order, like Prometheus asks."""
    found = _DURATION_RE.match(text.strip()) if isinstance(text, str) else None
    if not text or found is None or not any(found.groups()):
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit, e.g. 90s, 10m, 2h or 1h30m "
            "(units ms, s, m, h, d, w, y, largest first)"
        )
    seconds = sum(
        int(amount) * _UNIT_SECONDS[unit]
        for amount, unit in zip(found.groups(), _ORDER, strict=True)
        if amount
    )
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest Prometheus-style spelling, e.g. ``1h30m``."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    parts: list[str] = []
    for unit in _ORDER:
        size = int(_UNIT_SECONDS[unit] * 1000)
        amount, total_ms = divmod(total_ms, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
