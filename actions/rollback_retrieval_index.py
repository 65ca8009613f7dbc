"""Point retrieval back at a known-good index after a bad or stale index rollout."""

from __future__ import annotations

from typing import ClassVar

from actions.base import Action, ActionParams, Risk
from actions.controls import retrieval_index_key
from actions.rollback_prompt import RollbackParams


class RollbackRetrievalIndex(Action[RollbackParams]):
    name = "rollback_retrieval_index"
    params_model: ClassVar[type[ActionParams]] = RollbackParams
    summary = "Roll back the retrieval index a service reads (sets <service>.retrieval_index)."

    def risk(self, params: RollbackParams, current: str | None = None) -> Risk:
        return Risk.MEDIUM

    def reversible(self, params: RollbackParams) -> bool:
        return True

    def describe(self, params: RollbackParams) -> str:
        key = retrieval_index_key(params.service)
        return f"Roll back the retrieval index of {params.service} to {params.target()} ({key})"
