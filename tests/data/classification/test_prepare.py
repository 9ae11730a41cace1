"""``aape data prepare`` / ``check``: layout from a (fake) torchvision download, instructions, reports.

Nothing is downloaded: the downloader is replaced by one that writes torchvision's folder
layout (paths as torchvision's dataset classes expect them) with a few generated images.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fake_catalog import BUILDERS, SUN_CLASSES, build, build_flowers, img

from aape_lightning.cli import data_main
from aape_lightning.data.classification import prepare as prep
from aape_lightning.data.classification.catalog import CATALOG
from aape_lightning.data.classification.catalog_reader import CatalogReader


def fake_sun(root: Path, split: bool) -> None:
    """torchvision: ``SUN397/ClassName.txt`` + ``SUN397/<letter>/<class>/``; partitions from Partitions.zip."""
    (root / "SUN397").mkdir(parents=True)
    (root / "SUN397" / "ClassName.txt").write_text("".join(f"/{c}\n" for c in SUN_CLASSES))
    for k, c in enumerate(SUN_CLASSES):
        for i in range(10):
            img(root / "SUN397" / c / f"sun_{k}{i}.jpg", k)
    (root / "Partitions").mkdir()
    for name, part in (("Training_01.txt", range(5)), ("Testing_01.txt", range(5, 10))):
        (root / "Partitions" / name).write_text("".join(f"/{c}/sun_{k}{i}.jpg\n" for k, c in enumerate(SUN_CLASSES)
                                                        for i in part))


# Where each torchvision class puts its files under its ``root`` (written with our CoOp builders).
TORCHVISION_TREES = {
    "Caltech101": lambda root: BUILDERS["Caltech101"](root / "caltech101", False),
    "OxfordPets": lambda root: BUILDERS["OxfordPets"](root / "oxford-iiit-pet", False),
    "OxfordFlowers": lambda root: build_flowers(root / "flowers-102", False, names=False),
    "Food101": lambda root: BUILDERS["Food101"](root / "food-101", False),
    "FGVCAircraft": lambda root: BUILDERS["FGVCAircraft"](root / "fgvc-aircraft-2013b" / "data", False),
    "SUN397": lambda root: fake_sun(root, False),
    "DescribableTextures": lambda root: BUILDERS["DescribableTextures"](root / "dtd" / "dtd", False),
    "EuroSAT": lambda root: BUILDERS["EuroSAT"](root / "eurosat", False),
}
DOWNLOADABLE = [n for n, s in prep.SOURCES.items() if s.torchvision]
MANUAL = [n for n, s in prep.SOURCES.items() if not s.torchvision]


def fake_download(name: str, download_root: Path) -> None:
    TORCHVISION_TREES[name](download_root)


def test_every_downloadable_dataset_has_a_fake_download():
    assert sorted(TORCHVISION_TREES) == sorted(DOWNLOADABLE)
    assert set(MANUAL) >= {"ImageNet", "ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR", "UCF101"}


@pytest.mark.parametrize("name", DOWNLOADABLE)
def test_prepare_lays_out_a_torchvision_download(name, tmp_path):
    outcome = prep.prepare(name, tmp_path / "data", downloader=fake_download, seed=2)
    assert outcome.ready, outcome.lines
    reader = CatalogReader(name, root=str(tmp_path / "data"))
    splits = reader.read()
    assert len(splits.classnames) == 3 and splits.train and splits.val and splits.test
    if reader.split_path is not None:
        assert any(line.startswith(f"made {reader.split_path} (CoOp's recipe, seed 2)") for line in outcome.lines)
        assert any("drive.google.com" in line for line in outcome.lines)  # where CoOp's own split is
    assert outcome.lines[-2].startswith(f"{name} ready: {reader.root}, 3 classes")
    again = prep.prepare(name, tmp_path / "data", downloader=None)  # in place: nothing is downloaded
    assert again.ready and again.lines[0].startswith(f"{name} is already in place: {reader.root}, 3 classes")
    assert (tmp_path / "data" / "_downloads").is_dir()


def test_flowers_names_come_from_torchvision(tmp_path):
    prep.prepare("OxfordFlowers", tmp_path, downloader=fake_download)
    names = CatalogReader("OxfordFlowers", root=str(tmp_path)).read().classnames
    assert names == ["pink primrose", "hard-leaved pocket orchid", "canterbury bells"]


def test_lay_out_keeps_existing_paths_and_can_move(tmp_path):
    fake_download("DescribableTextures", tmp_path / "dl")
    dest = tmp_path / "data" / "dtd"
    lines = prep.lay_out("DescribableTextures", tmp_path / "dl", dest, mode="move")
    assert (dest / "images").is_dir() and not (dest / "images").is_symlink()
    assert not (tmp_path / "dl" / "dtd" / "dtd" / "images").exists()
    assert any(line.startswith("moved") for line in lines)
    assert prep.lay_out("DescribableTextures", tmp_path / "dl", dest)[0] == f"kept {dest / 'images'}"


def test_prepare_keeps_an_existing_split_file(tmp_path):
    build("EuroSAT", tmp_path, split=True)
    shutil.rmtree(tmp_path / "eurosat" / "2750")
    split = tmp_path / "eurosat" / "split_zhou_EuroSAT.json"
    before = split.read_text()
    outcome = prep.prepare("EuroSAT", tmp_path, downloader=fake_download)
    assert outcome.ready and f"kept {split}" in outcome.lines and split.read_text() == before


def test_failed_download_prints_the_manual_way(tmp_path):
    def offline(name, root):
        raise OSError("network is unreachable")

    outcome = prep.prepare("Food101", tmp_path, downloader=offline)
    assert not outcome.ready
    assert "download into" in outcome.lines[0] and "network is unreachable" in outcome.lines[0]
    assert any("food-101.tar.gz" in line for line in outcome.lines)


@pytest.mark.parametrize("name", MANUAL)
def test_manual_datasets_print_what_to_fetch(name, tmp_path, capsys):
    assert data_main(["prepare", name, "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    folder = tmp_path / CATALOG[name].folder
    assert out.startswith(f"{name}: fetch these files and put them under {folder}:")
    assert "http" in out and f"aape data check {name} --root {tmp_path}" in out


def test_prepare_of_a_manual_dataset_in_place_is_ready(tmp_path, capsys):
    build("UCF101", tmp_path)
    assert data_main(["prepare", "ucf101", "--root", str(tmp_path)]) == 0
    assert "UCF101 is already in place" in capsys.readouterr().out


def test_data_prepare_uses_torchvision_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prep, "torchvision_download", fake_download)
    assert data_main(["prepare", "eurosat", "--root", str(tmp_path)]) == 0
    assert "EuroSAT ready: " in capsys.readouterr().out
