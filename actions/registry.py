"""Explicit registration: the built-in actions are listed here, once, and nowhere else.

Third-party actions come through the ``ballast.actions`` entry-point group; a name that is
already taken is an error, never a silent override.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

from actions.base import Action
from actions.builtin.disable_tool import DisableTool
from actions.builtin.enable_tool import EnableTool
from actions.builtin.force_human_review import ForceHumanReview
from actions.builtin.http_request import HttpRequest
from actions.builtin.notify import Notify
from actions.builtin.page import Page
from actions.builtin.rollback_prompt import RollbackPrompt
from actions.builtin.rollback_retrieval_index import RollbackRetrievalIndex
from actions.builtin.set_autonomy import SetAutonomy
from actions.builtin.switch_model import SwitchModel

BUILTIN_ACTIONS: tuple[type[Action[Any]], ...] = (
    DisableTool,
    EnableTool,
    SetAutonomy,
    SwitchModel,
    RollbackPrompt,
    RollbackRetrievalIndex,
    ForceHumanReview,
    HttpRequest,
    Notify,
    Page,
)

ENTRY_POINT_GROUP = "ballast.actions"


class DuplicateActionError(ValueError):
    """Two actions claim the same name."""


class ActionRegistry(Mapping[str, Action[Any]]):
    """Name → action instance. Immutable once built."""

    def __init__(self, actions: Iterable[Action[Any]]) -> None:
        self._actions: dict[str, Action[Any]] = {}
        for action in actions:
            if action.name in self._actions:
                raise DuplicateActionError(
                    f"action name {action.name!r} is registered twice "
                    f"({type(self._actions[action.name]).__qualname__} and "
                    f"{type(action).__qualname__}); rename one of them"
                )
            self._actions[action.name] = action

    def __getitem__(self, name: str) -> Action[Any]:
        return self._actions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._actions)

    def __len__(self) -> int:
        return len(self._actions)


def default_registry(*, plugins: bool = True) -> ActionRegistry:
    """The built-ins plus any installed third-party actions."""
    actions: list[Action[Any]] = [cls() for cls in BUILTIN_ACTIONS]
    if plugins:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            loaded = entry.load()
            actions.append(loaded() if isinstance(loaded, type) else loaded)
    return ActionRegistry(actions)
