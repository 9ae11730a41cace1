"""``aape prompts fetch cupl``: download CuPL's published prompt banks, pinned to a commit and checksummed.

CuPL (Pratt et al., ICCV 2023) publishes its GPT-3 banks in github.com/sarahpratt/CuPL under
``all_prompts/full_prompts/``, one JSON ``{class name: [sentences]}`` per dataset; they cover 10
of the paper's 11 datasets (not EuroSAT: generate that one with ``aape prompts generate``).
Each file is checked against its git blob id (SHA-1 of ``"blob <size>\\0" + content``, as listed
in the pinned commit's tree) and, where recorded, its SHA256, before it is renamed into place;
a mismatch leaves no file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aape_lightning.prompts.keys import dataset_key

log = logging.getLogger(__name__)

CUPL_COMMIT = "719619c829792ff8f37298266e941b7f077c7f5c"
CUPL_BASE_URL = f"https://raw.githubusercontent.com/sarahpratt/CuPL/{CUPL_COMMIT}/"


class DownloadError(RuntimeError):
    """A download that failed or did not match its checksum (not the user's input: exit code 1)."""


@dataclass(frozen=True)
class PublishedBank:
    """One published bank: its path in the repository and its checksums at the pinned commit."""

    path: str
    git_blob: str
    sha256: str | None = None  # None where the file was too large to hash here; the blob id still pins it

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


_FULL = "all_prompts/full_prompts/"
CUPL_BANKS: dict[str, PublishedBank] = {
    "ImageNet": PublishedBank(_FULL + "imagenet_prompts_full.json", "3eca90382a18a1c54586f719cb58e27329063259"),
    "Caltech101": PublishedBank(
        _FULL + "cal_prompts_full.json", "8dd65dc77f960376c0f8ebced94c8d1d6ff7a898",
        "f0995df6482ae36ec969d7bbdc01fd37ec8724430d6d2369e0043eee1f542834",
    ),
    "OxfordPets": PublishedBank(
        _FULL + "pets_prompts_full.json", "0d9d1af64fa0afddeecdead5d65922fb17a2f3e7",
        "b53cbe7f37e807c13a3f02e511c6058e6a50bafea3f8c4363cb85bf32920c6c6",
    ),
    "StanfordCars": PublishedBank(
        _FULL + "cars_prompts_full.json", "9ad6927eca9753484824061d60b61df86e8d5fd8",
        "10c77fcbd845283b59148e9bf714ec521971a34f0c9e691d46f65c8371d9e52d",
    ),
    "OxfordFlowers": PublishedBank(
        _FULL + "flower_prompts_full.json", "cc21e4693bd0c7007e2485b5ded28756a0f2e780",
        "439e88a1ac5f7058da59d0bcdc4fa848283e4e8f29fc8711ebac4274137a2bbf",
    ),
    "Food101": PublishedBank(
        _FULL + "food_prompts_full.json", "9de2619fc7db276ba53e715389745168bca21c64",
        "67cb17f323b7f0726e4b152224365fda289658ff92b0d14ee264910a16af96dc",
    ),
    "FGVCAircraft": PublishedBank(
        _FULL + "airplane_prompts_full.json", "030f9aed70989a19dfa5280584d1d8ec667549dc",
        "d86833c2483c1d12907abeb6198412f1d0a020bd12999a3f170967a7f549e3b8",
    ),
    "SUN397": PublishedBank(
        _FULL + "sun_prompts_full.json", "5aef33b09d222f0ee43121b977cfc88d839d86c8",
        "e6b1a95febe8e9420799fcf3be6647a73dc1aa9a6a9ac100d264c3ff78faf011",
    ),
    "DescribableTextures": PublishedBank(
        _FULL + "texture_prompts_full.json", "fec0ef19f0a3922fafd35971789ba362a3cf334e",
        "dabdcafded7babd67046d0f90abeb510b648bdaaf397b884f265f3460a7942a9",
    ),
    "UCF101": PublishedBank(
        _FULL + "ucf_prompts_full.json", "d85366112b9c4976195533585d46c60fccc3244a",
        "8f2b130ee0c7573c3f0d4a6353c9bdda64ea63b771155207befa579f2a35c985",
    ),
}
"""CuPL's bank per catalog dataset (ImageNet's also serves ImageNetV2/Sketch/A/R)."""


def git_blob_id(data: bytes) -> str:
    """Git's object id of a file with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _mismatch(bank: PublishedBank, data: bytes) -> str | None:
    if git_blob_id(data) != bank.git_blob:
        return f"git blob id {git_blob_id(data)}, expected {bank.git_blob}"
    if bank.sha256 is not None and hashlib.sha256(data).hexdigest() != bank.sha256:
        return f"SHA256 {hashlib.sha256(data).hexdigest()}, expected {bank.sha256}"
    return None


def fetch_banks(
    out_dir: str | Path,
    datasets: Sequence[str] | None = None,
    base_url: str = CUPL_BASE_URL,
    banks: Mapping[str, PublishedBank] = CUPL_BANKS,
    opener: Callable[[str], bytes] | None = None,
    timeout: float = 60.0,
) -> dict[str, Path]:
    """Download ``datasets``' banks (default: all) into ``out_dir``; dataset -> file.

    ``datasets`` are catalog names ("Caltech101"; case, ``-`` and ``_`` ignored): ``aape prompts fetch``
    resolves a folder name or an alias ("dtd") through the data catalog first.

    A file already there with the right checksums is kept. Each download is checked in memory,
    written to a temp file in ``out_dir`` and renamed, so a failed or corrupt download leaves
    nothing. ``opener`` (url -> bytes) replaces ``urllib`` (tests use ``file://`` URLs or one).
    """
    by_key = {dataset_key(name): name for name in banks}
    wanted = list(banks) if not datasets else [by_key.get(dataset_key(d), d) for d in datasets]
    unknown = [d for d in wanted if d not in banks]
    if unknown:
        raise ValueError(
            f"CuPL publishes no bank for {unknown}; choose from {', '.join(banks)}, or write one with "
            "`aape prompts generate --classes <split JSON or class list> --out <bank.json> ...`"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    read = opener or (lambda url: _urlopen(url, timeout))
    done: dict[str, Path] = {}
    for name in wanted:
        bank = banks[name]
        target = out / bank.file_name
        if target.is_file() and _mismatch(bank, target.read_bytes()) is None:
            log.info("%s: %s is already there", name, target)
            done[name] = target
            continue
        url = base_url.rstrip("/") + "/" + bank.path
        data = read(url)
        wrong = _mismatch(bank, data)
        if wrong:
            raise DownloadError(
                f"{url}: checksum mismatch ({wrong}); nothing was written to {target}. The download was "
                "corrupted or the file changed upstream: retry, or download it yourself and compare"
            )
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{bank.file_name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the bank from other users
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        log.info("%s: %s (%d bytes)", name, target, len(data))
        done[name] = target
    return done


def _urlopen(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (pinned https or file URL)
            return response.read()
    except OSError as err:  # URLError, HTTPError, timeouts
        raise DownloadError(f"{url}: download failed ({err}); check the connection and retry") from err
