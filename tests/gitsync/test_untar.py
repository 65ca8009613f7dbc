"""Extracting a commit's runbook folder: plain files come out; a link out of the folder, on
any Python 3.11 (3.11.0-3.11.3 have no extraction filters), refuses the archive."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from bot.gitsync.syncer import untar


def archive(*members: tuple[str, bytes | str]) -> bytes:
    """``(name, bytes)`` a file, ``(name, "->target")`` a symbolic link."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content.removeprefix("->")
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def test_plain_files_are_extracted(tmp_path: Path) -> None:
    into = tmp_path / "checkout"
    untar(archive(("runbooks/a.yaml", b"id: a\n"), ("runbooks/b.yaml", b"id: b\n")), into)
    assert (into / "runbooks" / "a.yaml").read_bytes() == b"id: a\n"
    assert sorted(p.name for p in (into / "runbooks").iterdir()) == ["a.yaml", "b.yaml"]


# Hostile member names, built from parts (they name no file of ours).
UP = "/".join([".."] * 3)
OUTSIDE = "/".join(["..", "outside.yaml"])


@pytest.mark.parametrize(
    "member",
    [("runbooks/evil.yaml", f"->{UP}/etc/passwd"), (OUTSIDE, b"id: x\n")],
    ids=["link-out", "dot-dot"],
)
def test_anything_leaving_the_folder_refuses_the_archive(
    tmp_path: Path, member: tuple[str, bytes | str]
) -> None:
    with pytest.raises(tarfile.TarError):
        untar(archive(("runbooks/a.yaml", b"id: a\n"), member), tmp_path / "checkout")
    assert not (tmp_path / "outside.yaml").exists()
