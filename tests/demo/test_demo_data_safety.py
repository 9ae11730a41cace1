"""The demo data is built safely: a bad or unwritable root is one clear error, and concurrent first uses agree."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import pytest

from aape_lightning.demo import datasets
from aape_lightning.demo.readers import DemoReader
from aape_lightning.errors import DataError
from folder_snapshot import snapshot


def test_a_file_given_as_demo_root(tmp_path):
    file = tmp_path / "demo.txt"
    file.write_text("mine")
    for root in (file, file / "deeper"):
        with pytest.raises(DataError, match=r"demo root .*demo.txt.*: .*demo.txt is a file, not a folder; pass a folder"):
            DemoReader("DemoSatellite", root=str(root)).read()
    (tmp_path / "DemoSatellite").write_text("also mine")  # the dataset's own folder name taken by a file
    with pytest.raises(DataError, match=r"DemoSatellite exists but was not written by the demo generator"):
        DemoReader("DemoSatellite", root=str(tmp_path)).read()
    assert file.read_text() == "mine" and (tmp_path / "DemoSatellite").read_text() == "also mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DemoSatellite", "demo.txt"]


def test_bad_reader_arguments_are_user_errors(tmp_path):
    with pytest.raises(DataError, match="prompt_noise=-1"):
        DemoReader("DemoSatellite", root=str(tmp_path), prompt_noise=-1)


def test_unwritable_demo_root(tmp_path, monkeypatch):
    root = tmp_path / "readonly"
    root.mkdir()
    (root / "keep.txt").write_text("kept")
    before = snapshot(root)
    root.chmod(0o555)
    if os.geteuid() == 0:  # root ignores folder permissions: refuse the write as the OS would for anyone else
        def refuse(*args, dir=None, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", dir)

        monkeypatch.setattr(datasets.tempfile, "mkdtemp", refuse)
    try:
        with pytest.raises(DataError, match=r"cannot write the demo data under .*readonly \(Permission denied\); "
                                            r"pass a writable folder \(data.reader.root=<folder>"):
            DemoReader("DemoSatellite", root=str(root)).read()
    finally:
        root.chmod(0o755)
    assert snapshot(root) == before


MANIFEST = {"generator": "test", "version": 1}


def _write(name: str, barrier: threading.Barrier | None = None):
    def write(tmp: Path) -> None:
        (tmp / "data.txt").write_text(name)
        if barrier is not None:
            try:  # both builders inside write() at once: the race a lock must prevent
                barrier.wait()
            except threading.BrokenBarrierError:  # the other is waiting for the lock
                pass

    return write


def test_concurrent_builds_of_one_folder(tmp_path):
    """Two first uses at once: both get the same complete folder, neither crashes, no temporary folder is left."""
    folder = tmp_path / "DemoX"
    barrier = threading.Barrier(2, timeout=1.0)
    results, errors = {}, []

    def build(name):
        try:
            results[name] = datasets._write_atomically(folder, MANIFEST, _write(name, barrier))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=build, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert results == {"a": folder, "b": folder}
    assert (folder / "data.txt").read_text() in ("a", "b")
    assert json.loads((folder / datasets.MANIFEST).read_text()) == MANIFEST
    assert [p.name for p in tmp_path.iterdir()] == ["DemoX"]


def test_a_folder_that_appears_while_building_is_used(tmp_path):
    """Where file locks do not hold (some network file systems): the loser keeps the winner's complete folder."""
    folder = tmp_path / "DemoX"

    def write(tmp: Path) -> None:
        (tmp / "data.txt").write_text("ours")
        folder.mkdir()  # another process finished first
        (folder / "data.txt").write_text("theirs")
        (folder / datasets.MANIFEST).write_text(json.dumps(MANIFEST))

    assert datasets._write_atomically(folder, MANIFEST, write) == folder
    assert (folder / "data.txt").read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["DemoX"]


def test_a_foreign_folder_that_appears_while_building_is_not_replaced(tmp_path):
    folder = tmp_path / "DemoX"

    def write(tmp: Path) -> None:
        folder.mkdir()
        (folder / "mine.txt").write_text("user data")

    with pytest.raises(DataError, match=r"DemoX appeared while the demo data was written there, and not by this "
                                        r"generator .*move it away or pass another root"):
        datasets._write_atomically(folder, MANIFEST, write)
    assert (folder / "mine.txt").read_text() == "user data"
    assert [p.name for p in tmp_path.iterdir()] == ["DemoX"]
