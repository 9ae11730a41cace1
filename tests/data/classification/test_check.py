"""``aape data check``: counts per split, missing and unreadable files; never writes."""

from __future__ import annotations

from fake_catalog import build

from aape_lightning.cli import data_main
from aape_lightning.data.classification import check as chk


def test_check_reports_counts_missing_and_unreadable(tmp_path, capsys):
    build("DescribableTextures", tmp_path)
    assert data_main(["check", "dtd", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "  classes: 3\n  train: 15 images\n  val: 6 images\n  test: 9 images" in out and out.endswith("OK\n")

    images = tmp_path / "dtd" / "images"
    gone = images / "banded" / "banded_0.jpg"
    broken = images / "blotchy" / "blotchy_9.jpg"
    truncated = images / "zigzagged" / "zigzagged_9.jpg"
    gone.unlink()
    broken.write_bytes(b"not an image")
    truncated.write_bytes(truncated.read_bytes()[:-40])
    report = chk.check("DescribableTextures", tmp_path)
    assert str(gone) in report.missing and not report.ok
    assert {p for p, _ in report.unreadable} == {str(broken), str(truncated)}
    assert data_main(["check", "dtd", "--root", str(tmp_path), "--max-listed", "1"]) == 1
    out = capsys.readouterr().out
    assert f"  missing (1):\n    {gone}" in out and "  unreadable (2):" in out and "... and 1 more" in out
    assert "  train: 15 images (1 missing, 0 unreadable)" in out and "  test: 9 images (0 missing, 2 unreadable)" in out
    assert out.rstrip().endswith("FAILED: 1 missing, 2 unreadable, 1 other problem(s)")  # + the reader's complaint
    assert data_main(["check", "dtd", "--root", str(tmp_path), "--no-images"]) == 1


def test_check_of_a_missing_dataset(tmp_path, capsys):
    assert data_main(["check", "SUN397", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"missing (1):\n    {tmp_path / 'sun397'}" in out
    assert f"aape data prepare SUN397 --root {tmp_path}" in out


def test_check_does_not_write_a_missing_split(tmp_path):
    build("Food101", tmp_path, split=False)
    report = chk.check("Food101", tmp_path)
    assert report.ok and report.counts == {"train": 15, "val": 6, "test": 9}
    assert any("no split file" in n for n in report.notes)
    assert not (tmp_path / "food-101" / "split_zhou_Food101.json").exists()
