"""A flagd flag-definition file as a control plane: what flagd and in-process providers read.

A write loads the file, moves the flag's ``defaultVariant`` (creating the flag or the variant
if needed), validates and resolves the *whole* resulting document, and only then replaces the
file atomically (temp file in the same folder, fsync, ``os.replace``), reading it back after.
Providers watching the file keep the last good flags when it is corrupt and say nothing, so
an invalid document is refused with ``FinalError`` and the file is left byte-for-byte as it was.

A kill switch moves ``defaultVariant`` to the safe variant; it never sets ``state: DISABLED``,
which makes applications fall back to their own hard-coded defaults. Writes to one file are
serialised within the process, and the file I/O runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import os
import re
import tempfile
import weakref
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from actions.backends.base import ControlBackend, FlagValue, WriteResult
from actions.backends.flagd_document import (
    FlagdDocumentError,
    resolve_default,
    same_value,
    validate_document,
)
from actions.backends.value_type import check_value, is_bool_key
from actions.errors import FinalError, RetryableError

_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


class FlagdConfig(BaseModel):
    """``backend: {type: flagd, path: ...}`` in ballast.yaml: the file the providers read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(description="The flagd flag-definition JSON file (it must exist).")

    @field_validator("path")
    @classmethod
    def _json_file(cls, path: Path) -> Path:
        if path.suffix != ".json":
            raise ValueError(f"flagd path must be a .json file (YAML is not written), got {path}")
        return path


class FlagdFileBackend(ControlBackend):
    """Controls kept in one flagd flag file, shared by every service configured with it."""

    name = "flagd"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def read(self, key: str) -> FlagValue | None:
        async with self._lock():
            return await asyncio.to_thread(self._read_sync, key)

    async def write(self, key: str, value: FlagValue, *, actor: str, reason: str) -> WriteResult:
        check_value(key, value)
        async with self._lock():
            return await asyncio.to_thread(self._write_sync, key, value)

    async def clear(self, key: str, *, actor: str, reason: str) -> WriteResult:
        """Remove the flag: providers answer FLAG_NOT_FOUND and the app uses its default."""
        async with self._lock():
            return await asyncio.to_thread(self._clear_sync, key)

    def _lock(self) -> asyncio.Lock:
        locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
        return locks.setdefault(os.path.realpath(self.path), asyncio.Lock())

    def _read_sync(self, key: str) -> FlagValue | None:
        _, document = self._load()
        flag = document["flags"].get(key)
        if flag is None:
            return None
        try:
            return resolve_default(key, flag)
        except FlagdDocumentError as err:
            raise FinalError(f"{self.path}: {err}") from None

    def _write_sync(self, key: str, value: FlagValue) -> WriteResult:
        raw, document = self._load()
        flags: dict[str, Any] = document["flags"]
        old_flag = flags.get(key)
        before: FlagValue | None = None
        if old_flag is not None:
            try:
                before = resolve_default(key, old_flag)
            except FlagdDocumentError:
                before = None  # Broken now; the whole-document check below names the problem.
        new_flag, variant, created_variant = self._changed_flag(key, old_flag, value)
        updated = copy.deepcopy(document)
        updated["flags"][key] = new_flag
        response: dict[str, Any] = {
            "variant": variant,
            "created_flag": old_flag is None,
            "created_variant": created_variant,
            "enabled_flag": old_flag is not None and old_flag.get("state") == "DISABLED",
        }
        return self._commit(key, before, value, raw, updated, response)

    def _clear_sync(self, key: str) -> WriteResult:
        raw, document = self._load()
        old_flag = document["flags"].get(key)
        if old_flag is None:
            return WriteResult(
                key, None, None, {"path": str(self.path), "flag": key, "unchanged": True}
            )
        try:
            before = resolve_default(key, old_flag)
        except FlagdDocumentError:
            before = None
        updated = copy.deepcopy(document)
        del updated["flags"][key]
        return self._commit(key, before, None, raw, updated, {"removed_flag": True})

    def _commit(
        self,
        key: str,
        before: FlagValue | None,
        value: FlagValue | None,
        raw: bytes,
        updated: dict[str, Any],
        response: dict[str, Any],
    ) -> WriteResult:
        """Validate the whole new document, swap it in, and read ``key`` back as ``value``."""
        try:
            validate_document(updated)
        except FlagdDocumentError as err:
            raise FinalError(
                f"{self.path} left unchanged: the result would be invalid: {err}"
            ) from None
        data = (json.dumps(updated, indent=2, ensure_ascii=False) + "\n").encode()
        response = {
            "path": str(self.path),
            "flag": key,
            **response,
            "previous_sha256": _sha256(raw),
        }
        if data == raw:
            return WriteResult(key, before, value, {**response, "unchanged": True})
        self._replace(raw, data)
        after = self._read_back(key, value)
        return WriteResult(key, before, after, {**response, "sha256": _sha256(data)})

    def _changed_flag(
        self, key: str, flag: Any, value: FlagValue
    ) -> tuple[dict[str, Any], str, bool]:
        """The flag with ``defaultVariant`` on ``value``: (flag, variant name, variant added)."""
        if flag is None:
            if is_bool_key(key, value):
                variants: dict[str, Any] = {"on": True, "off": False}
                name = "on" if value else "off"
            else:
                name = _variant_name(str(value), {})
                variants = {name: value}
            flag = {"state": "ENABLED", "variants": variants, "defaultVariant": name}
            return flag, name, True
        if not isinstance(flag, dict) or not isinstance(flag.get("variants"), dict):
            raise FinalError(f"{self.path} left unchanged: flag {key} has no `variants` object")
        if flag.get("targeting"):
            raise FinalError(
                f"{self.path} left unchanged: flag {key} has `targeting` rules, so moving its "
                "defaultVariant would not change what targeted clients read; remove the "
                "targeting from this flag (Ballast controls must be static flags)"
            )
        flag = copy.deepcopy(flag)
        variants = flag["variants"]
        clash = [n for n, v in variants.items() if type(v) is not type(value)]
        if clash:
            kind = "true/false" if isinstance(value, bool) else "string"
            raise FinalError(
                f"{self.path} left unchanged: flag {key} takes a {kind} value but its variant "
                f"{clash[0]!r} holds {variants[clash[0]]!r}; all variants of a flag share one type"
            )
        found = next((n for n, v in variants.items() if same_value(v, value)), None)
        if found is not None:
            name = found
        elif isinstance(value, bool):
            preferred = "on" if value else "off"
            name = preferred if preferred not in variants else _variant_name(preferred, variants)
        else:
            name = _variant_name(value, variants)
        variants[name] = value
        flag["defaultVariant"] = name
        flag["state"] = "ENABLED"
        return flag, name, found is None

    def _load(self) -> tuple[bytes, dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raise FinalError(
                f"flagd flag file {self.path} does not exist; create it with "
                '`{"flags": {}}` or fix `path` in ballast.yaml'
            ) from None
        except OSError as err:
            raise FinalError(f"cannot read flagd flag file {self.path}: {err.strerror}") from None
        try:
            document = json.loads(raw)
        except ValueError as err:
            raise FinalError(f"{self.path} is not valid JSON ({err}); fix it by hand") from None
        if not isinstance(document, dict) or not isinstance(document.get("flags"), dict):
            raise FinalError(f"{self.path} has no top-level `flags` object; fix it by hand")
        return raw, document

    def _replace(self, expected: bytes, data: bytes) -> None:
        """Atomically swap in ``data``, unless someone else changed the file since we read it."""
        target = Path(os.path.realpath(self.path))  # Keep a symlinked path a symlink.
        stat = target.stat()
        fd, temp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as temp:
                temp.write(data)
                temp.flush()
                os.fsync(temp.fileno())
            os.chmod(temp_name, stat.st_mode & 0o7777)
            with contextlib.suppress(PermissionError):  # Not root: ours, with the same mode.
                os.chown(temp_name, stat.st_uid, stat.st_gid)
            if target.read_bytes() != expected:
                raise RetryableError(f"{self.path} changed while Ballast was writing it; try again")
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _read_back(self, key: str, value: FlagValue | None) -> FlagValue | None:
        _, document = self._load()
        flag = document["flags"].get(key)
        after = None
        if flag is not None:
            try:
                after = resolve_default(key, flag)
            except FlagdDocumentError:
                after = None
        if (flag is None) != (value is None) or not same_value(after, value):
            expected = "no flag" if value is None else repr(value)
            found = "no flag" if flag is None else repr(after)
            raise FinalError(
                f"{self.path}: wrote {key} as {expected} but read back {found}; "
                "another writer may be changing this file"
            )
        return after


def _variant_name(value: str, taken: dict[str, Any]) -> str:
    """A readable variant name for a value, not clashing with the flag's other variants."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", value).strip("_")[:64] or "value"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
