"""Block Kit validation, as Slack applies it to chat.postMessage, chat.update, chat.postEphemeral.

Limits, from docs.slack.dev/reference/block-kit:

- ``blocks``: at most 50 blocks in a message (``.../blocks``);
- ``block_id`` (every block): at most 255 characters, unique within the message;
- section (``.../blocks/section-block``): ``text`` 1-3,000 characters; ``fields`` at most 10,
  each at most 2,000; one of ``text`` or ``fields`` is required;
- header (``.../blocks/header-block``): ``plain_text`` only, at most 150 characters;
- actions (``.../blocks/actions-block``): at most 25 elements;
- context (``.../blocks/context-block``): at most 10 elements;
- markdown (``.../blocks/markdown-block``): at most 12,000 characters;
- button (``.../block-elements/button-element``): ``text`` ``plain_text`` at most 75 characters,
  ``action_id`` at most 255 (unique within its block), ``value`` at most 2,000, ``url`` at most
  3,000, ``style`` ``primary`` or ``danger``.

Error shape: Slack answers ``{"ok": false, "error": "invalid_blocks", "errors": [...],
"response_metadata": {"messages": ["[ERROR] ..."]}}`` where each message ends with a JSON pointer,
e.g. ``must be less than 3001 characters [json-pointer:/blocks/0/text/text]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_BLOCKS", "validate_blocks"]

MAX_BLOCKS = 50
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255
KNOWN_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)


def validate_blocks(blocks: list[Any]) -> list[str]:
    """Every problem in ``blocks``, in Slack's wording; empty when Slack would accept them."""
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        pointer = f"/blocks/{index}"
        if not isinstance(block, Mapping):
            errors.append(f"must be an object [json-pointer:{pointer}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            _max_length(errors, block_id, MAX_BLOCK_ID, f"{pointer}/block_id")
            if block_id in block_ids:
                errors.append(f"duplicate block_id {block_id!r} [json-pointer:{pointer}/block_id]")
            block_ids.add(str(block_id))
        block_type = block.get("type")
        if block_type not in KNOWN_BLOCK_TYPES:
            errors.append(f"unsupported type: {block_type} [json-pointer:{pointer}/type]")
            continue
        checker = _CHECKERS.get(str(block_type))
        if checker is not None:
            checker(errors, block, pointer)
    return errors


def _max_length(errors: list[str], value: object, limit: int, pointer: str) -> None:
    if not isinstance(value, str):
        errors.append(f"must be a string [json-pointer:{pointer}]")
    elif len(value) > limit:
        errors.append(f"must be less than {limit + 1} characters [json-pointer:{pointer}]")


def _text_object(
    errors: list[str],
    obj: object,
    pointer: str,
    limit: int,
    *,
    plain_only: bool = False,
) -> None:
    if not isinstance(obj, Mapping):
        errors.append(f"must be a text object [json-pointer:{pointer}]")
        return
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in allowed:
        errors.append(f"must be one of {', '.join(allowed)} [json-pointer:{pointer}/type]")
    text = obj.get("text")
    if text is None:
        errors.append(f"missing required field: text [json-pointer:{pointer}]")
    elif isinstance(text, str) and not text:
        errors.append(f"must be more than 0 characters [json-pointer:{pointer}/text]")
    else:
        _max_length(errors, text, limit, f"{pointer}/text")


def _element(errors: list[str], element: object, pointer: str) -> None:
    if not isinstance(element, Mapping):
        errors.append(f"must be an object [json-pointer:{pointer}]")
        return
    if "action_id" in element:
        _max_length(errors, element["action_id"], MAX_ACTION_ID, f"{pointer}/action_id")
    if element.get("type") != "button":
        return
    _text_object(errors, element.get("text"), f"{pointer}/text", 75, plain_only=True)
    if "value" in element:
        _max_length(errors, element["value"], 2000, f"{pointer}/value")
    if "url" in element:
        _max_length(errors, element["url"], 3000, f"{pointer}/url")
    if "style" in element and element["style"] not in ("primary", "danger"):
        errors.append(f"must be one of primary, danger [json-pointer:{pointer}/style]")


def _elements(
    errors: list[str], block: Mapping[str, Any], pointer: str, limit: int, *, interactive: bool
) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        errors.append(f"missing required field: elements [json-pointer:{pointer}]")
        return
    if len(elements) > limit:
        errors.append(f"no more than {limit} items allowed [json-pointer:{pointer}/elements]")
    action_ids: set[str] = set()
    for index, element in enumerate(elements):
        element_pointer = f"{pointer}/elements/{index}"
        if interactive:
            _element(errors, element, element_pointer)
            action_id = element.get("action_id") if isinstance(element, Mapping) else None
            if isinstance(action_id, str):
                if action_id in action_ids:
                    errors.append(
                        f"duplicate action_id {action_id!r} [json-pointer:{element_pointer}]"
                    )
                action_ids.add(action_id)
        elif isinstance(element, Mapping) and element.get("type") in ("plain_text", "mrkdwn"):
            _text_object(errors, element, element_pointer, 3000)


def _section(errors: list[str], block: Mapping[str, Any], pointer: str) -> None:
    text, fields = block.get("text"), block.get("fields")
    if text is None and fields is None:
        errors.append(f"must define either `text` or `fields` [json-pointer:{pointer}]")
    if text is not None:
        _text_object(errors, text, f"{pointer}/text", 3000)
    if fields is not None:
        if not isinstance(fields, list):
            errors.append(f"must be an array [json-pointer:{pointer}/fields]")
            return
        if len(fields) > 10:
            errors.append(f"no more than 10 items allowed [json-pointer:{pointer}/fields]")
        for index, field in enumerate(fields):
            _text_object(errors, field, f"{pointer}/fields/{index}", 2000)
    if "accessory" in block:
        _element(errors, block["accessory"], f"{pointer}/accessory")


def _header(errors: list[str], block: Mapping[str, Any], pointer: str) -> None:
    _text_object(errors, block.get("text"), f"{pointer}/text", 150, plain_only=True)


def _actions(errors: list[str], block: Mapping[str, Any], pointer: str) -> None:
    _elements(errors, block, pointer, 25, interactive=True)


def _context(errors: list[str], block: Mapping[str, Any], pointer: str) -> None:
    _elements(errors, block, pointer, 10, interactive=False)


def _markdown(errors: list[str], block: Mapping[str, Any], pointer: str) -> None:
    text = block.get("text")
    if text is None:
        errors.append(f"missing required field: text [json-pointer:{pointer}]")
    else:
        _max_length(errors, text, 12000, f"{pointer}/text")


_CHECKERS = {
    "actions": _actions,
    "context": _context,
    "header": _header,
    "markdown": _markdown,
    "section": _section,
}
