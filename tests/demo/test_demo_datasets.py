"""Demo datasets: CoOp layout, consistent labels, a prompt for every class, regenerated only when stale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aape_lightning.demo.datasets import (
    CAPTIONS_NAME,
    DEMO_DATASETS,
    DEMO_TEMPLATES,
    ensure_demo_captions,
    ensure_demo_dataset,
    prompt_bank,
)
from aape_lightning.errors import DataError


@pytest.mark.parametrize("name", sorted(DEMO_DATASETS))
def test_layout_and_labels(name: str, tmp_path: Path) -> None:
    folder = ensure_demo_dataset(name, tmp_path, seed=0, image_size=32)
    assert folder == tmp_path / name
    classnames = (folder / "classnames.txt").read_text().splitlines()
    assert classnames == list(DEMO_DATASETS[name].classnames) and 8 <= len(classnames) <= 20
    split = json.loads((folder / f"split_zhou_{name}.json").read_text())
    train, val, test = split["train"], split["val"], split["test"]
    per_class = DEMO_DATASETS[name].per_class
    assert (len(train), len(val), len(test)) == tuple(n * len(classnames) for n in per_class)
    assert per_class[0] >= 16 and 20 <= per_class[2] <= 50
    for rel, label, classname in train + val + test:
        assert classnames[label] == classname
        assert rel.split("/")[0] == classname.replace(" ", "_")
        assert (folder / "images" / rel).is_file()
    assert sorted({s[1] for s in test}) == list(range(len(classnames)))
    prompts = json.loads((folder / "prompts.json").read_text())
    assert set(prompts) == set(classnames)
    assert all(len(p) >= 5 and all(isinstance(s, str) and s for s in p) for p in prompts.values())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["template"] == DEMO_TEMPLATES[name] and manifest["seed"] == 0
    assert set(manifest["concepts"]) < set(classnames)
    half = -(-len(classnames) // 2)  # CoOp's base = the first ceil(K/2) labels
    assert set(manifest["concepts"]) & set(classnames[:half]) and set(manifest["concepts"]) & set(classnames[half:])


def test_regenerated_only_when_stale(tmp_path: Path) -> None:
    folder = ensure_demo_dataset("DemoSatellite", tmp_path, image_size=32)
    marker = folder / "images" / "marker.txt"
    marker.write_text("kept while the manifest matches")
    ensure_demo_dataset("DemoSatellite", tmp_path, image_size=32)
    assert marker.is_file()
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "version": "an-older-generator"}))
    ensure_demo_dataset("DemoSatellite", tmp_path, image_size=32)
    assert not marker.is_file()  # regenerated cleanly
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    ensure_demo_dataset("DemoSatellite", tmp_path, seed=1, image_size=32)
    assert json.loads((folder / "manifest.json").read_text())["seed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["DemoSatellite"]  # no temporary folders left


def test_same_seed_same_files(tmp_path: Path) -> None:
    a = ensure_demo_dataset("DemoSketch", tmp_path / "a", seed=3, image_size=32)
    b = ensure_demo_dataset("DemoSketch", tmp_path / "b", seed=3, image_size=32)
    rel = json.loads((a / "split_zhou_DemoSketch.json").read_text())["test"][5][0]
    assert (a / "images" / rel).read_bytes() == (b / "images" / rel).read_bytes()
    assert (a / "prompts.json").read_text() == (b / "prompts.json").read_text()


def test_foreign_folder_is_not_deleted(tmp_path: Path) -> None:
    (tmp_path / "DemoShapes").mkdir()
    (tmp_path / "DemoShapes" / "mine.txt").write_text("user data")
    with pytest.raises(DataError, match="not written by the demo generator"):
        ensure_demo_dataset("DemoShapes", tmp_path)
    assert (tmp_path / "DemoShapes" / "mine.txt").is_file()


def test_prompt_noise_is_a_knob(tmp_path: Path) -> None:
    ds = DEMO_DATASETS["DemoShapes"]
    clean, default, noisy = (prompt_bank(ds, noise=n) for n in (0.0, 1.0, 2.0))
    vague = ("common thing", "many pictures", "easy to recognize", "typical look", "Drivers", "slow down")
    for name in ds.classnames:
        assert not any(v in s for s in clean[name] for v in vague)  # descriptions only
        assert len(clean[name]) < len(default[name]) < len(noisy[name])
        near_duplicate = [s for s in noisy[name] if s[0].islower() and not s.endswith(".")]
        assert near_duplicate and not [s for s in clean[name] if s[0].islower()]
    with pytest.raises(ValueError, match="noise"):
        prompt_bank(ds, noise=-1)
    folder = ensure_demo_dataset("DemoSatellite", tmp_path, image_size=32, noise=0.0)
    assert json.loads((folder / "manifest.json").read_text())["prompt_noise"] == 0.0
    assert json.loads((folder / "prompts.json").read_text()) == prompt_bank(DEMO_DATASETS["DemoSatellite"], noise=0.0)


def test_captions_and_qa(tmp_path: Path) -> None:
    folder = ensure_demo_captions(tmp_path, n_train=12, n_test=4, image_size=32)
    assert folder == tmp_path / CAPTIONS_NAME
    caps = json.loads((folder / "captions.json").read_text())
    qa = json.loads((folder / "qa.json").read_text())
    assert [c["split"] for c in caps].count("test") == 4 and len(caps) == 16
    assert all(len(c["captions"]) == 5 and (folder / "images" / c["image"]).is_file() for c in caps)
    assert len(qa) == 3 * 16 and all(q["question"].endswith("?") and q["answers"] for q in qa)
    assert {q["image"] for q in qa} == {c["image"] for c in caps}


def test_reader_passes_the_noise_knob(tmp_path: Path) -> None:
    from aape_lightning.demo.readers import DemoReader

    splits = DemoReader("DemoSatellite", root=str(tmp_path), prompt_noise=0.0).read()
    bank = json.loads(Path(splits.prompts).read_text())
    assert bank == prompt_bank(DEMO_DATASETS["DemoSatellite"], noise=0.0)
    with pytest.raises(ValueError, match="prompt_noise=-1"):
        DemoReader("DemoSatellite", root=str(tmp_path), prompt_noise=-1)
