"""Say what is wrong with a catalogued dataset (``aape data check``): counts, missing and unreadable files."""

from __future__ import annotations

import json
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from aape_lightning.data.classification.catalog import catalog_entry
from aape_lightning.data.classification.catalog_reader import CatalogReader
from aape_lightning.data.image_decode import open_rgb
from aape_lightning.errors import DataError


@dataclass
class CheckReport:
    """What ``aape data check`` found; ``ok`` when nothing is missing, unreadable or inconsistent."""

    name: str
    folder: Path
    classes: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # images per split
    missing_in: dict[str, int] = field(default_factory=dict)  # missing files per split
    unreadable_in: dict[str, int] = field(default_factory=dict)  # unreadable images per split
    missing: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unreadable or self.problems)

    def lines(self, max_listed: int = 20) -> list[str]:
        out = [f"{self.name}: {self.folder}"]
        if self.counts:
            out.append(f"  classes: {self.classes}")
            out += [
                f"  {split}: {n} images" + (
                    f" ({self.missing_in.get(split, 0)} missing, {self.unreadable_in.get(split, 0)} unreadable)"
                    if self.missing_in.get(split) or self.unreadable_in.get(split) else ""
                )
                for split, n in self.counts.items()
            ]
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  problem: {p}" for p in self.problems]
        for title, entries in (
            ("missing", self.missing),
            ("unreadable", [f"{path}: {why}" for path, why in self.unreadable]),
        ):
            if entries:
                out.append(f"  {title} ({len(entries)}):")
                out += [f"    {e}" for e in entries[:max_listed]]
                if len(entries) > max_listed:
                    out.append(f"    ... and {len(entries) - max_listed} more")
        verdict = "OK" if self.ok else (
            f"FAILED: {len(self.missing)} missing, {len(self.unreadable)} unreadable, "
            f"{len(self.problems)} other problem(s)"
        )
        return [*out, verdict]


def _unreadable(path: str) -> str | None:
    """Why an image cannot be decoded, or None; JPEGs decode at reduced size (fast, still reads every byte)."""
    try:
        open_rgb(path, draft=(64, 64))
    except Exception as err:  # noqa: BLE001 - PIL raises many kinds; all mean "unreadable"
        return f"{type(err).__name__}: {err}"
    return None


def check(
    name: str, root: str | Path, verify_images: bool = True, workers: int | None = None, **reader_args
) -> CheckReport:
    """Read a dataset as training would, then look for every file and (optionally) decode every image.

    Never writes: a missing split file is made in memory to list the images it would hold.
    """
    spec = catalog_entry(name)
    reader = CatalogReader(spec.name, root=str(root), **reader_args)
    report = CheckReport(spec.name, reader.root)
    if not reader.root.is_dir():
        report.missing.append(str(reader.root))
        try:
            reader.read()
        except DataError as err:
            report.problems.append(str(err))
        return report
    paths: dict[str, list[str]] = {}
    split_path = reader.split_path
    try:
        if split_path is not None and not split_path.is_file():
            report.notes.append(
                f"no split file {split_path}; the first read makes one (seed {reader.split_seed}); CoOp's published "
                f"file gives comparable numbers (`aape data prepare {spec.name}` says where)"
            )
            raw = spec.make_split(reader.root, reader.image_path, random.Random(reader.split_seed))
            paths = _raw_paths(raw, reader.image_path)
            report.classes = len({e[1] for e in raw["train"] + raw["val"] + raw["test"]})
        else:
            splits = reader.read()
            paths = {s: [it.path for it in getattr(splits, s)] for s in ("train", "val", "test")}
            report.classes = len(splits.classnames)
    except DataError as err:
        report.problems.append(str(err))
        if split_path is not None and split_path.is_file():
            try:
                raw = json.loads(split_path.read_text(encoding="utf-8"))
                paths = _raw_paths(raw, reader.image_path)
                report.classes = len({e[1] for s in ("train", "val", "test") for e in raw.get(s, [])})
            except (ValueError, TypeError, KeyError, IndexError):
                pass
    report.counts = {s: len(p) for s, p in paths.items()}
    unique = list(dict.fromkeys(p for split in paths.values() for p in split))
    present = [p for p in unique if os.path.isfile(p)]
    report.missing += [p for p in unique if not os.path.isfile(p)]
    if verify_images and present:
        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
            report.unreadable = [(p, why) for p, why in zip(present, pool.map(_unreadable, present)) if why]
    missing, unreadable = set(report.missing), {p for p, _ in report.unreadable}
    report.missing_in = {s: sum(p in missing for p in ps) for s, ps in paths.items()}
    report.unreadable_in = {s: sum(p in unreadable for p in ps) for s, ps in paths.items()}
    return report


def _raw_paths(raw: dict, image_dir: Path) -> dict[str, list[str]]:
    return {s: [str(image_dir / e[0]) for e in raw.get(s, [])] for s in ("train", "val", "test")}
