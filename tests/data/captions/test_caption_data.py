"""Caption data: Karpathy-JSON readers (COCO, Flickr30k), the demo reader, and batches with caption lists."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from aape_lightning.data import CaptionDataModule, KarpathyReader
from aape_lightning.data.captions import CaptionDataset, CaptionedImage, collate_captions
from aape_lightning.demo import DemoCaptionReader
from aape_lightning.errors import DataError


def karpathy(root, entries, name="dataset_coco.json", image_dir="images"):
    for e in entries:
        path = root / image_dir / e.get("filepath", "") / e["filename"]
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
    (root / name).write_text(json.dumps({"images": entries, "dataset": "x"}))
    return root


def entry(filename, split, n, **kw):
    return {"filename": filename, "split": split, "sentences": [{"raw": f" {filename} caption {i} "} for i in range(n)], **kw}


def test_karpathy_coco_reads_splits_paths_ids_and_restval(tmp_path):
    root = karpathy(tmp_path / "coco", [
        entry("a.jpg", "train", 5, filepath="train2014", cocoid=1),
        entry("b.jpg", "restval", 6, filepath="val2014", cocoid=2),
        entry("c.jpg", "test", 5, filepath="val2014", cocoid=3),
    ])
    splits = KarpathyReader(str(root)).read()
    assert [r.image_id for r in splits.get("train")] == ["1", "2"]
    (test,) = splits.get("test")
    assert test.path == str(root / "images" / "val2014" / "c.jpg")
    assert test.captions[0] == "c.jpg caption 0" and len(test.captions) == 5
    assert [r.image_id for r in KarpathyReader(str(root), restval_as_train=False).read().get("restval")] == ["2"]


def test_karpathy_flickr_layout_and_missing_image_names_the_file(tmp_path):
    root = karpathy(tmp_path / "f30k", [entry("1.jpg", "test", 5), entry("2.jpg", "train", 5)],
                    name="dataset_flickr30k.json", image_dir="flickr30k-images")
    splits = KarpathyReader(str(root), dataset="flickr30k").read()
    assert splits.get("test")[0].image_id == "1.jpg"
    (root / "flickr30k-images" / "2.jpg").unlink()
    with pytest.raises(DataError, match="2.jpg"):
        KarpathyReader(str(root), dataset="flickr30k").read()
    with pytest.raises(DataError, match="dataset_coco.json"):
        KarpathyReader(str(root)).read()


def test_collate_keeps_caption_lists_of_different_lengths_and_counts_skips(tmp_path):
    items = []
    for i, n in enumerate([5, 7, 3]):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (8, 8)).save(path)
        items.append(CaptionedImage(str(path), tuple(f"c{i}{j}" for j in range(n)), f"id{i}"))
    (tmp_path / "2.png").write_bytes(b"not an image")
    data = CaptionDataset(items, lambda im: torch.zeros(3, 4, 4), on_bad_image="skip")
    batch = collate_captions([data[i] for i in range(3)])
    assert batch["image"].shape == (2, 3, 4, 4) and batch["skipped"] == 1
    assert [len(c) for c in batch["captions"]] == [5, 7] and batch["image_id"] == ["id0", "id1"]
    assert batch["index"].tolist() == [0, 1]
    assert collate_captions([None]) == {"skipped": 1}


def test_demo_reader_domains_val_split_and_max_captions(tmp_path):
    reader = DemoCaptionReader(str(tmp_path), domains=["sketch"], n_train=6, n_test=3, val_from_train=2)
    dm = CaptionDataModule(reader, max_captions=2)
    dm.prepare_data()
    dm.setup("fit")
    assert reader.name == "DemoCaptions-sketch" and (tmp_path / "DemoCaptions-sketch" / "captions.json").is_file()
    assert [len(dm.images(s)) for s in ("train", "val", "test")] == [4, 2, 3]
    assert all(len(r.captions) == 2 for r in dm.images("train"))
    assert len(dm.gallery()) <= 3 * 2 and dm.gallery()[0] == dm.images("test")[0].captions[0]
    with pytest.raises(DataError, match="unknown domain"):
        DemoCaptionReader(str(tmp_path), domains=["cartoon"])
    with pytest.raises(DataError, match="'nope' is empty or absent"):
        CaptionDataModule(reader, train_split="nope").setup("fit")


def test_gallery_file_text_or_json_and_errors_name_the_file(tmp_path):
    (tmp_path / "g.txt").write_text("a red circle.\n\n a blue square. \na red circle.\n")
    assert CaptionDataModule(gallery=str(tmp_path / "g.txt")).gallery() == ["a red circle.", "a blue square."]
    (tmp_path / "g.json").write_text('["one", "two"]')
    assert CaptionDataModule(gallery=str(tmp_path / "g.json")).gallery() == ["one", "two"]
    (tmp_path / "bad.json").write_text('{"one": 1}')
    with pytest.raises(DataError, match="bad.json"):
        CaptionDataModule(gallery=str(tmp_path / "bad.json")).gallery()
    with pytest.raises(DataError, match="missing.txt does not exist"):
        CaptionDataModule(gallery=str(tmp_path / "missing.txt")).gallery()
    with pytest.raises(DataError, match="set data.gallery"):
        CaptionDataModule().gallery()
