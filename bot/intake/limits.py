"""What intake does to a value no store or reader should have to take: alter it, say so, keep it.

A sender answered 4xx drops the notification (Alertmanager drops the whole group), so an alert
is never refused for one value in it. Instead:

- a character a database cannot store — NUL (PostgreSQL text) or a lone UTF-16 surrogate (not
  Unicode; UTF-8 cannot encode it) — becomes U+FFFD;
- a value longer than its limit is cut, ending with ``…[truncated N chars]``: label values at
  :data:`MAX_LABEL_VALUE_CHARS`, annotation values at :data:`MAX_ANNOTATION_VALUE_CHARS`, names
  at :data:`MAX_NAME_CHARS`, and all values of one alert together at :data:`MAX_ALERT_CHARS`
  (labels are kept first: they route; annotations take what is left).

Every change is listed in the alert's ``ballast_intake`` annotation (field and what was done)
and counted in ``ballast_alert_values_altered_total{reason}``. Real alerts are far inside the
limits; a clean alert costs one pass of length and NUL checks and is returned unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

MAX_LABEL_VALUE_CHARS = 16_384
MAX_ANNOTATION_VALUE_CHARS = 65_536
MAX_NAME_CHARS = 1_024
MAX_ALERT_CHARS = 262_144
MAX_URL_CHARS = 16_384
INTAKE_ANNOTATION = "ballast_intake"
REPLACEMENT = "\ufffd"
_MAX_LISTED = 20

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class AlterReason(StrEnum):
    TRUNCATED = "truncated"
    UNSTORABLE_CHARACTER = "unstorable_character"


@dataclass(frozen=True, slots=True)
class Alteration:
    """One value intake changed: where (``labels.note``) and why."""

    field: str
    reason: AlterReason
    detail: str

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}"


def storable(text: str) -> bool:
    """No NUL and no lone surrogate (the common ASCII case is one C-level scan)."""
    if text.isascii():
        return "\x00" not in text
    return _UNSTORABLE.search(text) is None


def scrub(text: str, field: str, altered: list[Alteration]) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD, recorded in ``altered``."""
    if storable(text):
        return text
    count = 0

    def replace(_: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return REPLACEMENT

    clean = _UNSTORABLE.sub(replace, text)
    altered.append(
        Alteration(
            field,
            AlterReason.UNSTORABLE_CHARACTER,
            f"{count} character(s) a database cannot store (NUL or a lone surrogate) "
            "replaced with U+FFFD",
        )
    )
    return clean


def truncate(text: str, limit: int, field: str, altered: list[Alteration]) -> str:
    """``text`` cut to ``limit`` characters including the marker, recorded in ``altered``."""
    if len(text) <= limit:
        return text
    cut = len(text)
    while True:  # the marker's own length depends on the number it names
        marker = f"…[truncated {cut} chars]"
        keep = max(limit - len(marker), 0)
        if len(text) - keep == cut:
            break
        cut = len(text) - keep
    altered.append(
        Alteration(field, AlterReason.TRUNCATED, f"{len(text)} characters cut to {limit}")
    )
    return text[:keep] + marker


def bound_text(text: str | None, limit: int, field: str, altered: list[Alteration]) -> str | None:
    """A single field (fingerprint, URL, group key): scrubbed and truncated."""
    if text is None:
        return None
    return truncate(scrub(text, field, altered), limit, field, altered)


def _clean(labels: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
    total = 0
    for name, value in labels.items():
        total += len(value)
        if len(value) > MAX_LABEL_VALUE_CHARS or len(name) > MAX_NAME_CHARS:
            return False
        if not (storable(value) and storable(name)):
            return False
    for name, value in annotations.items():
        total += len(value)
        if len(value) > MAX_ANNOTATION_VALUE_CHARS or len(name) > MAX_NAME_CHARS:
            return False
        if not (storable(value) and storable(name)):
            return False
    return total <= MAX_ALERT_CHARS


def bound_alert(
    labels: dict[str, str], annotations: dict[str, str], altered: list[Alteration]
) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations within the limits; the same dicts when nothing had to change.

    Changes are appended to ``altered``; the caller records them with :func:`record`.
    """
    if _clean(labels, annotations):
        return labels, annotations
    budget = MAX_ALERT_CHARS
    out_labels: dict[str, str] = {}
    for name, value in labels.items():
        key = _name(name, "labels", altered)
        field = f"labels.{key[:64]}"
        text = truncate(scrub(value, field, altered), MAX_LABEL_VALUE_CHARS, field, altered)
        text = truncate(text, max(budget, 0), field, altered)
        budget -= len(text)
        out_labels[key] = text
    out_annotations: dict[str, str] = {}
    for name, value in annotations.items():
        key = _name(name, "annotations", altered)
        field = f"annotations.{key[:64]}"
        text = truncate(scrub(value, field, altered), MAX_ANNOTATION_VALUE_CHARS, field, altered)
        text = truncate(text, max(budget, 0), field, altered)
        budget -= len(text)
        out_annotations[key] = text
    return out_labels, out_annotations


def _name(name: str, where: str, altered: list[Alteration]) -> str:
    field = f"{where} name {name[:64]!r}"
    return truncate(scrub(name, field, altered), MAX_NAME_CHARS, field, altered)


def record(annotations: dict[str, str], altered: list[Alteration]) -> dict[str, str]:
    """``annotations`` plus ``ballast_intake`` listing what was altered (unchanged if nothing)."""
    if not altered:
        return annotations
    listed = "; ".join(str(change) for change in altered[:_MAX_LISTED])
    if len(altered) > _MAX_LISTED:
        listed += f"; and {len(altered) - _MAX_LISTED} more"
    return {**annotations, INTAKE_ANNOTATION: f"altered at intake: {listed}"}
