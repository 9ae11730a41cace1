"""The table runner: runs, resumes without recomputing, chains one fit into several tests, reports failures."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import pytest
import yaml

from aape_lightning.cli import main
from aape_lightning.experiments import table as table_module
from aape_lightning.lightning_cli.aape_cli import lightning_main
from tiny_world import make_coop_dataset

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def table_config(tmp_path, tiny_clip, tiny_dataset) -> Path:
    cfg = {
        "methods": {"zero_shot": str(CONFIGS / "classification/zero_shot.yaml"),
                    "coop": str(CONFIGS / "classification/coop.yaml"),
                    "linear_probe": str(CONFIGS / "classification/linear_probe.yaml")},
        "base": [str(CONFIGS / "fewshot.yaml")],
        "datasets": {"Tiny": ["--data.reader.root", str(tiny_dataset)]},
        "seeds": [1, 2],
        "output": str(tmp_path / "table"),
        "results": str(tmp_path / "results"),
        "extra_args": ["--model.backbone", str(tiny_clip), "--trainer.max_epochs", "1", "--trainer.accelerator",
                       "cpu", "--trainer.precision", "32-true", "--data.num_workers", "0", "--data.shots", "2",
                       "--trainer.enable_progress_bar", "false", "--model.head.context.n_ctx", "4"],
    }
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_table_runs_and_resumes(tmp_path, tiny_clip, tiny_dataset, cache_dir, capsys):
    cfg = table_config(tmp_path, tiny_clip, tiny_dataset)
    # the zero-shot head has no n_ctx: method-specific extras go through --only runs below
    args = ["table", "--config", str(cfg)]
    text = yaml.safe_load(cfg.read_text())
    text["extra_args"] = text["extra_args"][:-2]
    cfg.write_text(yaml.safe_dump(text))
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| zero_shot |" in out and "| coop |" in out and "Tiny H" in out
    totals = out.splitlines()[-1].split()  # "feature store over 6 runs: E images encoded, R read from the store"
    assert totals[:4] == ["feature", "store", "over", "6"]
    assert int(totals[8]) > int(totals[5]) > 0  # the test images were encoded by the first run, read by the others
    records = sorted((tmp_path / "table").rglob("result.json"))
    assert len(records) == 6
    # trainable heads were fitted (a checkpoint exists), the zero-shot head was only tested
    for method, fitted in (("coop", True), ("linear_probe", True), ("zero_shot", False)):
        assert bool(list((tmp_path / "table" / "Tiny" / method).rglob("*.ckpt"))) == fitted
    # a table's checkpoint carries its data settings, like `aape fit`'s (`aape test --ckpt_path` alone works)
    import torch

    ckpt = next((tmp_path / "table" / "Tiny" / "coop").rglob("*.ckpt"))
    data = torch.load(ckpt, map_location="cpu", weights_only=False)["aape_data"]
    assert data["init_args"]["reader"]["init_args"]["root"] == str(tiny_dataset)
    stamps = [r.stat().st_mtime_ns for r in records]
    assert main(args) == 0  # resumes: nothing recomputed
    assert [r.stat().st_mtime_ns for r in records] == stamps
    assert capsys.readouterr().out.splitlines()[-2:] == out.splitlines()[-2:]
    # the zero-shot rows are identical across seeds: nothing is sampled for the test set
    zs = [yaml.safe_load(r.read_text())["test"] for r in records if "zero_shot" in str(r)]
    assert zs[0] == zs[1]


def test_unknown_method_lists_known(tmp_path, tiny_clip, tiny_dataset, capsys):
    cfg = table_config(tmp_path, tiny_clip, tiny_dataset)
    assert main(["table", "--config", str(cfg), "--only", "[coop, cooop]"]) == 2
    err = capsys.readouterr().err
    assert "unknown method(s) ['cooop']" in err and "'coop'" in err and "'zero_shot'" in err


def test_an_edited_config_is_rerun_not_served_stale(tmp_path, tiny_clip, tiny_dataset, cache_dir):
    method = tmp_path / "zero_shot.yaml"
    method.write_text((CONFIGS / "classification/zero_shot.yaml").read_text())
    cfg = table_config(tmp_path, tiny_clip, tiny_dataset)
    text = yaml.safe_load(cfg.read_text())
    text.update(methods={"zero_shot": str(method)}, seeds=[1], extra_args=text["extra_args"][:-2])
    cfg.write_text(yaml.safe_dump(text))
    assert main(["table", "--config", str(cfg)]) == 0
    (record,) = (tmp_path / "table").rglob("result.json")
    first, stamp = yaml.safe_load(record.read_text()), record.stat().st_mtime_ns
    assert main(["table", "--config", str(cfg)]) == 0
    assert record.stat().st_mtime_ns == stamp  # unchanged: reused
    method.write_text(method.read_text().replace("head:\n      class_path: ZeroShotHead",
                                                 "head:\n      class_path: ZeroShotHead\n      init_args:\n"
                                                 "        templates: ['a drawing of a {}.']"))
    assert main(["table", "--config", str(cfg)]) == 0
    assert record.stat().st_mtime_ns != stamp  # the edited method ran again
    assert yaml.safe_load(record.read_text())["key"] != first["key"]


def test_editing_how_tables_look_reruns_nothing_and_editing_a_method_reruns_all(tmp_path):
    import shutil

    package = tmp_path / "aape_lightning"
    shutil.copytree(Path(table_module.__file__).resolve().parents[1], package,
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    first = table_module.source_digest(package)
    for module in table_module.PRESENTATION:
        (package / module).write_text((package / module).read_text() + "\n# edited\n")
    assert table_module.source_digest(package) == first
    head = package / "heads" / "classification" / "aape.py"
    head.write_text(head.read_text() + "\n# edited\n")
    assert table_module.source_digest(package) != first


class Killed(BaseException):
    """Stands for SIGKILL / Ctrl-C: not an Exception, so nothing catches it (pytest treats KeyboardInterrupt as its own)."""


def _csv_rows(path: Path, output: Path) -> list[dict]:
    """The CSV without what differs between two runs of the same table: timings, and the output folder."""
    rows = list(csv.DictReader(path.open()))
    for row in rows:
        row.pop("wall_s"), row.pop("fit_s_per_epoch")
        row["run_dir"] = str(Path(row["run_dir"]).relative_to(output))
    return rows


def test_a_killed_table_resumes_to_the_uninterrupted_result(tmp_path, tiny_clip, tiny_dataset, cache_dir, monkeypatch):
    """2 methods x 1 dataset x 2 seeds: killed after the first run, resumed; table and CSV equal an uninterrupted run's."""
    cfg = table_config(tmp_path, tiny_clip, tiny_dataset)
    text = yaml.safe_load(cfg.read_text())
    text["methods"].pop("linear_probe")
    text["extra_args"] = text["extra_args"][:-2]
    cfg.write_text(yaml.safe_dump(text))
    real, calls, kill = table_module.run_one, [], [True]

    def killed_after_the_first(args, tests=None):
        calls.append(args)
        if len(calls) == 2 and kill and kill.pop():
            raise Killed  # what a kill does mid-table: nothing after it is written
        return real(args, tests)

    monkeypatch.setattr(table_module, "run_one", killed_after_the_first)
    with pytest.raises(Killed):
        main(["table", "--config", str(cfg)])
    assert len(list((tmp_path / "table").rglob("result.json"))) == 1
    calls.clear()
    assert main(["table", "--config", str(cfg)]) == 0  # resumed: the first run is reused, three run
    assert len(calls) == 3
    assert main(["table", "--config", str(cfg), "--output", str(tmp_path / "whole"), "--results",
                 str(tmp_path / "whole_results"), "--name", "table"]) == 0  # fmt: skip
    assert len(calls) == 7
    resumed, whole = tmp_path / "results", tmp_path / "whole_results"
    assert (resumed / "table.md").read_text() == (whole / "table.md").read_text()
    rows = _csv_rows(resumed / "table.csv", tmp_path / "table")
    assert rows == _csv_rows(whole / "table.csv", tmp_path / "whole")
    assert [(r["method"], r["seed"]) for r in rows] == [("coop", "1"), ("coop", "2"), ("zero_shot", "1"), ("zero_shot", "2")]
    assert (resumed / "table_H.png").stat().st_size > 0


def test_jobs_run_side_by_side_and_give_the_one_at_a_time_table(tmp_path, tiny_clip, tiny_dataset, cache_dir, caplog):
    """--jobs 2 (spawned workers, one thread each) = the same runs one at a time, a failing run included."""
    cfg = table_config(tmp_path, tiny_clip, tiny_dataset)
    text = yaml.safe_load(cfg.read_text())
    text["methods"]["broken"] = [text["methods"].pop("linear_probe"), "--data.reader.root", str(tmp_path / "nowhere")]
    text["extra_args"] = text["extra_args"][:-2]
    cfg.write_text(yaml.safe_dump(text))
    caplog.set_level("INFO")
    assert main(["table", "--config", str(cfg), "--threads_per_job", "1"]) == 1  # the broken runs fail
    one = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[table ")]
    caplog.clear()
    assert main(["table", "--config", str(cfg), "--jobs", "2", "--threads_per_job", "1", "--output",
                 str(tmp_path / "jobs"), "--results", str(tmp_path / "jobs_results"), "--name", "table"]) == 1
    both = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[table ")]
    assert not any(", 2 running," in line for line in one) and any(", 2 running," in line for line in both)
    assert both[-1].startswith("[table 6/6 done (2 failed), 0 running, 0 left]")
    assert (tmp_path / "results" / "table.md").read_text() == (tmp_path / "jobs_results" / "table.md").read_text()
    rows = _csv_rows(tmp_path / "results" / "table.csv", tmp_path / "table")
    assert rows == _csv_rows(tmp_path / "jobs_results" / "table.csv", tmp_path / "jobs")
    errors = {r["method"]: r["error"] for r in rows}
    assert errors["coop"] == errors["zero_shot"] == "" and "nowhere" in errors["broken"]
    assert len(list((tmp_path / "jobs").rglob("result.json"))) == 4  # the failed runs left no record
    assert main(["table", "--config", str(cfg), "--jobs", "0"]) == 2


def test_dg_chain_fits_once_and_tests_that_checkpoint_on_every_target(tmp_path, tiny_clip, tiny_dataset, cache_dir):
    other = make_coop_dataset(tmp_path / "Other", classes=["red circle", "blue square", "green triangle", "purple square"])
    cfg = table_config(tmp_path, tiny_clip, tiny_dataset)
    text = yaml.safe_load(cfg.read_text())
    cross = ["--data.protocol", "cross"]
    text.update(layout="chain", methods={"coop": text["methods"]["coop"]}, seeds=[1], name="dg",
                datasets={"Tiny": ["--data.reader.root", str(tiny_dataset), "--data.protocol", "all"]}, extra_args=text["extra_args"][:-2],
                tests={"Tiny": [], "Other": ["--data.reader.root", str(other), *cross],
                       "Again": ["--data.reader.root", str(tiny_dataset), *cross]})
    cfg.write_text(yaml.safe_dump(text))
    assert main(["table", "--config", str(cfg)]) == 0
    (ckpt,) = (tmp_path / "table").rglob("*.ckpt")  # one fit
    (record,) = (tmp_path / "table").rglob("result.json")
    result = yaml.safe_load(record.read_text())["test"]
    assert {"Tiny", "Other", "Again"} <= set(result)
    # the chained test equals `aape test --ckpt_path` of that checkpoint on the target
    cli = lightning_main(["test", "--ckpt_path", str(ckpt), "--data.reader.class_path", "CoOpSplitReader",
                          "--data.reader.root", str(other), *cross, "--data.num_workers", "0",
                          "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"])
    assert cli.model.test_results == pytest.approx({"cross:Other": result["Other"]})
    # the same classes tested through the cross protocol score what the fit's own test scored
    assert result["Again"] == pytest.approx(result["Tiny"])
    md = (tmp_path / "results" / "dg.md").read_text()
    assert "| Tiny | Again | Other | mean (targets) |" in md
    mean = (result["Other"] + result["Again"]) / 2
    assert f"{mean:.2f}" in md.splitlines()[-1]


def test_a_failed_run_is_summarised_and_the_others_finish(tmp_path, monkeypatch, caplog):
    """No training here: run_one is replaced, to check the bookkeeping (progress, summary, bold, CSV error)."""
    zs = tmp_path / "zs.yaml"
    zs.write_text("{}")

    def fake(args, tests=None):
        if "broken" in " ".join(args):
            raise RuntimeError("CUDA out of memory\nlong trace")
        seed = int(args[args.index("--seed_everything") + 1])
        good = "good" in " ".join(args)
        return {"base": 80.0 + seed, "new": 70.0 if good else 60.0, "H": 75.0 if good else 65.0}

    monkeypatch.setattr(table_module, "run_one", fake)
    spec = table_module.TableSpec(
        methods={"good": [str(zs), "--good"], "bad": [str(zs), "--bad"], "broken": [str(zs), "--broken"]},
        datasets={"D": []}, seeds=[1, 2], output=str(tmp_path / "runs"), results=str(tmp_path / "res"), name="t")
    caplog.set_level("INFO")
    table, outcomes = table_module.run_table(spec)
    assert sum(o.error is not None for o in outcomes) == 2 and len(outcomes) == 6
    summary = table_module.failure_summary(outcomes)
    assert "2 of 6 runs failed" in summary and "broken on D, seed 1: RuntimeError: CUDA out of memory" in summary
    assert "long trace" not in summary
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[table ")]
    assert len(progress) == 12  # a line when each run starts and one when it ends
    assert progress[-1].startswith("[table 6/6 done (2 failed), 0 running, 0 left]")
    assert "remaining" in progress[1] and "elapsed" in progress[1]
    assert "| good | **81.50 ± 0.50** | **70.00 ± 0.00** | **75.00 ± 0.00** |" in table
    assert "| broken | — | — | — |" in table
    errors = [r["error"] for r in csv.DictReader((tmp_path / "res" / "t.csv").open())]
    assert errors[4].startswith("RuntimeError") and errors[:4] == ["", "", "", ""]


def _counting_target(calls: list, seconds: float = 0.0):
    def target(args, tests, threads):
        calls.append(args[-1])
        time.sleep(seconds)
        return {"H": float(len(calls))}, seconds

    return target


def test_two_tables_at_once_compute_each_run_once(tmp_path):
    """Two runners on one spec (threads here, processes in use): the run lock makes the second reuse the first's."""
    runs = [table_module.Run(f"m{k}", "D", 1, None, [f"--run{k}"], tmp_path / f"m{k}") for k in range(3)]
    calls: list = []
    target = _counting_target(calls, 0.3)
    got: dict = {}
    threads = [threading.Thread(target=lambda n=n: got.setdefault(n, table_module.execute(
        runs, "src", lock_poll_s=0.05, target=target))) for n in ("a", "b")]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == ["--run0", "--run1", "--run2"]  # every run computed exactly once
    assert [o.metrics for o in got["a"]] == [o.metrics for o in got["b"]]


def test_unreadable_run_records_are_warned_once_and_rebuilt(tmp_path, caplog):
    runs = [table_module.Run(f"m{k}", "D", 1, None, [f"--run{k}"], tmp_path / f"m{k}") for k in range(3)]
    calls: list = []
    table_module.execute(runs, "src", target=_counting_target(calls))
    (tmp_path / "m0" / "result.json").write_bytes(bytes(range(256)) * 4)  # not UTF-8
    (tmp_path / "m1" / "result.json").write_text('{"key": 1, "test": [1, 2]}')  # JSON, not a record
    caplog.set_level("WARNING")
    calls.clear()
    outcomes = table_module.execute(runs, "src", target=_counting_target(calls))
    assert calls == ["--run0", "--run1"] and not any(o.error for o in outcomes)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "2 run record(s) unreadable" in warnings[0] and "m0" in warnings[0]
    assert table_module.read_record(runs[0])["test"] == outcomes[0].metrics  # rebuilt


def test_tables_write_under_their_output_unless_results_is_given(tmp_path, monkeypatch):
    zs = tmp_path / "zs.yaml"
    zs.write_text("{}")
    monkeypatch.setattr(table_module, "run_one", lambda args, tests=None: {"base": 1.0, "new": 2.0, "H": 1.33})
    monkeypatch.chdir(tmp_path)
    spec = table_module.TableSpec(methods={"zs": str(zs)}, datasets={"D": []}, seeds=[1], output="runs/t", name="t")
    table_module.run_table(spec)
    assert (tmp_path / "runs/t/t.md").is_file() and (tmp_path / "runs/t/t.csv").is_file()
    assert not (tmp_path / "results").exists()
    spec.results = "results"
    table_module.run_table(spec)
    assert (tmp_path / "results/t.md").read_text() == (tmp_path / "runs/t/t.md").read_text()


def test_devices_must_be_a_comma_separated_list(tmp_path, tiny_clip, tiny_dataset, capsys):
    cfg = table_config(tmp_path, tiny_clip, tiny_dataset)
    assert main(["table", "--config", str(cfg), "--devices", "0,,1"]) == 2
    assert "--devices '0,,1'" in capsys.readouterr().err


def test_a_results_folder_the_system_refuses_fails_before_any_run(tmp_path, monkeypatch, capsys):
    zs = tmp_path / "zs.yaml"
    zs.write_text("{}")
    ran = []
    monkeypatch.setattr(table_module, "run_one", lambda args, tests=None: ran.append(args) or {"base": 1.0})
    (tmp_path / "a_file").write_text("")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"methods": {"zs": str(zs)}, "datasets": {"D": []}, "seeds": [1],
                                    "output": str(tmp_path / "runs"), "results": str(tmp_path / "a_file" / "results")}))
    assert main(["table", "--config", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "a_file" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert ran == []  # refused before any run was computed
