"""The import contracts of pyproject.toml ([tool.importlinter]): kept by the package, broken by a planted import.

Each check runs ``lint-imports`` in a subprocess, with the repository's own contracts, on this tree's package
or on a copy of it in a temporary folder (first on the path, so the copy is what is analysed).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "aape_lightning"
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(src: Path) -> subprocess.CompletedProcess:
    """The contracts checked on the package under ``src`` (its parent on the path, nothing cached)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([sys.executable, "-c", LINT, "--config", str(REPO / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=src)  # fmt: skip


def copy_package(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "aape_lightning", ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    return src


def plant(src: Path, module: str, code: str) -> None:
    path = src / "aape_lightning" / module
    path.write_text(path.read_text(encoding="utf-8") + "\n" + code + "\n", encoding="utf-8")


def test_the_package_keeps_every_contract():
    proc = lint_imports(REPO / "src")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " 0 broken" in proc.stdout and "KEPT" in proc.stdout


FUNCTION_LEVEL_UPWARD = "def _demo_domains():\n    from aape_lightning.demo.world import DOMAINS\n\n    return DOMAINS"


@pytest.mark.parametrize(
    ("module", "code", "contract", "offender"),
    [
        # the foundation importing the application, at the top of a module
        ("core/losses.py", "import aape_lightning.demo", "application > library > foundation",
         "aape_lightning.core.losses -> aape_lightning.demo"),
        # the library importing the demo world inside a function (what data/ did before issue 26)
        ("data/captions/readers.py", FUNCTION_LEVEL_UPWARD, "application > library > foundation",
         "aape_lightning.data.captions.readers -> aape_lightning.demo.world"),
        # prompts reading the dataset catalog (allowed by the three layers, not inside the library)
        ("prompts/mapping.py", "def _entry(name):\n    from aape_lightning.data.classification.catalog import catalog_entry"
         "\n\n    return catalog_entry(name)", "inside the library",
         "aape_lightning.prompts.mapping -> aape_lightning.data.classification.catalog"),
        # a circle between two modules of one layer, closed inside a function
        ("experiments/table_format.py", "def _spec():\n    from aape_lightning.experiments.table import run_table"
         "\n\n    return run_table", "no import circles", "table_format -> .table"),
    ],
    ids=["module-level-upward", "function-level-upward", "prompts-imports-data", "function-level-circle"],
)  # fmt: skip
def test_a_planted_import_breaks_its_contract_and_is_named(tmp_path, module, code, contract, offender):
    src = copy_package(tmp_path)
    plant(src, module, code)
    proc = lint_imports(src)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = " ".join(proc.stdout.split())  # the report wraps long lines
    assert f"{contract}" in report and " BROKEN" in report
    assert offender in report, report[-3000:]


def test_import_graph_tool_counts_what_it_is_shown(tmp_path, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("import_graph", REPO / "tools" / "import_graph.py")
    tool = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "import_graph", tool)  # its dataclass looks its module up
    spec.loader.exec_module(tool)
    clean = tool.report(REPO / "src", "aape_lightning", REPO / "pyproject.toml")
    assert clean["module_level_circles"] == clean["circles"] == clean["subpackage_circles"] == clean["upward"] == 0
    src = copy_package(tmp_path)
    plant(src, "data/captions/readers.py", FUNCTION_LEVEL_UPWARD)
    plant(src, "experiments/table_format.py", "from aape_lightning.experiments import table")
    counts = tool.report(src, "aape_lightning", REPO / "pyproject.toml")
    out = capsys.readouterr().out
    assert counts["upward"] == 1 and "data.captions.readers:" in out and "-> aape_lightning.demo.world (function-level)" in out
    assert counts["function_level"] == clean["function_level"] + 1
    assert counts["module_level_circles"] == 1 and "experiments.table <-> experiments.table_format" in out
    assert counts["unlayered"] == 0
