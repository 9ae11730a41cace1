"""No result typed by hand: every result-like number in README.md and docs/*.md must be one a results file holds.

The rule, precisely. A *result-like number* is a decimal with at least two digits after the point
(``61.34``, ``0.998``) or a decimal percentage (``29.0%``), not part of a dotted version (``2.14.1``)
or a word. It is looked for as a whole number token in the text of the files under ``results/``
(``.md``, ``.csv``, ``.json``). Not scanned: inline code spans, fenced blocks tagged ``bash``,
``sh``, ``yaml`` or ``python`` (commands and configs, whose numbers are settings, not results),
HTML comments and link targets. Untagged fenced blocks (printed output) are scanned.
Integers and one-decimal numbers (sizes, counts, settings) are not checked.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULT_LIKE = re.compile(r"(?<![\w.])(\d+\.\d{2,}|\d+\.\d+(?=\s?%))(?![\w]|\.\d)")
NUMBER_TOKEN = re.compile(r"(?<![\w.])\d+\.\d+(?![\w]|\.\d)")
SETTINGS_FENCE = re.compile(r"^```(bash|sh|yaml|python)\b.*?^```", re.S | re.M)
ANY_FENCE_LINE = re.compile(r"^```.*$", re.M)
NOT_PROSE = [re.compile(r"<!--.*?-->", re.S), re.compile(r"`[^`\n]+`"), re.compile(r"\]\([^)]*\)")]


def known_numbers(results: Path = ROOT / "results") -> set[str]:
    """Every decimal number token in the text files under ``results/``."""
    found: set[str] = set()
    for path in results.rglob("*"):
        if path.suffix in {".md", ".csv", ".json"}:
            found.update(NUMBER_TOKEN.findall(path.read_text(errors="replace")))
    return found


def prose(page: str) -> str:
    """The page with settings blocks, code spans, comments and link targets blanked (line numbers kept)."""
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # noqa: E731
    page = SETTINGS_FENCE.sub(blank, page)
    page = ANY_FENCE_LINE.sub(blank, page)
    for pattern in NOT_PROSE:
        page = pattern.sub(blank, page)
    return page


def offending_numbers(page: str, known: set[str]) -> list[tuple[int, str]]:
    """(line, number) for each result-like number of the page that no results file holds."""
    out = []
    for lineno, line in enumerate(prose(page).splitlines(), 1):
        out += [(lineno, n) for n in RESULT_LIKE.findall(line) if n not in known]
    return out


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_docs_quote_only_numbers_from_results():
    known = known_numbers()
    assert "61.34" in known  # the scan reads the committed results (results/demo_base2new.md)
    bad = [f"{p.relative_to(ROOT)}:{line}: {n}" for p in pages() for line, n in offending_numbers(p.read_text(), known)]
    assert not bad, "numbers no results/ file holds (link the results file or drop the number):\n" + "\n".join(bad)


def test_a_planted_number_fails():
    known = known_numbers()
    page = (
        "AAPE reaches 61.34 mean H (results/demo_base2new.md), but 97.13 here is typed by hand,\n"
        "and so is a 12.5% gain.\n"
        "Settings are not results: `lr 0.002`, torch 2.14.1, a [link](results/x_0.123.png).\n"
        "```bash\naape fit --model.core.reward_scale 2.57\n```\n"
        "```\nprinted output 55.55\n```\n"
    )
    assert offending_numbers(page, known) == [(1, "97.13"), (2, "12.5"), (8, "55.55")]


def test_a_real_page_with_a_planted_number_fails():
    readme = (ROOT / "README.md").read_text()
    assert offending_numbers(readme + "\nAAPE gains 3.14159 points.\n", known_numbers())[-1][1] == "3.14159"
