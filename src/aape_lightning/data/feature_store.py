"""A persistent store of frozen image features, shared by every run, method, seed and table.

CLIP's image tower never trains here, so the feature of one file, seen through one transform by
one backbone at one precision, never changes: it is encoded once and read ever after.

Layout, under ``<cache dir>/features/`` (``aape cache info|clear``):

* one folder per *namespace*: a hash of the backbone's SHA-256, the transform's ``repr`` (size,
  mean, std, interpolation, crop), the pixel pipeline's version, the encoder's precision and
  device type; ``namespace.json`` says in words what it is;
* in it, shards ``<uuid>.safetensors`` (the safetensors layout, written here with NumPy): a
  ``(n, d)`` float32 tensor ``features`` whose header metadata holds the ``n`` row keys and the
  SHA-256 of the tensor's bytes. A shard that fails its checksum, is truncated or unreadable is
  warned about once, deleted and its rows encoded again: it is never served.

A row's key is the file's identity: its resolved path, size and modification time in
nanoseconds (``file_identity``), so an edited or replaced file is a miss, without reading it;
an augmented training view adds ``#view<i>``. Shards are written to a temporary file and renamed
into place (atomic); names are unique, so several processes or DDP ranks filling at once never
overwrite each other (a row encoded twice is harmless). A lock file (``fcntl``) serialises the
renames with the size bound: past ``max_bytes`` (default ``DEFAULT_MAX_GB``) the least recently
used shards are deleted.

Torch-free (NumPy only, imported when needed), so that ``aape cache`` starts at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import struct
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from aape_lightning.cache_dir import default_cache_dir
from aape_lightning.data.image_decode import PIXEL_PIPELINE  # the decoder's version: new decoding, new features

log = logging.getLogger(__name__)

try:  # POSIX; elsewhere unique shard names alone keep writers apart
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

DEFAULT_MAX_GB = 20.0
SHARD_SUFFIX = ".safetensors"
COUNTS_FILE = "feature_store.json"  # per run, in the trainer's default_root_dir: encoded / read

_warned: set[str] = set()
_run_counts: dict[str, dict[str, int]] = {}  # default_root_dir -> counts of this process's runs there


def store_root(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or default_cache_dir()) / "features"


def file_identity(path: str | Path) -> str:
    """``path|size|mtime_ns``: cheap (one ``stat``) and changes whenever the file is rewritten."""
    p = Path(path).resolve()
    st = p.stat()
    return f"{p}|{st.st_size}|{st.st_mtime_ns}"


def namespace(backbone_sha256: str, transform: object, precision: str, device_type: str) -> tuple[str, dict]:
    """The folder name of features made by this backbone, transform and encoder precision, and its description."""
    about = {"backbone_sha256": backbone_sha256, "transform": repr(transform), "pixels": PIXEL_PIPELINE,
             "precision": str(precision), "device": device_type}  # fmt: skip
    return hashlib.sha256(json.dumps(about, sort_keys=True).encode()).hexdigest()[:32], about


# -- shards: the safetensors layout, one tensor and its keys -----------------------------------
def write_shard(path: Path, keys: Sequence[str], features) -> None:
    """``features (n, d)`` float32 NumPy, saved with its keys and checksum; temp file + rename."""
    import numpy as np

    data = np.ascontiguousarray(features, dtype="<f4").tobytes()
    meta = {"keys": json.dumps(list(keys)), "sha256": hashlib.sha256(data).hexdigest()}
    header = {"features": {"dtype": "F32", "shape": list(features.shape), "data_offsets": [0, len(data)]},
              "__metadata__": meta}  # fmt: skip
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)  # the format aligns the data to 8 bytes
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob + data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_header(path: Path) -> dict:
    """The shard's header; ``ValueError`` if it is not a whole one."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("truncated header")
        (n,) = struct.unpack("<Q", head)
        if n > 1 << 30:
            raise ValueError("bad header length")
        raw = f.read(n)
    if len(raw) < n:
        raise ValueError("truncated header")
    header = json.loads(raw)
    header["_data_start"] = 8 + n
    return header


def shard_keys(path: Path) -> list[str]:
    return json.loads(read_header(path)["__metadata__"]["keys"])


def read_shard(path: Path):
    """``(keys, features (n, d) float32)``, checked against the stored checksum; ``ValueError`` if it fails."""
    import numpy as np

    header = read_header(path)
    spec, meta = header["features"], header["__metadata__"]
    start, end = spec["data_offsets"]
    with open(path, "rb") as f:
        f.seek(header["_data_start"] + start)
        data = f.read(end - start)
    if len(data) != end - start:
        raise ValueError("truncated data")
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise ValueError("checksum mismatch")
    keys = json.loads(meta["keys"])
    features = np.frombuffer(data, dtype="<f4").reshape(spec["shape"]).copy()
    if features.shape[0] != len(keys):
        raise ValueError("keys and rows differ in number")
    return keys, features


# -- the store ------------------------------------------------------------------------------
class FeatureStore:
    """Rows of one namespace: ``lookup`` what is stored, ``add`` what was just encoded."""

    def __init__(self, root: Path, name: str, about: dict | None = None, max_bytes: int | None = None) -> None:
        self.root, self.dir = Path(root), Path(root) / name
        self.max_bytes = int(DEFAULT_MAX_GB * 2**30) if max_bytes is None else int(max_bytes)
        self.about = about or {}

    def _shards(self) -> list[Path]:
        return sorted(self.dir.glob(f"*{SHARD_SUFFIX}")) if self.dir.is_dir() else []

    def _discard(self, path: Path, err: Exception) -> None:
        if str(path) not in _warned:
            _warned.add(str(path))
            log.warning("feature store: shard %s is damaged (%s); deleted, its images will be encoded again", path, err)
        with contextlib.suppress(OSError):
            path.unlink()

    def lookup(self, keys: Iterable[str]):
        """``{key: (d,) float32 NumPy row}`` for the keys stored (each shard verified before use)."""
        wanted, found = set(keys), {}
        for shard in self._shards():
            if not wanted:
                break
            try:
                if wanted.isdisjoint(shard_keys(shard)):
                    continue
                names, rows = read_shard(shard)
            except FileNotFoundError:  # deleted meanwhile (the size bound, or a clear): its rows are misses
                continue
            except (ValueError, KeyError, json.JSONDecodeError, OSError) as err:
                self._discard(shard, err)
                continue
            with contextlib.suppress(OSError):
                os.utime(shard)  # recently used: the size bound deletes others first
            for k, row in zip(names, rows):
                if k in wanted:
                    found[k] = row
                    wanted.discard(k)
        return found

    def add(self, keys: Sequence[str], features) -> None:
        """Store ``features (n, d)`` under ``keys``; then keep the whole store within ``max_bytes``."""
        if not len(keys):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        about = self.dir / "namespace.json"
        if not about.is_file():
            tmp = about.with_name(f".namespace.{uuid.uuid4().hex}.tmp")
            tmp.write_text(json.dumps(self.about, indent=1), encoding="utf-8")
            os.replace(tmp, about)
        path = self.dir / f"{uuid.uuid4().hex}{SHARD_SUFFIX}"
        with _locked(self.root):
            write_shard(path, keys, features)
            bound(self.root, self.max_bytes, keep={path})


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(root / ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _all_shards(root: Path) -> list[Path]:
    return list(root.glob(f"*/*{SHARD_SUFFIX}")) if root.is_dir() else []


def bound(root: Path, max_bytes: int, keep: set[Path] = frozenset()) -> int:
    """Delete least recently used shards until the store holds at most ``max_bytes``; how many were deleted."""
    sized = []
    for p in _all_shards(root):
        with contextlib.suppress(FileNotFoundError):
            st = p.stat()
            sized.append((st.st_mtime, st.st_size, p))
    total, deleted = sum(s for _, s, _ in sized), 0
    for _, size, p in sorted(sized, key=lambda x: x[0]):
        if total <= max_bytes:
            break
        if p in keep:
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            deleted += 1
        total -= size
    for tmp in root.glob("*/.*.tmp"):  # a writer killed mid-write leaves its temp file
        with contextlib.suppress(FileNotFoundError):
            if time.time() - tmp.stat().st_mtime > 3600:
                tmp.unlink()
    return deleted


# -- counts per run and per table ------------------------------------------------------------
def record_counts(run_dir: str | Path | None, encoded: int, read: int) -> dict[str, int]:
    """Add to this process's counts for the run in ``run_dir`` and write them there (``COUNTS_FILE``)."""
    counts = _run_counts.setdefault(str(run_dir), {"encoded": 0, "read": 0})
    counts["encoded"] += encoded
    counts["read"] += read
    if run_dir is not None:
        with contextlib.suppress(OSError):
            out = Path(run_dir)
            out.mkdir(parents=True, exist_ok=True)
            tmp = out / f".{COUNTS_FILE}.{uuid.uuid4().hex}.tmp"
            tmp.write_text(json.dumps(counts), encoding="utf-8")
            os.replace(tmp, out / COUNTS_FILE)
    return counts


def totals(run_dirs: Iterable[str | Path]) -> str:
    """One line: images encoded and read from the store over these runs (as each recorded them)."""
    encoded = read = runs = 0
    for d in run_dirs:
        path = Path(d) / COUNTS_FILE
        with contextlib.suppress(OSError, ValueError):
            counts = json.loads(path.read_text(encoding="utf-8"))
            encoded, read, runs = encoded + int(counts["encoded"]), read + int(counts["read"]), runs + 1
    return f"feature store over {runs} runs: {encoded} images encoded, {read} read from the store"


# -- aape cache info | clear -----------------------------------------------------------------
def info(root: Path) -> list[dict]:
    """One row per namespace: its description, shards, rows and bytes."""
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        shards = sorted(folder.glob(f"*{SHARD_SUFFIX}"))
        n = 0
        for s in shards:
            with contextlib.suppress(OSError, ValueError, KeyError):
                n += int(read_header(s)["features"]["shape"][0])
        about = {}
        with contextlib.suppress(OSError, ValueError):
            about = json.loads((folder / "namespace.json").read_text(encoding="utf-8"))
        rows.append({"namespace": folder.name, "shards": len(shards), "rows": n,
                     "bytes": sum(s.stat().st_size for s in shards), **about})  # fmt: skip
    return rows


def clear(root: Path) -> int:
    """Delete every namespace (under the lock, so no writer is mid-rename); the bytes freed."""
    if not root.is_dir():
        return 0
    with _locked(root):
        freed = sum(s.stat().st_size for s in _all_shards(root))
        for folder in [p for p in root.iterdir() if p.is_dir()]:
            shutil.rmtree(folder, ignore_errors=True)
    return freed
