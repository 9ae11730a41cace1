"""VQAv2 accuracy: answer normalisation and the 10-choose-9 average, worked by hand."""

from __future__ import annotations

import pytest

from aape_lightning.metrics.vqa_accuracy import normalize_answer, vqa_accuracy


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Two", "2"),  # number word
        ("the red one", "red 1"),  # article dropped, number word
        ("A dog.", "dog"),  # article, final period
        ("yes!", "yes"),  # punctuation
        ("dont know", "don't know"),  # contraction
        ("3,000", "3000"),  # comma between digits
        ("3.5", "3.5"),  # a decimal point stays
        ("left-hand", "left hand"),  # hyphen inside a word -> space
        ("  Tennis\\n", "tennis"),
    ],
)
def test_normalize_answer(raw: str, normal: str) -> None:
    assert normalize_answer(raw.replace("\\n", "\n")) == normal


def test_accuracy_averages_leave_one_out_subsets() -> None:
    answers = ["yes", "yes"] + ["no"] * 8
    # dropping a "yes" leaves 1 match (1/3), dropping a "no" leaves 2 (2/3): (2 * 1/3 + 8 * 2/3) / 10
    assert vqa_accuracy("yes", answers) == pytest.approx(0.6)
    assert vqa_accuracy("no", answers) == pytest.approx(1.0)  # 7 or 8 matches in every subset
    assert vqa_accuracy("maybe", answers) == 0.0
    three = ["2", "two", "2"] + ["3"] * 7
    # 3 matches after normalisation: dropping one leaves 2 (2/3) in 3 subsets, 3 (1) in 7: 0.9
    assert vqa_accuracy("Two", three) == pytest.approx(0.9)


def test_accuracy_needs_answers() -> None:
    with pytest.raises(ValueError):
        vqa_accuracy("yes", [])


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("x-ray -yes", "xray yes"),  # a "-" next to a space anywhere: every "-" is dropped, not spaced
        ("x-ray- yes", "xray yes"),  # the same when the space follows it
        ("x-ray\n-yes", "xray yes"),  # a newline counts as that space
        ("x-ray\t-yes", "xray yes"),  # and so does a tab
    ],
)
def test_punctuation_next_to_a_space_is_removed_everywhere(raw: str, normal: str) -> None:
    assert normalize_answer(raw) == normal


def test_accuracy_needs_answers_by_name() -> None:
    with pytest.raises(ValueError, match=r"^vqa_accuracy: a question needs at least one human answer$"):
        vqa_accuracy("yes", [])
