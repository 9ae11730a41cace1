"""``aape data``: usage errors and the list of catalogued datasets."""

from __future__ import annotations

from fake_catalog import build

from aape_lightning.cli import data_main
from aape_lightning.data.classification.catalog import CATALOG
from aape_lightning.demo.datasets import DEMO_DATASETS


def test_unknown_dataset_is_a_usage_error(tmp_path, capsys):
    assert data_main(["check", "mnist", "--root", str(tmp_path)]) == 2
    assert "unknown dataset 'mnist'; known: ImageNet" in capsys.readouterr().err


def test_list(tmp_path, capsys):
    build("EuroSAT", tmp_path)
    assert data_main(["list", "--root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "name" and lines[0].endswith("present")  # a header, then one line per dataset
    assert len(lines) == 1 + len(CATALOG) + len(DEMO_DATASETS)
    assert any(ln.startswith("EuroSAT") and ln.split()[-1] == "yes" for ln in lines)
    assert any(ln.startswith("DescribableTextures") and ln.split()[-1] == "-" for ln in lines)
    assert any(ln.startswith("DemoShapes") and "offline demo" in ln for ln in lines)
