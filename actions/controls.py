"""The control values an AI application reads, and the flag keys they live under.

One documented convention, exactly::

    <service>.tools.<tool>.enabled   bool
    <service>.autonomy               full | supervised | suggest_only | off
    <service>.model                  string
    <service>.prompt_version         string
    <service>.retrieval_index        string
    <service>.human_review           off | high_risk | all

Keys are restricted to ``[a-z0-9._-]`` (OpenFeature OFREP clients put them in URLs unencoded).
"""

from __future__ import annotations

import re
from enum import StrEnum

KEY_PATTERN = re.compile(r"^[a-z0-9._-]{1,200}\Z")


class AutonomyLevel(StrEnum):
    """Ordered from most to least autonomous."""

    FULL = "full"
    SUPERVISED = "supervised"
    SUGGEST_ONLY = "suggest_only"
    OFF = "off"

    @property
    def rank(self) -> int:
        """Higher means more autonomy."""
        return len(_AUTONOMY_ORDER) - 1 - _AUTONOMY_ORDER.index(self)


_AUTONOMY_ORDER = list(AutonomyLevel)


class HumanReviewLevel(StrEnum):
    """Ordered from least to most human review."""

    OFF = "off"
    HIGH_RISK = "high_risk"
    ALL = "all"

    @property
    def rank(self) -> int:
        """Higher means more review."""
        return list(HumanReviewLevel).index(self)


def tool_enabled_key(service: str, tool: str) -> str:
    return f"{service}.tools.{tool}.enabled"


def autonomy_key(service: str) -> str:
    return f"{service}.autonomy"


def model_key(service: str) -> str:
    return f"{service}.model"


def prompt_version_key(service: str) -> str:
    return f"{service}.prompt_version"


def retrieval_index_key(service: str) -> str:
    return f"{service}.retrieval_index"


def human_review_key(service: str) -> str:
    return f"{service}.human_review"
