"""The README's headline table is the results file's, copied by ``python docs/readme_table.py``."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("readme_table", ROOT / "docs" / "readme_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RESULTS = """Title
seeds: [1, 2, 3]

| method | A base | mean H | mean new, h shuffled |
|---|---|---|---|
| zero_shot | 45.00 ± 0.00 | **50.26 ± 0.00** | — |
| aape | 83.61 ± 4.03 | 61.34 ± 1.08 | 49.59 ± 1.70 |

| another | table |
|---|---|
| x | 1 |
"""


def test_readme_blocks_equal_the_results_files():
    tool = _tool()
    readme = (ROOT / "README.md").read_text()
    assert "<!-- table: results/demo_base2new.md" in readme
    assert tool.update(readme) == readme, "README table is stale: run python docs/readme_table.py"
    assert tool.main(["--check", str(ROOT / "README.md")]) == 0


def test_render_picks_rows_and_columns_in_the_order_asked():
    table = _tool().render(RESULTS, ["aape", "zero_shot"], ["method", "mean H", "mean new, h shuffled"])
    assert table == (
        "| method | mean H | mean new, h shuffled |\n|---|---|---|\n"
        "| aape | 61.34 ± 1.08 | 49.59 ± 1.70 |\n| zero_shot | 50.26 ± 0.00 | — |\n"
    )
    with pytest.raises(ValueError, match="not in the table: cupl"):
        _tool().render(RESULTS, ["cupl"], ["method"])


def test_a_stale_block_is_rewritten_and_check_fails(tmp_path):
    tool = _tool()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "t.md").write_text(RESULTS)
    block = "<!-- table: results/t.md rows=aape columns=method;A base -->\n| method | A base |\n|---|---|\n| aape | 99.99 ± 0.00 |\n<!-- end table -->\n"
    page = tmp_path / "page.md"
    page.write_text("intro\n" + block + "outro\n")
    fresh = tool.update(page.read_text(), root=tmp_path)
    assert "| aape | 83.61 ± 4.03 |" in fresh and "99.99" not in fresh and fresh.endswith("outro\n")
    tool.ROOT = tmp_path
    assert tool.main(["--check", str(page)]) == 1 and "99.99" in page.read_text()  # --check changes nothing
    assert tool.main([str(page)]) == 0 and page.read_text() == fresh
