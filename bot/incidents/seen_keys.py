"""The incident keys this process's engine has worked on: a guess at which keys are new.

A lone alert whose key is not among them is likely the first of its key, so its batch tries
the statement that inserts the key's first incident at once
(:func:`bot.store.incident_batch.insert_first_of_key`), one round trip fewer on the path to its
first mitigation. Only a guess: the statement checks the database and inserts nothing when the
key has incidents (another replica's, an earlier process's), and the batch then reads them as
usual, one statement later than without the guess. Remembering keys keeps that cost off the
alerts of incidents already open (an Alertmanager group repeats every few minutes).
"""

from __future__ import annotations

from collections.abc import Iterable

# Keys remembered at most (the least recently seen forgotten first): about 1.6 MB of keys of
# 90 characters.
DEFAULT_LIMIT = 10_000


class SeenKeys:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._limit = limit
        self._keys: dict[str, None] = {}

    def fresh(self, key: str) -> bool:
        """Whether ``key`` is worth the guess that it has no incident yet."""
        return key not in self._keys

    def saw(self, keys: Iterable[str]) -> None:
        """``keys`` have incidents now (or had: a guess either way)."""
        for key in keys:
            self._keys.pop(key, None)
            self._keys[key] = None
        while len(self._keys) > self._limit:
            del self._keys[next(iter(self._keys))]


class AlwaysFresh(SeenKeys):
    """Every key is worth the guess (tests: the guess and its fallback on every lone alert)."""

    def fresh(self, key: str) -> bool:
        return True


__all__ = ["AlwaysFresh", "SeenKeys"]
