"""The one atomic writer: temp file beside the target, fsync, rename, fsync of the folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from patchfleet import atomicio
from patchfleet.atomicio import commit, stage, write_atomic


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    write_atomic(target, "a,b\r\n1,2\r\n")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"  # newlines untouched
    write_atomic(target, b"\x00binary")
    assert target.read_bytes() == b"\x00binary"
    write_atomic(target, "é")
    assert target.read_bytes() == "é".encode()
    assert files(tmp_path) == ["out.csv"]


def test_parents_are_created_on_request(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.yaml"
    with pytest.raises(FileNotFoundError):
        write_atomic(target, "x")
    write_atomic(target, "x", parents=True)
    assert target.read_text() == "x"


def test_file_and_folder_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real_fsync(fd)

    monkeypatch.setattr(atomicio.os, "fsync", fsync)
    write_atomic(tmp_path / "out.txt", "x")
    assert synced == ["file", "dir"]


def test_failing_write_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    def broken(fh: BinaryIO) -> None:
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        stage(tmp_path / "out.parquet", broken)
    assert files(tmp_path) == []


def test_failing_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.txt"
    write_atomic(target, "old")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomicio.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output error"):
        write_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert files(tmp_path) == ["out.txt"]


def test_failing_rename_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomicio.os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(tmp_path / "out.txt", "new")
    monkeypatch.undo()
    assert files(tmp_path) == []


def test_stage_then_commit(tmp_path: Path) -> None:
    """The store's two-phase commit: staged files are invisible to a ``*.parquet`` glob."""
    target = tmp_path / "part-0.parquet"
    tmp = stage(target, lambda fh: fh.write(b"PAR1"))
    assert tmp.parent == tmp_path and tmp.name.startswith(".part-0.parquet.")
    assert tmp.suffix == ".tmp" and not target.exists()
    assert list(tmp_path.glob("*.parquet")) == []
    commit(tmp, target)
    assert target.read_bytes() == b"PAR1" and files(tmp_path) == ["part-0.parquet"]
