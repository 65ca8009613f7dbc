"""Optional rewording of the summary paragraph by a language model, never trusted blindly.

Only the summary goes to the model, and its answer is kept only when it states exactly the
facts the template's summary stated: the same timestamps, durations, numbers and backticked
names (actors, control keys, control values) — none dropped, none added. Anything else (the
endpoint is down, slow, answers nonsense, or drops a fact) keeps the template's summary.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import httpx

from bot.config import PostmortemLlmConfig

log = logging.getLogger(__name__)

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?: UTC)?")
_DURATION = re.compile(r"\b\d+h(?: \d+m)?(?: \d+s)?\b|\b\d+m(?: \d+s)?\b|\b\d+s\b")
_CODE = re.compile(r"`([^`]+)`")
_NUMBER = re.compile(r"(?<![\w.#-])#?\d+(?:\.\d+)?(?![\w.])")

SYSTEM_PROMPT = (
    "You edit incident postmortems. Rewrite the paragraph you are given as clear, calm prose "
    "for engineers. Keep every timestamp, duration and number exactly as written, and keep "
    "every `backticked` value exactly, backticks included. Add no fact, cause or opinion. "
    "Answer with the paragraph only."
)


def facts_in(text: str) -> set[str]:
    """The checkable facts of a summary: timestamps, durations, numbers, `code` values."""
    found: set[str] = set()
    rest = text
    for pattern, kind in ((_CODE, "code"), (_TIMESTAMP, "time"), (_DURATION, "duration")):
        for match in pattern.finditer(rest):
            found.add(f"{kind}:{match.group(1) if kind == 'code' else match.group(0)}")
        rest = pattern.sub(" ", rest)  # a timestamp's digits are not also numbers
    found.update(f"number:{m.group(0)}" for m in _NUMBER.finditer(rest))
    return found


def check_polish(draft: str, polished: str) -> str | None:
    """Why ``polished`` may not replace ``draft`` (None: it may)."""
    if not polished.strip():
        return "empty answer"
    if len(polished) > 3 * len(draft) + 200:
        return "answer far longer than the summary"
    wanted, got = facts_in(draft), facts_in(polished)
    if wanted - got:
        return "dropped " + ", ".join(sorted(wanted - got))
    if got - wanted:
        return "added " + ", ".join(sorted(got - wanted))
    return None


async def polish_summary(
    http: httpx.AsyncClient,
    config: PostmortemLlmConfig,
    summary: str,
    environ: Mapping[str, str],
) -> str | None:
    """The model's rewording of ``summary`` when it keeps every fact; None otherwise."""
    headers = {}
    if config.api_key_env:
        key = environ.get(config.api_key_env)
        if not key:
            log.warning("postmortem polish: env variable %s is empty; skipped", config.api_key_env)
            return None
        headers["authorization"] = f"Bearer {key}"
    body = {
        "model": config.model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": summary},
        ],
    }
    url = config.url.rstrip("/") + "/v1/chat/completions"
    try:
        response = await http.post(url, json=body, headers=headers, timeout=config.timeout)
        response.raise_for_status()
        text = response.json()["choices"][0]["message"]["content"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as err:
        log.warning("postmortem polish: %s failed (%s); keeping the template summary", url, err)
        return None
    if not isinstance(text, str):
        log.warning("postmortem polish: %s answered no text; keeping the template summary", url)
        return None
    polished = " ".join(text.split())
    problem = check_polish(summary, polished)
    if problem is not None:
        log.warning("postmortem polish rejected (%s); keeping the template summary", problem)
        return None
    return polished
