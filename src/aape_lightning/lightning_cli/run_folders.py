"""The run's folders: each run claims its version folder atomically, keeps a config an earlier run left, and
a run refused before it starts leaves no new folder behind; test and predict from a checkpoint log beside its run."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from lightning.pytorch.cli import SaveConfigCallback

from aape_lightning.errors import UnwritableError

log = logging.getLogger(__name__)


class KeepEarlierConfig(SaveConfigCallback):
    """Save the run's ``config.yaml``; one an earlier run left in the same folder is moved aside, not a refusal.

    With ``trainer.logger: false`` every run shares ``default_root_dir``: a run that failed early
    would otherwise block every rerun there ("config.yaml to NOT exist").
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not self.already_saved and self.save_to_log_dir and not self.overwrite:
            log_dir = trainer.log_dir  # broadcast: every rank calls it
            path = Path(log_dir) / self.config_filename if log_dir else None
            if path is not None and trainer.is_global_zero and path.is_file():
                aside = _free_name(path, time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime)))
                path.rename(aside)
                log.warning("%s was left by an earlier run in this folder; kept as %s", path, aside.name)
        super().setup(trainer, pl_module, stage)


def _free_name(path: Path, stamp: str) -> Path:
    """``config.yaml`` -> ``config.<stamp>.yaml`` (``.1``, ``.2``, ... when taken)."""
    candidate, n = path.with_name(f"{path.stem}.{stamp}{path.suffix}"), 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.{stamp}.{n}{path.suffix}")
    return candidate


def claim_version(logger) -> None:
    """Take the logger's ``version_N`` folder with ``mkdir`` (atomic): runs started together never share one.

    Lightning's TensorBoard and CSV loggers pick ``max(version_*) + 1`` by listing the folder, so two
    runs started at once in one ``default_root_dir`` both take it and one dies saving its config.
    """
    root = getattr(logger, "root_dir", None)
    if getattr(logger, "_version", 0) is not None or not root or "://" in str(root) or not hasattr(logger, "_get_next_version"):
        return  # a version given by the user, or a logger without version folders
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    version = logger._get_next_version()
    while True:
        try:
            (root / f"version_{version}").mkdir()
        except FileExistsError:
            version += 1
            continue
        logger._version = version
        return



def rank_zero() -> bool:
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def run_root(ckpt: Path) -> Path:
    """``<root>/lightning_logs/version_N/checkpoints/x.ckpt`` -> ``<root>``; else the checkpoint's folder."""
    parents = ckpt.resolve().parents
    if parents[0].name == "checkpoints" and len(parents) > 3 and parents[1].name.startswith("version_"):
        return parents[3]
    return parents[0]


def check_writable(path: Path, what: str, option: str) -> None:
    """Refuse before any work when ``path`` (a folder, made if absent) cannot be written."""
    path = path.expanduser()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UnwritableError(f"cannot write {what} {path}: {existing} is a file, not a folder; set {option} to a writable folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UnwritableError(f"cannot write {what} {path}: no write permission on {existing}; set {option} to a writable folder")


def watch_folders(roots: list[Path]) -> list[tuple[Path, set[str] | None]]:
    """Each root with its entries now (None: the root does not exist yet), and its missing parents."""
    watched = []
    for root in roots:
        root = root.expanduser().resolve()
        for folder in [root, *[p for p in root.parents if not p.exists()]]:
            watched.append((folder, set(os.listdir(folder)) if folder.is_dir() else None))
    return watched


def remove_new_folders(watched: list[tuple[Path, set[str] | None]]) -> None:
    """Delete folders this run created, unless they hold a checkpoint (never delete earlier results)."""
    for folder, before in watched:
        if not folder.is_dir():
            continue
        new = [folder / n for n in os.listdir(folder) if n not in (before or set())]
        for path in new:
            if path.is_dir() and not any(path.rglob("*.ckpt")):
                shutil.rmtree(path, ignore_errors=True)
        if before is None and not any(folder.iterdir()):
            folder.rmdir()
