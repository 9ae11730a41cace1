"""VQA (LiMBeR + AAPE): "[image] Q: [question] A:", K in-context examples, VQAv2 accuracy."""

from __future__ import annotations

from collections.abc import Callable

import torch
from jsonargparse.typing import NonNegativeInt, PositiveInt
from torch import Tensor
from torchmetrics import MeanMetric

from aape_lightning.core.aape import AAPECore
from aape_lightning.metrics.vqa_accuracy import vqa_accuracy
from aape_lightning.tasks.optim import OptimSchedule
from aape_lightning.tasks.prefix_lm_task import PrefixLMTask


class VQATask(PrefixLMTask):
    """Training (finetuning on the data's ``shots``): LM loss on the most frequent answer after the prompt.

    Test: each question is preceded by ``context_shots`` solved examples from the training
    split (MAGMA's K-shot setting: ``[image_1] Q: q_1 A: a_1 ... [image] Q: q A:``), and the
    answer is cut at the token length of the longest ground-truth answer.

    Args (besides PrefixLMTask's):
        template: the prompt after the image prefix; ``{question}`` is filled in.
        context_shots: K, in-context examples per test question (0, 1, 4, ...).
        num_beams: 1 for greedy decoding, more for beam search.
        predict_question: the question ``aape predict`` asks of every image.
        predict_max_length: answer tokens in ``predict`` (no ground truth there).

    ``context_shots`` and the ``predict_*`` settings are not saved in checkpoints, so one trained
    model is tested at any K and asked any question: ``aape test --ckpt_path X --model VQATask
    --model.context_shots 4`` (``--model VQATask`` names the class the options belong to).
    """

    def __init__(
        self,
        backbone: str = "demo",
        lm: str = "demo",
        num_image_tokens: PositiveInt = 4,
        use_aape: bool = True,
        num_aape_tokens: PositiveInt = 1,
        core: Callable[[int], AAPECore] = AAPECore,
        init_from: str | None = None,
        template: str = "Q: {question} A:",
        context_shots: NonNegativeInt = 0,
        num_beams: PositiveInt = 1,
        predict_question: str = "What is in the image?",
        predict_max_length: PositiveInt = 5,
        cache_dir: str | None = None,
        optim: OptimSchedule = OptimSchedule(),
    ) -> None:
        super().__init__(backbone, lm, num_image_tokens, use_aape, num_aape_tokens, core, init_from, cache_dir, optim)
        if context_shots < 0:
            raise ValueError(f"VQATask: context_shots={context_shots} must be >= 0")
        self.save_hyperparameters(ignore=["init_from", "context_shots", "predict_question", "predict_max_length"])
        self.context_shots = context_shots
        self.predict_question, self.predict_max_length = predict_question, predict_max_length
        self.accuracy = MeanMetric()

    def _prompt(self, question: str) -> list[int]:
        return self.lm.encode([self.hparams.template.format(question=question)])[0]

    def _answer_ids(self, answer: str) -> list[int]:
        return self.lm.encode([" " + answer])[0]

    def training_step(self, batch: dict, batch_idx: int) -> Tensor | None:
        if self._count_skipped(batch, "train"):
            return None
        prefix, losses = self.image_prefix(self.image_features(batch), batch["captions"] if all(batch["captions"]) else None)
        samples = [[(p, False), (self._prompt(q), False), (self._answer_ids(a) + [self.lm.eos_id], True)]
                   for p, q, a in zip(prefix, batch["question"], batch["answer"])]  # fmt: skip
        return self.training_loss(self.prefix_lm.loss(samples), losses, batch_size=prefix.shape[0])

    def _context(self, key: str) -> list:
        """K solved examples as segments: ``[image_j] Q: q_j A: a_j`` for j = 1..K."""
        if not self.context_shots:
            return []
        images, questions, answers = self.trainer.datamodule.context_examples(self.context_shots, key)
        prefix, _ = self.image_prefix(self.backbone.encode_image(images))  # (K, P, E)
        return [seg for p, q, a in zip(prefix, questions, answers)
                for seg in ((p, False), (self._prompt(q) + self._answer_ids(a), False))]  # fmt: skip

    def answer(self, features: Tensor, questions: list[str], max_tokens: list[int], keys: list[str] | None = None) -> list[str]:
        """One answer per image (features ``(B, d)``) and question, at most ``max_tokens`` LM tokens each."""
        prefix, _ = self.image_prefix(features)  # (B, P, E)
        samples = [[*(self._context(k) if keys else []), (p, False), (self._prompt(q), False)]
                   for p, q, k in zip(prefix, questions, keys or [None] * len(questions))]  # fmt: skip
        ids = self.prefix_lm.generate(samples, max_tokens, self.hparams.num_beams)
        return [self.lm.decode(x) for x in ids]

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._count_skipped(batch, "test"):
            return
        limits = [max(len(self._answer_ids(a)) for a in answers) for answers in batch["answers"]]
        preds = self.answer(self.image_features(batch), batch["question"], limits, batch["question_id"])
        self.accuracy.update(torch.tensor([100 * vqa_accuracy(p, a) for p, a in zip(preds, batch["answers"])]))

    def on_test_epoch_end(self) -> None:
        self.test_results = {f"acc_K{self.context_shots}": float(self.accuracy.compute())}
        self.accuracy.reset()
        self.log(f"test/acc_K{self.context_shots}", self.test_results[f"acc_K{self.context_shots}"], sync_dist=False)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        if not self.has_images(batch):
            return {"path": [], "question": [], "answer": []}
        questions = [self.predict_question] * len(batch["path"])
        answers = self.answer(self.image_features(batch), questions, [self.predict_max_length] * len(questions))
        return {"path": batch["path"], "question": questions, "answer": answers}
