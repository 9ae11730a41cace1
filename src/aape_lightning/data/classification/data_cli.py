"""``aape data``: prepare a catalogued dataset in CoOp's layout, check one, list them.

    aape data prepare <name> --root <dir>   download + lay out (or print what to fetch)
    aape data check <name> --root <dir>     counts per split, missing and unreadable files
    aape data list [--root <dir>]           the known names and their folders

Names are CoOp's (DescribableTextures, OxfordFlowers, ImageNetA, ...) or folder names (dtd,
oxford_flowers, imagenet-adversarial, ...), or the offline demo datasets (DemoShapes, DemoSketch,
DemoSatellite: written by `aape demo build-data --root data/demo`). Exit status: 0 ready / OK, 1 something missing or
manual steps remain, 2 a usage or data error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aape_lightning.data.classification.catalog import catalog_entry, known
from aape_lightning.data.classification.check import CheckReport, check
from aape_lightning.data.classification.prepare import prepare
from aape_lightning.demo.datasets import DEMO_DATASETS
from aape_lightning.errors import DataError

DEMO_FOLDER = "demo"  # demo datasets live in <root>/demo/<Name> (DemoReader's default root: data/demo)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aape data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="download and lay out a dataset, or print what to fetch")
    prep.add_argument("name", help="dataset name (aape data list)")
    prep.add_argument("--root", default="data", help="the parent data folder (default: data)")
    prep.add_argument(
        "--download-dir", default=None, help="torchvision's download folder (default: <root>/_downloads/<folder>)"
    )
    prep.add_argument("--mode", choices=("symlink", "move"), default="symlink", help="link or move downloaded files")
    prep.add_argument("--seed", type=int, default=1, help="seed of a split file made because none exists")
    chk = sub.add_parser("check", help="report present, missing and unreadable files")
    chk.add_argument("name", help="dataset name (aape data list)")
    chk.add_argument("--root", default="data", help="the parent data folder (default: data)")
    chk.add_argument("--max-listed", type=int, default=20, help="list at most this many paths per kind")
    chk.add_argument("--no-images", action="store_true", help="only look for files; do not decode images")
    chk.add_argument("--workers", type=int, default=None, help="threads decoding images (default: up to 8)")
    lst = sub.add_parser("list", help="the known datasets")
    lst.add_argument("--root", default="data", help="mark the datasets present under this folder")
    return parser


def data_main(argv: list[str] | None = None) -> int:
    """Run one ``aape data`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "list":
            print(f"{'name':20s} {'folder under ' + args.root:22s} present")
            for name, folder, present in known(args.root):
                print(f"{name:20s} {folder:22s} {'yes' if present else '-'}")
            for name in DEMO_DATASETS:
                folder = f"{DEMO_FOLDER}/{name}"
                print(f"{name:20s} {folder:22s} {'yes' if (Path(args.root) / folder).is_dir() else '-'}  (offline demo)")
            return 0
        if args.name in DEMO_DATASETS:
            return _demo(args)
        name = catalog_entry(args.name).name
        if args.command == "prepare":
            outcome = prepare(name, args.root, download_dir=args.download_dir, mode=args.mode, seed=args.seed)
            print("\n".join(outcome.lines))
            return 0 if outcome.ready else 1
        report = check(name, args.root, verify_images=not args.no_images, workers=args.workers)
        print("\n".join(report.lines(args.max_listed)))
        return 0 if report.ok else 1
    except DataError as err:
        print(f"aape data: error: {err}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    """A demo dataset is generated, never downloaded: check its folder (``<root>/demo/<Name>`` or ``<root>/<Name>``)."""
    from aape_lightning.data.classification.readers import CoOpSplitReader

    root = Path(args.root)
    folder = next((f for f in (root / args.name, root / DEMO_FOLDER / args.name) if f.is_dir()), None)
    write = f"`aape demo build-data --root {root / DEMO_FOLDER}` writes it (so does a fit with DemoReader)"
    if args.command == "prepare" or folder is None:
        print(f"{args.name}: " + (f"{folder} is present" if folder else f"not under {root} nor {root / DEMO_FOLDER}")
              + f"; {write}")
        return 0 if folder else 1
    report = CheckReport(args.name, folder)
    splits = CoOpSplitReader(str(folder)).read()
    paths = {s: [it.path for it in getattr(splits, s)] for s in ("train", "val", "test")}
    report.classes, report.counts = len(splits.classnames), {s: len(p) for s, p in paths.items()}
    report.missing = [p for ps in paths.values() for p in ps if not Path(p).is_file()]
    report.missing_in = {s: sum(not Path(p).is_file() for p in ps) for s, ps in paths.items()}
    if report.missing:
        report.notes.append(write)
    print("\n".join(report.lines(args.max_listed)))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(data_main())
