"""The prediction writer writes the columns a task's predict_step returns, whatever they are."""

from __future__ import annotations

import csv
from types import SimpleNamespace

from aape_lightning.callbacks import PredictionWriter


def trainer(log_dir) -> SimpleNamespace:
    return SimpleNamespace(world_size=1, is_global_zero=True, log_dir=str(log_dir), default_root_dir=str(log_dir),
                           print=lambda *a: None)


def test_any_columns_in_order_floats_rounded_sorted_by_path(tmp_path):
    writer = PredictionWriter("out.csv")
    t = trainer(tmp_path)
    for batch in ({"path": ["b.png", "a.png"], "caption": ["two dots", "a ring"], "score": [0.5, 0.25]},
                  {"path": ["c.png"], "caption": ["a star"], "score": [1.0]}):
        writer.write_on_batch_end(t, None, batch, None, None, 0, 0)
    writer.on_predict_epoch_end(t, None)
    with open(tmp_path / "out.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["path", "caption", "score"], ["a.png", "a ring", "0.250000"], ["b.png", "two dots", "0.500000"],
                    ["c.png", "a star", "1.000000"]]


def test_columns_without_a_path_keep_their_order(tmp_path):
    writer = PredictionWriter(str(tmp_path / "answers.csv"))  # absolute: not under the log dir
    t = trainer(tmp_path / "logs")
    writer.write_on_batch_end(t, None, {"question": ["q2", "q1"], "answer": ["yes", "no"]}, None, None, 0, 0)
    writer.on_predict_epoch_end(t, None)
    with open(tmp_path / "answers.csv", newline="") as fh:
        assert list(csv.DictReader(fh)) == [{"question": "q2", "answer": "yes"}, {"question": "q1", "answer": "no"}]


def test_a_json_name_writes_a_json_list_of_rows_with_numbers(tmp_path):
    import json

    writer = PredictionWriter("out.json")
    t = trainer(tmp_path)
    writer.write_on_batch_end(t, None, {"path": ["b.png", "a.png"], "caption_1": ["x", "y"], "score_1": [0.5, 0.25]},
                              None, None, 0, 0)
    writer.on_predict_epoch_end(t, None)
    assert json.loads((tmp_path / "out.json").read_text()) == [
        {"path": "a.png", "caption_1": "y", "score_1": 0.25}, {"path": "b.png", "caption_1": "x", "score_1": 0.5}]
