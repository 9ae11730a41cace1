"""Copy tables from generated results files into README.md: ``python docs/readme_table.py [--check]``.

A block in a Markdown page

    <!-- table: results/demo_base2new.md rows=zero_shot;aape columns=method;mean H -->
    ...
    <!-- end table -->

(rows and columns separated by ``;``; ``rows=*`` takes every row) is replaced by those rows and columns of the first table in that results file, cells as written there
(bold dropped: it marks the best of all rows, not of the rows shown). ``--check`` changes nothing and
exits 1 when a block differs from its file, so a regenerated results file never leaves a stale copy.
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- table: (\S+) rows=(\S+) columns=(.+?) -->\n)(.*?)(<!-- end table -->)", re.S)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def first_table(markdown: str) -> list[list[str]]:
    """The first pipe table of a page: header row, then body rows (the ``|---|`` line left out)."""
    rows, started = [], False
    for line in markdown.splitlines():
        if line.startswith("|"):
            started = True
            if not set(line) <= set("|-: "):
                rows.append(_cells(line))
        elif started:
            break
    if not rows:
        raise ValueError("no table in the page")
    return rows


def render(markdown: str, rows: list[str], columns: list[str]) -> str:
    """The chosen rows (by first cell) and columns (by header) of the page's first table, as Markdown."""
    header, *body = first_table(markdown)
    by_name = {row[0]: row for row in body}
    rows = [row[0] for row in body] if rows == ["*"] else rows
    missing = [c for c in columns if c not in header] + [r for r in rows if r not in by_name]
    if missing:
        raise ValueError(f"not in the table: {', '.join(missing)}")
    picks = [header.index(c) for c in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name in rows:
        lines.append("| " + " | ".join(by_name[name][i].replace("**", "") for i in picks) + " |")
    return "\n".join(lines) + "\n"


def update(page: str, root: Path | None = None) -> str:
    """The page with every table block regenerated from its results file (paths relative to ``root``)."""
    root = root or ROOT

    def fill(match: re.Match) -> str:
        source = (root / match.group(2)).read_text(encoding="utf-8")
        table = render(source, match.group(3).split(";"), [c.strip() for c in match.group(4).split(";")])
        return match.group(1) + table + match.group(6)

    return BLOCK.sub(fill, page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report a stale block, change nothing")
    parser.add_argument("pages", nargs="*", default=[str(ROOT / "README.md")])
    args = parser.parse_args(argv)
    stale = []
    for name in args.pages:
        page = Path(name)
        text = page.read_text(encoding="utf-8")
        new = update(text)
        if new != text:
            stale.append(name)
            if not args.check:
                page.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"stale table blocks in {', '.join(stale)}: run python docs/readme_table.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
