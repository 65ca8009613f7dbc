"""Mitigation actions and the control planes they act on. Never imports ``bot``."""

from actions.base import Action, ActionParams, Risk
from actions.registry import BUILTIN_ACTIONS, ActionRegistry, default_registry

__all__ = [
    "BUILTIN_ACTIONS",
    "Action",
    "ActionParams",
    "ActionRegistry",
    "Risk",
    "default_registry",
]
