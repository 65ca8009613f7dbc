"""What a change to an AI system can be, and which kinds a runbook's likely causes name.

A runbook's ``likely_causes`` are prose for people ("A prompt version shipped in the last
24h..."), so the kinds they name are found by words, documented in ``docs/changes.md``: the
kind's own name (``retrieval_index``) always counts, and so do the plain words below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum


class ChangeKind(StrEnum):
    PROMPT = "prompt"
    MODEL = "model"
    RETRIEVAL_INDEX = "retrieval_index"
    GUARDRAIL = "guardrail"
    TOOL_SCHEMA = "tool_schema"
    MODEL_SETTINGS = "model_settings"
    BUILD = "build"
    # Ballast's own control changes that are none of the above: a tool switched off, the
    # agent's autonomy lowered, human review forced.
    CONTROL = "control"


RECORDABLE = tuple(kind for kind in ChangeKind if kind is not ChangeKind.CONTROL)
"""The kinds a pipeline or a person records; ``control`` is written by Ballast only."""

# Control-key suffix → kind (bot/controls keys: <service>.<suffix>).
_CONTROL_KINDS = {
    "prompt_version": ChangeKind.PROMPT,
    "model": ChangeKind.MODEL,
    "retrieval_index": ChangeKind.RETRIEVAL_INDEX,
}

_WORDS: dict[ChangeKind, re.Pattern[str]] = {
    kind: re.compile(pattern, re.IGNORECASE)
    for kind, pattern in {
        ChangeKind.PROMPT: r"\bprompts?\b|\bsystem message\b",
        ChangeKind.RETRIEVAL_INDEX: r"\b(?:retrieval |vector |search )?index(?:es)?\b|\bre-?index",
        ChangeKind.MODEL: r"\bmodel (?:version|upgrade|swap|change|rollout|release)\b"
        r"|\bnew model\b|\bmodel was (?:upgraded|switched|changed)\b",
        ChangeKind.GUARDRAIL: r"\bguardrails?\b|\bsafety (?:filter|classifier|policy)\b",
        ChangeKind.TOOL_SCHEMA: r"\btool (?:schema|definition|signature)s?\b",
        ChangeKind.MODEL_SETTINGS: r"\btemperature\b|\bmax[_ ]tokens\b|\btop[_ ]p\b"
        r"|\bmodel settings\b|\bsampling\b",
        ChangeKind.BUILD: r"\bdeploy(?:ment|ed)?s?\b|\bbuilds?\b|\brelease[ds]?\b",
    }.items()
}


def kind_of_control(key: str) -> ChangeKind:
    """The kind of a change Ballast made to control ``key`` (``<service>.<suffix>``)."""
    suffix = key.split(".", 1)[1] if "." in key else key
    return _CONTROL_KINDS.get(suffix, ChangeKind.CONTROL)


def service_of_control(key: str) -> str:
    return key.split(".", 1)[0]


def kinds_named(texts: Iterable[str]) -> set[ChangeKind]:
    """The kinds that ``texts`` (a runbook's likely causes) name, by name or by plain word."""
    named: set[ChangeKind] = set()
    for text in texts:
        for kind in RECORDABLE:
            if kind.value in text or _WORDS[kind].search(text):
                named.add(kind)
    return named
