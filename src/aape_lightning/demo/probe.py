"""``aape demo probe``: does the demo world reward language priors, and does a trained head use its AAPE?

Per demo dataset and base/new half (CoOp's split) it measures, on the test images:
  * zero-shot accuracy with the class-name template against the mean of the class's prompts
    (CuPL), over all classes and over the concepts (classes known by description only);
  * name-to-description retrieval: does the text tower put a class's name nearest to
    descriptions of that class's look (name-free phrases from the world's specs)?
Given AAPE checkpoints, for the half of new classes (never trained on):
  * the shuffle test: accuracy with each image's own h(x) against h of an image of another
    class (a head that ignores h(x) loses nothing);
  * the nearest-prompt accuracy of h(x): is h(x) nearest to its own class's mean prompt?
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.data.classification.protocols import base_new_labels
from aape_lightning.data.image_decode import open_rgb
from aape_lightning.demo.datasets import DEMO_DATASETS, PROMPT_NOISE, class_spec, ensure_demo_dataset
from aape_lightning.demo.pretrain import normalise_images
from aape_lightning.demo.world import CONCEPTS, spec_phrase
from aape_lightning.errors import CheckpointMismatchError

DESCRIPTIONS_PER_CLASS = 8


@dataclass
class DemoTestSet:
    """A demo dataset's test images as frozen features, with its classes and prompts."""

    name: str
    features: Tensor  # (N, d) unit image features
    labels: Tensor  # (N,) labels over all classes
    classnames: list[str]
    template: str
    prompts: dict[str, list[str]]

    def half(self, which: str) -> tuple[list[int], Tensor, Tensor]:
        """Labels of the base or new half, and that half's features and labels relabelled from 0."""
        base, new = base_new_labels(len(self.classnames))
        labels = base if which == "base" else new
        keep = torch.isin(self.labels, torch.tensor(labels))  # (N,)
        relabel = torch.full((len(self.classnames),), -1, dtype=torch.long)
        relabel[labels] = torch.arange(len(labels))
        return labels, self.features[keep], relabel[self.labels[keep]]


@torch.no_grad()
def read_test_set(backbone: FrozenCLIP, folder: str | Path, split: str = "test") -> DemoTestSet:
    """Encode a demo dataset's ``split`` images with ``backbone`` (resized to its resolution)."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    samples = json.loads((folder / f"split_zhou_{manifest['name']}.json").read_text(encoding="utf-8"))[split]
    res = backbone.image_resolution
    images = [open_rgb(folder / "images" / s[0]).resize((res, res), Image.BICUBIC) for s in samples]
    pixels = torch.from_numpy(np.stack([np.asarray(im) for im in images])).permute(0, 3, 1, 2)  # (N, 3, R, R)
    feats = torch.cat([backbone.encode_image(normalise_images(b).to(backbone.device)) for b in pixels.split(256)])
    return DemoTestSet(
        name=manifest["name"],
        features=F.normalize(feats.float().cpu(), dim=-1),  # (N, d)
        labels=torch.tensor([label for _, label, _ in samples]),  # (N,)
        classnames=manifest["classnames"],
        template=manifest["template"],
        prompts=json.loads((folder / "prompts.json").read_text(encoding="utf-8")),
    )


@torch.no_grad()
def mean_embeddings(backbone: FrozenCLIP, texts: list[list[str]]) -> Tensor:
    """``(K, d)``: per class, the normalised mean of its texts' unit embeddings."""
    return F.normalize(torch.stack([backbone.encode_text(t).float().cpu().mean(0) for t in texts]), dim=-1)


def descriptions(classname: str, n: int = DESCRIPTIONS_PER_CLASS) -> list[str]:
    """``n`` name-free phrases for what a class looks like, from the world's spec of it."""
    rng = random.Random(f"probe/{classname}")
    return [spec_phrase(class_spec(classname), rng) for _ in range(n)]


def _accuracy(scores: Tensor, labels: Tensor) -> float:
    return 100.0 * (scores.argmax(-1) == labels).float().mean().item() if len(labels) else math.nan


@torch.no_grad()
def probe_world(backbone: FrozenCLIP, test: DemoTestSet) -> list[dict[str, float | str | int]]:
    """One row per half: template vs prompts accuracy (all, concepts) and name retrieval."""
    rows = []
    for which in ("base", "new"):
        labels, feats, targets = test.half(which)
        names = [test.classnames[k] for k in labels]
        concept = torch.tensor([n in CONCEPTS for n in names])  # (K,)
        template = backbone.text_features([test.template.format(n) for n in names]).float().cpu()  # (K, d)
        prompts = mean_embeddings(backbone, [test.prompts[n] for n in names])  # (K, d)
        described = mean_embeddings(backbone, [descriptions(n) for n in names])  # (K, d)
        on_concepts = concept[targets]  # (N,)
        retrieved = (template @ described.t()).argmax(-1) == torch.arange(len(names))  # (K,)
        rows.append({
            "dataset": test.name, "half": which, "classes": len(names), "concepts": int(concept.sum()),
            "chance": 100.0 / len(names),
            "template": _accuracy(feats @ template.t(), targets),
            "prompts": _accuracy(feats @ prompts.t(), targets),
            "template_concepts": _accuracy(feats[on_concepts] @ template.t(), targets[on_concepts]),
            "prompts_concepts": _accuracy(feats[on_concepts] @ prompts.t(), targets[on_concepts]),
            "retrieval": 100.0 * retrieved.float().mean().item(),
            "retrieval_concepts": 100.0 * retrieved[concept].float().mean().item() if concept.any() else math.nan,
        })  # fmt: skip
    return rows


def other_class_partner(labels: Tensor) -> Tensor:
    """``(N,)`` index of the image whose h(x) each image gets in the shuffle test.

    Images sorted by label and rolled by half the set: each gets one of another class
    (whenever no class holds half the images), the same pairing every run.
    """
    order = torch.argsort(labels, stable=True)  # (N,)
    partner = torch.empty_like(order)
    partner[order] = order.roll(len(order) // 2)
    return partner


@torch.no_grad()
def probe_checkpoint(task, test: DemoTestSet) -> dict[str, float | str]:
    """Shuffle test and nearest-prompt accuracy of a trained AAPE head on the new half."""
    head = task.head
    if not hasattr(head, "core") or not hasattr(head, "logits"):
        raise CheckpointMismatchError(
            f"the checkpoint's head {type(head).__name__} has no AAPE; the shuffle test needs an AAPEHead checkpoint"
        )
    labels, feats, targets = test.half("new")
    names = [test.classnames[k] for k in labels]
    if task.hparams["class_sets"].get("new") != names:
        raise CheckpointMismatchError(
            f"the checkpoint's new classes {task.hparams['class_sets'].get('new')} are not {test.name}'s {names}"
        )
    head.set_classes("new", names, task.hparams["template"])
    feats = feats.to(task.device)
    aape = head.core.generator(feats)  # (N, d)
    prompts = mean_embeddings(task.backbone, [test.prompts[n] for n in names])  # (K, d)
    partner = other_class_partner(targets)
    targets = targets.to(task.device)
    return {
        "dataset": test.name, "chance": 100.0 / len(names),
        "new": _accuracy(head.logits(feats, aape, "new"), targets),
        "new_shuffled": _accuracy(head.logits(feats, aape[partner.to(task.device)], "new"), targets),
        "nearest_prompt": _accuracy(aape.float().cpu() @ prompts.t(), targets.cpu()),
    }  # fmt: skip


def dataset_of(task, ckpt_path: str | Path | None = None) -> str:
    """The demo dataset a checkpoint was trained on: its saved reader, else its classes (if unambiguous)."""
    if ckpt_path is not None:
        data = torch.load(ckpt_path, map_location="cpu", weights_only=False).get("aape_data") or {}
        reader = (data.get("init_args") or {}).get("reader") or {}
        name = (reader.get("init_args") or {}).get("name")
        if name in DEMO_DATASETS and "Demo" in str(reader.get("class_path", "")):
            return name
    sets = task.hparams.get("class_sets") or {}
    trained = [*sets.get("base", []), *sets.get("new", [])]
    matches = [name for name, ds in DEMO_DATASETS.items() if list(ds.classnames) == trained]
    if len(matches) == 1:
        return matches[0]
    raise CheckpointMismatchError(
        f"cannot tell which demo dataset checkpoint {ckpt_path} was trained on: its classes {trained[:6]}... "
        + (f"are those of {matches}" if matches else f"are no demo dataset's ({sorted(DEMO_DATASETS)})")
        + "; the probe needs a base-to-new run on a demo dataset trained with `aape fit` (its data settings are saved)"
    )


def demo_test_set(backbone: FrozenCLIP, name: str, root: str | Path, seed: int = 0,
                  noise: float = PROMPT_NOISE) -> DemoTestSet:  # fmt: skip
    """The test set of demo dataset ``name`` under ``root`` (written first when absent or stale)."""
    return read_test_set(backbone, ensure_demo_dataset(name, root, seed, backbone.image_resolution, noise))


def format_world(rows: list[dict]) -> str:
    """The world probe as a fixed-width table (accuracies in %)."""
    head = (f"{'dataset':<14}{'half':<6}{'K':>3}{'conc':>5}{'chance':>8}{'template':>10}{'prompts':>9}"
            f"{'tmpl/conc':>11}{'prm/conc':>10}{'retrieval':>11}{'retr/conc':>11}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['dataset']:<14}{r['half']:<6}{r['classes']:>3}{r['concepts']:>5}{r['chance']:>8.1f}"
            f"{r['template']:>10.1f}{r['prompts']:>9.1f}{r['template_concepts']:>11.1f}{r['prompts_concepts']:>10.1f}"
            f"{r['retrieval']:>11.1f}{r['retrieval_concepts']:>11.1f}"
        )
    return "\n".join(lines)


def format_checkpoints(rows: list[dict]) -> str:
    """The checkpoint probe as a fixed-width table (new-class accuracies in %)."""
    names = [str(r["checkpoint"]).split("/lightning_logs/")[0] for r in rows]  # the run folder says which run, whole
    width = max([len("checkpoint"), *map(len, names)]) + 1
    head = f"{'checkpoint':<{width}}{'dataset':<14}{'chance':>8}{'new':>8}{'shuffled':>10}{'drop':>7}{'nearest-prompt':>16}"
    lines = [head, "-" * len(head)]
    for name, r in zip(names, rows):
        lines.append(f"{name:<{width}}{r['dataset']:<14}{r['chance']:>8.1f}{r['new']:>8.1f}{r['new_shuffled']:>10.1f}"
                     f"{r['new'] - r['new_shuffled']:>7.1f}{r['nearest_prompt']:>16.1f}")  # fmt: skip
    return "\n".join(lines)
