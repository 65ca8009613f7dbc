"""How JSON columns are written and read: orjson, with the stdlib for what orjson refuses.

Labels and annotations of every alert are JSON columns, written by each webhook and read by the
incident engine; the stdlib encoder was a tenth of a stored alert's CPU. orjson writes the same
JSON values, compactly. It refuses a few things the stdlib takes (integers beyond 64 bits, for
one); those go through the stdlib, so nothing that could be stored before is refused now.
"""

from __future__ import annotations

import json

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dump_json(value: object) -> str:
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


def load_json(text: str | bytes) -> object:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
