"""Which files count as images, and finding them in a folder tree without leaving it.

A symlink inside the tree is followed while its target stays under the data root. One that
leads out of the root (a link to ``/`` or to another disk) is an error naming the link, its
target and the fix, unless the reader was told ``allow_outside_root``; one that leads back to a
folder above itself (a loop) is always an error.
"""

from __future__ import annotations

import os
from pathlib import Path

from aape_lightning.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

OUTSIDE_FIX = "set allow_outside_root: true on the reader (data.reader.init_args.allow_outside_root) to read it"


def check_link(link: Path, root: Path, allow_outside_root: bool = False, fix: str = OUTSIDE_FIX,
               walked: tuple[Path, ...] = ()) -> Path:
    """The real path of symlink ``link`` under the real data ``root``; an error if it loops or (unless allowed) escapes.

    ``walked``: the real folders the walk went through to reach ``link`` (links to any of them loop too).
    """
    target = Path(os.path.realpath(link))
    here = Path(os.path.realpath(link.parent))
    if target == here or target in here.parents or target in walked:
        raise DataError(f"symlink {link} -> {target} is a loop (it points at a folder above itself); remove the link")
    if not allow_outside_root and target != root and root not in target.parents:
        raise DataError(f"symlink {link} -> {target} leads out of the data root {root}; {fix}, or copy the files in")
    return target


def find_images(folder: Path, root: Path | None = None, allow_outside_root: bool = False,
                fix: str = OUTSIDE_FIX) -> list[Path]:
    """Every image under ``folder`` (searched recursively), sorted so the order is the same on any file system.

    ``root`` (default ``folder``) is the data root symlinks may not leave (see the module doc); the
    paths returned are the ones under ``folder``, links not resolved.
    """
    real_root = Path(os.path.realpath(root if root is not None else folder))
    found: list[Path] = []

    def walk(directory: Path, walked: tuple[Path, ...]) -> None:
        with os.scandir(directory) as entries:
            for entry in entries:
                path = Path(entry.path)
                if entry.is_symlink():
                    target = check_link(path, real_root, allow_outside_root, fix, walked)
                    if target.is_dir():
                        walk(path, (*walked, target))
                    elif target.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                        found.append(path)
                elif entry.is_dir(follow_symlinks=False):
                    walk(path, (*walked, walked[-1] / entry.name))
                elif path.suffix.lower() in IMAGE_SUFFIXES:
                    found.append(path)

    walk(folder, (Path(os.path.realpath(folder)),))
    return sorted(found)
