"""The flagd file backend, read by the real ``openfeature-provider-flagd`` in file mode."""

from __future__ import annotations

import asyncio
import json
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from actions.backends.flagd import FlagdConfig, FlagdFileBackend
from actions.backends.flagd_document import FlagdDocumentError, validate_document
from actions.errors import FinalError

TOOL = "support-bot.tools.web_search.enabled"
MODEL = "support-bot.model"
AUTONOMY = "support-bot.autonomy"


def flag(variants: dict[str, Any], default: Any, **extra: Any) -> dict[str, Any]:
    return {"state": "ENABLED", "variants": variants, "defaultVariant": default, **extra}


def initial_document() -> dict[str, Any]:
    return {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {
            TOOL: flag({"on": True, "off": False}, "on"),
            MODEL: flag({"gpt-4o": "gpt-4o", "gpt-4o-mini": "gpt-4o-mini"}, "gpt-4o"),
            "checkout.banner": flag(
                {"a": "A", "b": "B"},
                "a",
                targeting={"if": [{"starts_with": [{"var": "email"}, "ops"]}, "b", None]},
            ),
        },
    }


@pytest.fixture
def flag_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags" / "flags.json"
    path.parent.mkdir()
    path.write_text(json.dumps(initial_document(), indent=4) + "\n")
    path.chmod(0o644)
    return path


class FlagdApp:
    """An application reading the file through OpenFeature + the flagd provider (file mode)."""

    def __init__(self, path: Path) -> None:
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType

        self.domain = f"flagd-test-{uuid.uuid4().hex[:8]}"
        # deadline_ms is also the file watcher's poll interval.
        self.provider = FlagdProvider(
            resolver_type=ResolverType.FILE, offline_flag_source_path=str(path), deadline_ms=100
        )
        api.set_provider_and_wait(self.provider, self.domain)
        self.client = api.get_client(self.domain)

    def bool(self, key: str) -> bool:
        return self._resolved(self.client.get_boolean_details(key, True))

    def string(self, key: str) -> str:
        return self._resolved(self.client.get_string_details(key, "app-default"))

    @staticmethod
    def _resolved(details: Any) -> Any:
        """The value, insisting it came from the file and not from the app's default."""
        assert details.error_code is None, details.error_message
        assert details.variant is not None, details
        return details.value

    def wait_for(self, read: Any, key: str, expected: Any, timeout: float = 5.0) -> float:
        """Seconds until the app reads ``expected`` (until then it may still not know the key)."""
        started = time.monotonic()
        while True:
            try:
                value = read(key)
            except AssertionError as err:
                value = err
            if value == expected:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"app still reads {key}={value!r}, expected {expected!r}")
            time.sleep(0.02)

    def close(self) -> None:
        self.provider.shutdown()


@pytest.fixture
def app(flag_file: Path) -> Iterator[FlagdApp]:
    reader = FlagdApp(flag_file)
    yield reader
    reader.close()


@pytest.fixture
def backend(flag_file: Path) -> FlagdFileBackend:
    return FlagdFileBackend(flag_file)


async def write(backend: FlagdFileBackend, key: str, value: bool | str) -> Any:
    return await backend.write(key, value, actor="U123", reason="test")


async def test_tool_switch_flips_and_undo_restores(
    backend: FlagdFileBackend, app: FlagdApp, flag_file: Path
) -> None:
    assert app.bool(TOOL) is True
    result = await write(backend, TOOL, False)
    assert (result.before, result.after) == (True, False)
    assert result.response["variant"] == "off"
    assert not result.response["created_variant"]
    await asyncio.to_thread(app.wait_for, app.bool, TOOL, False)
    on_disk = json.loads(flag_file.read_text())["flags"][TOOL]
    assert on_disk == {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
    }

    undo = await write(backend, TOOL, result.before)
    assert (undo.before, undo.after) == (False, True)
    await asyncio.to_thread(app.wait_for, app.bool, TOOL, True)


async def test_model_changes_with_a_new_variant_and_undo_restores(
    backend: FlagdFileBackend, app: FlagdApp, flag_file: Path
) -> None:
    assert app.string(MODEL) == "gpt-4o"
    result = await write(backend, MODEL, "claude-3.5/sonnet 2024")
    assert (result.before, result.after) == ("gpt-4o", "claude-3.5/sonnet 2024")
    assert result.response["variant"] == "claude-3.5_sonnet_2024"
    assert result.response["created_variant"] is True
    await asyncio.to_thread(app.wait_for, app.string, MODEL, "claude-3.5/sonnet 2024")

    undo = await write(backend, MODEL, result.before)
    assert undo.after == "gpt-4o"
    await asyncio.to_thread(app.wait_for, app.string, MODEL, "gpt-4o")
    variants = json.loads(flag_file.read_text())["flags"][MODEL]["variants"]
    assert variants == {
        "gpt-4o": "gpt-4o",
        "gpt-4o-mini": "gpt-4o-mini",
        "claude-3.5_sonnet_2024": "claude-3.5/sonnet 2024",
    }
    # The other flags, targeting included, come through untouched.
    assert (
        json.loads(flag_file.read_text())["flags"]["checkout.banner"]
        == (initial_document()["flags"]["checkout.banner"])
    )


async def test_missing_flag_is_created_with_variants_for_its_type(
    backend: FlagdFileBackend, app: FlagdApp, flag_file: Path
) -> None:
    assert await backend.read(AUTONOMY) is None
    result = await write(backend, AUTONOMY, "suggest_only")
    assert (result.before, result.after) == (None, "suggest_only")
    assert result.response["created_flag"] is True
    await asyncio.to_thread(app.wait_for, app.string, AUTONOMY, "suggest_only")

    await write(backend, "support-bot.tools.code_exec.enabled", False)
    await asyncio.to_thread(app.wait_for, app.bool, "support-bot.tools.code_exec.enabled", False)
    flags = json.loads(flag_file.read_text())["flags"]
    assert flags[AUTONOMY] == flag({"suggest_only": "suggest_only"}, "suggest_only")
    assert flags["support-bot.tools.code_exec.enabled"] == flag({"on": True, "off": False}, "off")


async def test_invalid_document_is_refused_and_the_file_left_untouched(
    backend: FlagdFileBackend, app: FlagdApp, flag_file: Path
) -> None:
    document = initial_document()
    document["flags"]["legacy.flag"] = flag({"on": True, "off": False}, "of")
    flag_file.write_text(json.dumps(document, indent=4) + "\n")
    original = flag_file.read_bytes()
    original_mtime = flag_file.stat().st_mtime_ns

    with pytest.raises(FinalError) as caught:
        await write(backend, TOOL, False)
    assert str(caught.value) == (
        f"{flag_file} left unchanged: the result would be invalid: "
        "flags.legacy.flag.defaultVariant 'of' is not one of its variants (on, off)"
    )
    assert flag_file.read_bytes() == original
    assert flag_file.stat().st_mtime_ns == original_mtime
    assert sorted(p.name for p in flag_file.parent.iterdir()) == ["flags.json"]
    await asyncio.sleep(0.3)  # Three poll intervals: the app still serves the old values.
    assert app.bool(TOOL) is True
    assert app.string(MODEL) == "gpt-4o"


async def test_type_clash_is_refused_and_the_file_left_untouched(
    backend: FlagdFileBackend, app: FlagdApp, flag_file: Path
) -> None:
    document = initial_document()
    document["flags"][TOOL] = flag({"yes": "yes", "no": "no"}, "yes")
    flag_file.write_text(json.dumps(document) + "\n")
    await asyncio.to_thread(app.wait_for, app.string, TOOL, "yes")
    original = flag_file.read_bytes()

    with pytest.raises(FinalError) as caught:
        await write(backend, TOOL, False)
    assert str(caught.value) == (
        f"{flag_file} left unchanged: flag {TOOL} takes a true/false value but its variant "
        "'yes' holds 'yes'; all variants of a flag share one type"
    )
    assert flag_file.read_bytes() == original
    await asyncio.sleep(0.3)
    assert app.string(TOOL) == "yes"


async def test_flag_with_targeting_is_not_silently_half_switched(
    backend: FlagdFileBackend, flag_file: Path
) -> None:
    original = flag_file.read_bytes()
    with pytest.raises(FinalError, match="has `targeting` rules"):
        await write(backend, "checkout.banner", "B")
    assert flag_file.read_bytes() == original


async def test_disabled_flag_reads_unset_and_a_write_enables_it(
    backend: FlagdFileBackend, app: FlagdApp, flag_file: Path
) -> None:
    document = initial_document()
    document["flags"][TOOL]["state"] = "DISABLED"
    flag_file.write_text(json.dumps(document))
    assert await backend.read(TOOL) is None
    result = await write(backend, TOOL, False)
    assert (result.before, result.after) == (None, False)
    assert result.response["enabled_flag"] is True
    await asyncio.to_thread(app.wait_for, app.bool, TOOL, False)


async def test_unchanged_value_does_not_touch_the_file(
    backend: FlagdFileBackend, flag_file: Path
) -> None:
    await write(backend, TOOL, False)  # Rewrites (and reformats) once.
    before = flag_file.stat().st_mtime_ns
    result = await write(backend, TOOL, False)
    assert result.response["unchanged"] is True
    assert flag_file.stat().st_mtime_ns == before


async def test_concurrent_writers_lose_no_update(
    backend: FlagdFileBackend, flag_file: Path
) -> None:
    other = FlagdFileBackend(flag_file)  # Another service configured with the same file.
    keys = [f"svc{i}.tools.t.enabled" for i in range(20)]
    await asyncio.gather(
        *(write(b, k, False) for b, k in zip([backend, other] * 10, keys, strict=True))
    )
    flags = json.loads(flag_file.read_text())["flags"]
    assert all(flags[k]["defaultVariant"] == "off" for k in keys)


async def test_atomic_write_keeps_mode_and_leaves_no_temp_file(
    backend: FlagdFileBackend, flag_file: Path
) -> None:
    await write(backend, MODEL, "gpt-4o-mini")
    assert stat.S_IMODE(flag_file.stat().st_mode) == 0o644
    assert sorted(p.name for p in flag_file.parent.iterdir()) == ["flags.json"]


async def test_symlinked_path_stays_a_symlink(tmp_path: Path, flag_file: Path) -> None:
    link = tmp_path / "current.json"
    link.symlink_to(flag_file)
    await write(FlagdFileBackend(link), TOOL, False)
    assert link.is_symlink()
    assert json.loads(flag_file.read_text())["flags"][TOOL]["defaultVariant"] == "off"


async def test_wrong_value_type_is_refused_before_reading_the_file(tmp_path: Path) -> None:
    backend = FlagdFileBackend(tmp_path / "missing.json")
    with pytest.raises(FinalError) as caught:
        await write(backend, "svc.autonomy", "yolo")
    assert str(caught.value) == (
        'svc.autonomy must be one of full, supervised, suggest_only, off; got "yolo"'
    )
    with pytest.raises(FinalError) as caught:
        await write(backend, TOOL, "false")
    assert str(caught.value) == f'{TOOL} must be true or false (a JSON boolean); got "false"'


async def test_missing_file_is_a_final_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(FinalError) as caught:
        await FlagdFileBackend(path).read(TOOL)
    assert str(caught.value) == (
        f'flagd flag file {path} does not exist; create it with `{{"flags": {{}}}}` '
        "or fix `path` in ballast.yaml"
    )


async def test_corrupt_file_is_a_final_error(flag_file: Path) -> None:
    flag_file.write_text('{"flags": {')
    with pytest.raises(FinalError, match=r"is not valid JSON .*; fix it by hand"):
        await write(FlagdFileBackend(flag_file), TOOL, False)
    assert flag_file.read_text() == '{"flags": {'


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"state": "ON"},
            "flags.f.state must be ENABLED or DISABLED, got 'ON'",
        ),
        (
            {"state": None},
            "flags.f.state must be ENABLED or DISABLED, got None",
        ),
        (
            {"variants": {"on": True, "off": "no"}},
            "flags.f.variants mix types (boolean, string); use one type per flag",
        ),
        (
            {"variants": {}},
            "flags.f.variants must be a non-empty object",
        ),
        (
            {"targeting": [1]},
            "flags.f.targeting must be an object",
        ),
        (
            {"targeting": {"if": [{"regex_match": [{"var": "x"}, ".*"]}, "on", "off"]}},
            "flags.f.targeting uses 'regex_match', which flagd does not know",
        ),
        (
            {"targeting": {"$ref": "nope"}},
            "flags.f.targeting refers to an unknown evaluator 'nope' (see `$evaluators`)",
        ),
        (
            {"metadata": {"owner": ["a"]}},
            "flags.f.metadata.owner must be a string, number or boolean",
        ),
    ],
)
def test_document_validation_names_the_problem(change: dict[str, Any], message: str) -> None:
    document = {"flags": {"f": {**flag({"on": True, "off": False}, "on"), **change}}}
    with pytest.raises(FlagdDocumentError) as caught:
        validate_document(document)
    assert str(caught.value) == message


def test_targeting_that_resolves_to_a_missing_variant_is_caught_by_flagd_core() -> None:
    pytest.importorskip("openfeature.contrib.tools.flagd.core")
    document = {
        "flags": {
            "f": flag({"on": True, "off": False}, "on", targeting={"if": [True, "maybe", "off"]})
        }
    }
    with pytest.raises(FlagdDocumentError, match=r"flags\.f does not resolve in flagd"):
        validate_document(document)


def test_valid_document_with_evaluators_passes() -> None:
    document = {
        "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
        "flags": {
            "f": flag(
                {"on": True, "off": False}, "off", targeting={"if": [{"$ref": "staff"}, "on", None]}
            ),
            "n": flag({"one": 1, "half": 0.5}, "one"),
        },
    }
    validate_document(document)


def test_config_is_strict() -> None:
    assert FlagdConfig(path=Path("/etc/flags/flags.json")).path == Path("/etc/flags/flags.json")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        FlagdConfig.model_validate({"path": "/f.json", "paht": "x"})
    with pytest.raises(ValidationError, match=r"flagd path must be a \.json file"):
        FlagdConfig(path=Path("/etc/flags/flags.yaml"))


async def test_clear_removes_the_flag_so_the_app_default_applies(
    backend: FlagdFileBackend, app: FlagdApp, flag_file: Path
) -> None:
    """The undo of a change to a key that did not exist before."""
    created = await write(backend, AUTONOMY, "off")
    await asyncio.to_thread(app.wait_for, app.string, AUTONOMY, "off")
    cleared = await backend.clear(AUTONOMY, actor="U1", reason="undo")
    assert (cleared.before, cleared.after) == ("off", None)
    assert cleared.response["removed_flag"] is True
    assert created.before is None
    details = await asyncio.to_thread(_wait_not_found, app, AUTONOMY)
    assert details.value == "app-default"
    assert AUTONOMY not in json.loads(flag_file.read_text())["flags"]

    again = await backend.clear(AUTONOMY, actor="U1", reason="undo")
    assert (again.before, again.after, again.response["unchanged"]) == (None, None, True)


async def test_clear_is_refused_when_the_rest_of_the_file_is_invalid(
    backend: FlagdFileBackend, flag_file: Path
) -> None:
    document = initial_document()
    document["flags"]["legacy.flag"] = flag({"on": True}, "on", state="PAUSED")
    flag_file.write_text(json.dumps(document))
    original = flag_file.read_bytes()
    with pytest.raises(FinalError, match=r"flags\.legacy\.flag\.state must be ENABLED or DISABLED"):
        await backend.clear(TOOL, actor="U1", reason="undo")
    assert flag_file.read_bytes() == original


def _wait_not_found(app: FlagdApp, key: str) -> Any:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        details = app.client.get_string_details(key, "app-default")
        if details.error_code is not None and details.error_code.value == "FLAG_NOT_FOUND":
            return details
        time.sleep(0.02)
    raise AssertionError(f"the app still finds {key}")
