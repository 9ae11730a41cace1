"""``aape data``: usage errors and the list of catalogued datasets."""

from __future__ import annotations

from fake_catalog import build

from aape_lightning.data.classification.catalog import CATALOG
from aape_lightning.data.classification.data_cli import data_main


def test_unknown_dataset_is_a_usage_error(tmp_path, capsys):
    assert data_main(["check", "mnist", "--root", str(tmp_path)]) == 2
    assert "unknown dataset 'mnist'; known: ImageNet" in capsys.readouterr().err


def test_list(tmp_path, capsys):
    build("EuroSAT", tmp_path)
    assert data_main(["list", "--root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(CATALOG) and any(ln.startswith("EuroSAT") and ln.endswith("present") for ln in lines)
