"""Which files count as images, and finding them in a folder tree."""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def find_images(folder: Path) -> list[Path]:
    """Every image under ``folder`` (searched recursively), sorted so the order is the same on any file system."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
