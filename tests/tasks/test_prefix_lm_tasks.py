"""Captioning and VQA through the CLI on the demo world's scenes, with the tiny CLIP and a tiny random LM."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from aape_lightning.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "demo"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """A folder of three demo images for ``predict``."""
    from aape_lightning.demo.datasets import ensure_demo_captions

    folder = ensure_demo_captions(tmp_path_factory.mktemp("demo"), n_train=12, n_test=6)
    out = tmp_path_factory.mktemp("predict")
    for path in sorted((folder / "images").glob("test_*.png"))[:3]:
        shutil.copy(path, out)
    return folder.parent, out


def _nocaps(root: Path, out: Path) -> Path:
    """A NoCaps-format folder from the demo test images: two per domain, their captions as references."""
    entries = [e for e in json.loads((root / "DemoCaptions" / "captions.json").read_text()) if e["split"] == "test"]
    images = [{"id": i, "file_name": e["image"], "domain": ("in-domain", "near-domain", "out-domain")[i % 3]}
              for i, e in enumerate(entries)]  # fmt: skip
    notes = [{"image_id": i, "id": 10 * i + j, "caption": c} for i, e in enumerate(entries) for j, c in enumerate(e["captions"])]
    (out / "val").mkdir(parents=True)
    for e in entries:
        shutil.copy(root / "DemoCaptions" / "images" / e["image"], out / "val" / e["image"])
    (out / "nocaps_val_4500_captions.json").write_text(json.dumps({"images": images, "annotations": notes}))
    return out


def _common(tiny_clip: Path, tiny_lm: Path, root: Path, run: Path) -> list[str]:
    return ["--model.backbone", str(tiny_clip), "--model.lm", str(tiny_lm),
            "--data.reader.root", str(root), "--data.reader.n_train", "12", "--data.reader.n_test", "6",
            "--data.num_workers", "0", "--data.batch_size", "6", "--data.eval_batch_size", "6",
            "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(run)]  # fmt: skip


def _predictions(run: Path) -> list[dict]:
    (path,) = run.rglob("predictions.csv")
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _test_line(out: str) -> dict[str, float]:
    line = next(ln for ln in out.splitlines() if ln.startswith("test: "))
    return {k: float(v) for k, v in (part.rsplit(" ", 1) for part in line[len("test: "):].split(" | "))}


def test_captioning_fit_test_predict(tiny_clip, tiny_lm, images, tmp_path, cache_dir, capsys) -> None:
    root, folder = images
    assert main(["fit", "--config", str(CONFIGS / "captioning.yaml"), *_common(tiny_clip, tiny_lm, root, tmp_path / "fit"),
                 "--model.max_length", "3", "--model.num_beams", "2", "--trainer.precision", "bf16-mixed"]) == 0
    (ckpt,) = (tmp_path / "fit").rglob("*.ckpt")
    (record,) = (tmp_path / "fit").rglob("environment_fit.json")
    assert json.loads(record.read_text())["lm"]["name"] == str(tiny_lm)  # the run record names the LM
    capsys.readouterr()
    assert main(["test", "--ckpt_path", str(ckpt), "--trainer.default_root_dir", str(tmp_path / "test")]) == 0
    scores = _test_line(capsys.readouterr().out)
    assert set(scores) == {"CIDEr-D", "BLEU-4", "CLIP-S", "RefCLIP-S"}
    assert 0 <= scores["CLIP-S"] <= 250 and scores["CIDEr-D"] >= 0
    nocaps = _nocaps(root, tmp_path / "nocaps")
    assert main(["test", "--ckpt_path", str(ckpt), "--data", "NoCapsDataModule", "--data.reader", "NoCapsReader",
                 "--data.reader.root", str(nocaps), "--data.num_workers", "0",
                 "--trainer.default_root_dir", str(tmp_path / "test_nocaps")]) == 0
    by_domain = _test_line(capsys.readouterr().out)
    assert {f"{d}/CIDEr-D" for d in ("in-domain", "near-domain", "out-domain")} | {"CIDEr-D", "CLIP-S"} <= set(by_domain)
    assert main(["predict", "--ckpt_path", str(ckpt), "--data", "CaptionDataModule", "--data.predict_dir", str(folder),
                 "--data.num_workers", "0", "--trainer.default_root_dir", str(tmp_path / "predict")]) == 0
    rows = _predictions(tmp_path / "predict")
    assert [Path(r["path"]).name for r in rows] == sorted(p.name for p in folder.iterdir())
    assert all(len(r["caption"].split()) <= 3 for r in rows)  # word-level LM: at most max_length words


def test_vqa_fit_test_at_k_predict(tiny_clip, tiny_lm, images, tmp_path, cache_dir, capsys) -> None:
    root, folder = images
    assert main(["fit", "--config", str(CONFIGS / "vqa.yaml"), *_common(tiny_clip, tiny_lm, root, tmp_path / "fit"),
                 "--model.use_aape", "false", "--data.shots", "20"]) == 0
    (ckpt,) = (tmp_path / "fit").rglob("*.ckpt")
    capsys.readouterr()
    assert main(["test", "--ckpt_path", str(ckpt), "--model", "VQATask", "--model.context_shots", "2",
                 "--trainer.default_root_dir", str(tmp_path / "test")]) == 0
    scores = _test_line(capsys.readouterr().out)
    assert list(scores) == ["acc_K2"] and 0 <= scores["acc_K2"] <= 100
    assert main(["predict", "--ckpt_path", str(ckpt), "--data", "VQADataModule", "--data.predict_dir", str(folder),
                 "--data.num_workers", "0", "--model", "VQATask", "--model.predict_max_length", "2",
                 "--trainer.default_root_dir", str(tmp_path / "predict")]) == 0
    rows = _predictions(tmp_path / "predict")
    assert len(rows) == 3 and all(r["question"] == "What is in the image?" and len(r["answer"].split()) <= 2 for r in rows)


def _prefix_lm_checkpoint(task, path: Path) -> Path:
    """What `aape fit` writes, in-process: the state, the class path the CLI saves, the backbone and LM identity."""
    import torch

    hparams = {"_class_path": f"aape_lightning.tasks.{type(task).__name__}"}
    checkpoint = {"state_dict": task.state_dict(), "hyper_parameters": hparams}
    task.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


def test_vqa_init_from_captioning_checkpoint_takes_its_weights_or_refuses(tiny_clip, tiny_lm, tmp_path, cache_dir):
    import torch

    from aape_lightning.errors import CheckpointMismatchError
    from aape_lightning.tasks import CaptioningTask, RetrievalTask, VQATask
    from aape_lightning.tasks.prefix_lm_task import TRAINED

    models = {"backbone": str(tiny_clip), "lm": str(tiny_lm)}
    torch.manual_seed(1)
    captioning = CaptioningTask(**models)
    ckpt = _prefix_lm_checkpoint(captioning, tmp_path / "captioning.ckpt")
    torch.manual_seed(2)
    vqa = VQATask(**models, init_from=str(ckpt))
    trained = {k: v for k, v in captioning.state_dict().items() if k.startswith(TRAINED)}
    assert {k.split(".")[0] for k in trained} == {"prefix_lm", "core"} and any("aape_map" in k for k in trained)
    assert not all(torch.equal(v, vqa.state_dict()[k]) for k, v in trained.items())  # fresh weights differ
    vqa.setup("test")
    assert all(torch.equal(v, vqa.state_dict()[k]) for k, v in trained.items())
    assert "init_from" not in vqa.hparams  # a VQA checkpoint is complete without the captioning file

    retrieval = _prefix_lm_checkpoint(RetrievalTask(backbone=str(tiny_clip)), tmp_path / "retrieval.ckpt")
    with pytest.raises(CheckpointMismatchError, match=r"retrieval.ckpt is a RetrievalTask checkpoint.*CaptioningTask"):
        VQATask(**models, init_from=str(retrieval)).setup("test")
    no_aape = _prefix_lm_checkpoint(CaptioningTask(**models, use_aape=False), tmp_path / "limber.ckpt")
    with pytest.raises(CheckpointMismatchError, match=r"does not fit this model at core\..*model.use_aape"):
        VQATask(**models, init_from=str(no_aape)).setup("fit")
    other_lm = torch.load(ckpt, weights_only=False)
    other_lm["aape_lm"]["sha256"] = "0" * 64
    torch.save(other_lm, tmp_path / "other_lm.ckpt")
    with pytest.raises(CheckpointMismatchError, match="set model.lm to the checkpoint's LM"):
        VQATask(**models, init_from=str(tmp_path / "other_lm.ckpt")).setup("test")
