"""``aape data``: prepare a catalogued dataset in CoOp's layout, check one, list them.

    aape data prepare <name> --root <dir>   download + lay out (or print what to fetch)
    aape data check <name> --root <dir>     counts per split, missing and unreadable files
    aape data list [--root <dir>]           the known names and their folders

Names are CoOp's (DescribableTextures, OxfordFlowers, ImageNetA, ...) or folder names (dtd,
oxford_flowers, imagenet-adversarial, ...). Exit status: 0 ready / OK, 1 something missing or
manual steps remain, 2 a usage or data error.
"""

from __future__ import annotations

import argparse
import logging
import sys

from aape_lightning.data.classification.catalog import catalog_entry, known
from aape_lightning.data.classification.check import check
from aape_lightning.data.classification.prepare import prepare
from aape_lightning.errors import DataError


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
            for name, folder, present in known(args.root):
                print(f"{name:20s} {folder:22s} {'present' if present else '-'}")
            return 0
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


if __name__ == "__main__":
    sys.exit(data_main())
