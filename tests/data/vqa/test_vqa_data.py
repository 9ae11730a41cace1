"""VQA data: the VQAv2 layout, the demo questions, shots, in-context draws and batches."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from aape_lightning.backbones import FrozenCLIP
from aape_lightning.data.vqa import VQADataModule, VQAv2Reader, collate_questions
from aape_lightning.demo import DemoVQAReader
from aape_lightning.errors import DataError


def test_vqav2_reader(tmp_path) -> None:
    split = "val2014"
    (tmp_path / split).mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / split / f"COCO_{split}_{42:012d}.jpg")
    questions = {"questions": [{"image_id": 42, "question": "What color?", "question_id": 7}]}
    answers = [{"answer": a} for a in ["red"] * 6 + ["dark red"] * 4]
    (tmp_path / f"v2_OpenEnded_mscoco_{split}_questions.json").write_text(json.dumps(questions))
    (tmp_path / f"v2_mscoco_{split}_annotations.json").write_text(
        json.dumps({"annotations": [{"question_id": 7, "image_id": 42, "answers": answers}]}))
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / f"captions_{split}.json").write_text(
        json.dumps({"annotations": [{"image_id": 42, "caption": " A red bus. "}]}))
    (q,) = VQAv2Reader(str(tmp_path), splits=[split]).read()[split]
    assert q.path.endswith(f"{split}/COCO_{split}_000000000042.jpg") and q.question_id == "7"
    assert len(q.answers) == 10 and q.answer == "red" and q.captions == ("A red bus.",)
    with pytest.raises(DataError, match="v2_OpenEnded_mscoco_train2014_questions.json"):
        VQAv2Reader(str(tmp_path), splits=["train2014"]).read()


@pytest.fixture(scope="module")
def demo_module(tmp_path_factory, tiny_clip) -> VQADataModule:
    reader = DemoVQAReader(str(tmp_path_factory.mktemp("demo")), n_train=8, n_test=4)
    dm = VQADataModule(reader, shots=5, num_workers=0, batch_size=4)
    dm.trainer = SimpleNamespace(lightning_module=SimpleNamespace(backbone=FrozenCLIP.load(str(tiny_clip))), world_size=1)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_demo_questions_have_ten_answers_and_captions(demo_module: VQADataModule) -> None:
    train = demo_module.splits["train"]
    assert len(train) == 8 * 3 and len(demo_module.splits["test"]) == 4 * 3
    for q in train:
        assert len(q.answers) == 10 and set(q.answers) <= set(q.answers[:2]) and len(q.captions) == 5
    shots = demo_module.questions("train")
    assert len(shots) == 5 and shots == demo_module.questions("train")  # the same draw every time


def test_context_examples_are_fixed_per_key(demo_module: VQADataModule) -> None:
    images, questions, answers = demo_module.context_examples(2, "q1")
    assert images.shape[:2] == (2, 3) and len(questions) == len(answers) == 2
    again = demo_module.context_examples(2, "q1")
    assert torch.equal(images, again[0]) and questions == again[1]
    draws = {tuple(demo_module.context_examples(2, f"q{i}")[1]) for i in range(8)}
    assert len(draws) > 1
    with pytest.raises(DataError, match="in-context"):
        demo_module.context_examples(6, "q1")  # only 5 training questions (shots)


def test_batches_keep_text_fields_as_lists(demo_module: VQADataModule) -> None:
    batch = next(iter(demo_module.train_dataloader()))
    assert batch["image"].shape[0] == 4 and len(batch["question"]) == 4
    assert all(len(a) == 10 for a in batch["answers"]) and all(len(c) == 5 for c in batch["captions"])
    assert collate_questions([None, None]) == {"skipped": 2}
