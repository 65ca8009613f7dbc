"""Find the runbooks an alert matches without testing every runbook.

Each entry is filed under one *anchor*: a matcher that accepts only a few known, non-empty
values — ``alertname="X"``, or a regex whose whole language is small, like
``service=~"search|chat"`` (filed under both). An alert then looks up only its own
(label, value) pairs, and only the entries found there have their other matchers checked, so
the cost per alert follows the number of candidates, not the size of the catalog. When an entry
has several possible anchors, the least shared one is used (fewest other entries under it), with
``alertname`` preferred on ties.

An entry with no such matcher — only ``!=``, ``!~``, open regexes like ``.*-prod``, or matchers
that also accept a missing label (``severity=~"|critical"``) — cannot be filed anywhere: it is
checked against every alert. :meth:`MatcherIndex.unindexed_keys` lists them so the loader can
warn that each one costs a scan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Generic, TypeVar

from bot.matching.matcher import Matcher

K = TypeVar("K")

_PREFERRED_LABEL = "alertname"


class MatcherIndex(Generic[K]):
    """Entries (a key and the matchers that must all match) looked up by label value."""

    __slots__ = ("_anchors", "_by_label", "_checks", "_keys", "_residual")

    def __init__(self, entries: Iterable[tuple[K, Sequence[Matcher]]]) -> None:
        listed = [(key, tuple(matchers)) for key, matchers in entries]
        options = [
            [(position, values) for position, m in enumerate(ms) if (values := m.indexable_values)]
            for _, ms in listed
        ]
        shared: Counter[tuple[str, str]] = Counter(
            (matchers[position].name, value)
            for (_, matchers), choices in zip(listed, options, strict=True)
            for position, values in choices
            for value in values
        )
        self._keys: list[K] = []
        self._checks: list[tuple[Matcher, ...]] = []  # per entry: what the lookup did not prove
        self._anchors: list[Matcher | None] = []
        self._by_label: dict[str, dict[str, list[int]]] = {}
        self._residual: list[int] = []
        # Entries share equal matchers and equal check lists, so as the catalog grows the few
        # objects an alert touches stay few and stay in the CPU cache.
        same_matcher: dict[Matcher, Matcher] = {}
        same_checks: dict[tuple[Matcher, ...], tuple[Matcher, ...]] = {}
        for number, ((key, matchers), choices) in enumerate(zip(listed, options, strict=True)):
            anchor: Matcher | None = None
            checks = matchers
            if choices:
                position, values = _least_shared(matchers, choices, shared)
                anchor = matchers[position]
                checks = matchers[:position] + matchers[position + 1 :]
                by_value = self._by_label.setdefault(anchor.name, {})
                for value in values:
                    by_value.setdefault(value, []).append(number)
            else:
                self._residual.append(number)
            checks = tuple(same_matcher.setdefault(m, m) for m in checks)
            self._keys.append(key)
            self._checks.append(same_checks.setdefault(checks, checks))
            self._anchors.append(anchor)

    def __len__(self) -> int:
        return len(self._keys)

    def match(self, labels: Mapping[str, str]) -> list[K]:
        """Keys of every entry whose matchers all match ``labels``, in the order given."""
        by_label = self._by_label
        candidates: list[int] = []
        if len(by_label) <= len(labels):
            for name, by_value in by_label.items():
                value = labels.get(name)
                if value is not None and (found := by_value.get(value)) is not None:
                    candidates.extend(found)
        else:
            for name, value in labels.items():
                values = by_label.get(name)
                if values is not None and (found := values.get(value)) is not None:
                    candidates.extend(found)
        if self._residual:
            candidates.extend(self._residual)
        if len(candidates) > 1:
            candidates.sort()
        checks, keys = self._checks, self._keys
        matched: list[K] = []
        for number in candidates:
            for matcher in checks[number]:
                if not matcher.matches(labels):
                    break
            else:
                matched.append(keys[number])
        return matched

    def anchors(self) -> list[tuple[K, Matcher | None]]:
        """Each entry's key and the matcher it is filed under (None: checked for every alert)."""
        return list(zip(self._keys, self._anchors, strict=True))

    def unindexed_keys(self) -> list[K]:
        """Entries checked against every alert because no matcher could anchor them."""
        return [self._keys[number] for number in self._residual]


def _least_shared(
    matchers: Sequence[Matcher],
    options: Sequence[tuple[int, frozenset[str]]],
    shared: Counter[tuple[str, str]],
) -> tuple[int, frozenset[str]]:
    """The anchor whose (label, value) keys the fewest entries could be filed under."""

    def cost(option: tuple[int, frozenset[str]]) -> tuple[int, bool, int]:
        position, values = option
        name = matchers[position].name
        return (sum(shared[name, value] for value in values), name != _PREFERRED_LABEL, position)

    return min(options, key=cost)
