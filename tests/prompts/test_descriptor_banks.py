"""Descriptor-style banks (classify_by_description's ``descriptors_*.json``): formats, shared lists, mappings.

The fixtures use the real files' key styles and a few of their real phrases
(github.com/sachit-menon/classify_by_description_release, descriptors/).
"""

from __future__ import annotations

import json
import logging

import pytest

from aape_lightning.data import ClassificationDataModule
from aape_lightning.errors import PromptBankError
from aape_lightning.prompts import sentence_encoder
from aape_lightning.prompts.formats import prompt_formatter
from aape_lightning.prompts.mapping import shipped_mapping_path
from aape_lightning.prompts.matching import match_prompts
from aape_lightning.prompts.resolve import match_prompt_file, resolve_prompts


@pytest.fixture()
def no_encoder(monkeypatch):
    def refuse(model):
        raise AssertionError("the sentence encoder was loaded although nothing needed it")

    monkeypatch.setattr(sentence_encoder, "_load_encoder", refuse)


def write_bank(tmp_path, bank):
    path = tmp_path / "descriptors.json"
    path.write_text(json.dumps(bank))
    return path


# classify_by_description's default loading (load.py hparams: category_name_inclusion "prepend",
# between_text ", ", no before/after text, apply_descriptor_modification True), per descriptor:
# starts with "a" -> "which is d"; with has/often/typically/may/can -> "which d"; with "used" ->
# "which is d"; else "which has d". The class name is prepended with underscores as spaces.
CLASSIFY_BY_DESCRIPTION = {
    "long, thin legs": "great egret, which has long, thin legs",
    "a long neck": "great egret, which is a long neck",
    "antlers": "great egret, which is antlers",  # a string prefix test, not a word test
    "has a yellow bill": "great egret, which has a yellow bill",
    "often found near water": "great egret, which often found near water",
    "typically white": "great egret, which typically white",
    "may wade in shallow water": "great egret, which may wade in shallow water",
    "can fly": "great egret, which can fly",
    "used for fishing": "great egret, which is used for fishing",
    "white feathers": "great egret, which has white feathers",
}


def test_classify_by_description_format_is_that_papers_loading(no_encoder):
    descriptors = list(CLASSIFY_BY_DESCRIPTION)
    assert prompt_formatter("classify_by_description")(descriptors, "great_egret") == list(
        CLASSIFY_BY_DESCRIPTION.values()
    )
    assert prompt_formatter("as-written")(descriptors, "great egret") == descriptors
    assert prompt_formatter("{class}, which has {descriptor}.")(["white feathers"], "great egret") == [
        "great egret, which has white feathers."
    ]
    assert prompt_formatter("a photo of something with {descriptor}")(["wings"], "x") == [
        "a photo of something with wings"
    ]


@pytest.mark.parametrize("bad", ["{class} is nice", "{clas}: {descriptor}", "{descriptor", "as written"])
def test_a_bad_prompt_format_is_one_clear_error_at_construction(bad):
    with pytest.raises(PromptBankError, match=r"data\.prompt_format="):
        ClassificationDataModule(prompt_format=bad)


def test_format_applies_to_each_class_with_the_datasets_name(tmp_path, no_encoder):
    bank = write_bank(tmp_path, {"eft": ["a small, brightly colored salamander"], "tench": ["a freshwater fish"]})
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"newt": "eft"}))
    out = resolve_prompts(bank, ["newt", "tench"], mapping_path=mapping, prompt_format="classify_by_description")
    assert out == [["newt, which is a small, brightly colored salamander"], ["tench, which is a freshwater fish"]]


def test_report_lists_identical_and_mostly_shared_lists_and_warns(tmp_path, caplog, no_encoder):
    legs, tail, fur = "long, thin legs", "a long tail", "brown fur"
    bank = {
        "guenon": [legs, tail, fur], "macaque": [fur, tail, legs],  # identical lists (ImageNet's have such)
        "baboon": [legs, tail, "a dog-like snout"],  # shares 2 of 3 with both
        "tench": ["a freshwater fish", "olive-green skin"],
    }  # fmt: skip
    report_path = tmp_path / "report.json"
    with caplog.at_level(logging.INFO):
        match_prompt_file(write_bank(tmp_path, bank), list(bank), report_path=report_path)
    report = json.loads(report_path.read_text())
    assert report["identical_prompt_lists"] == [{"classes": [0, 1], "names": ["guenon", "macaque"]}]
    pairs = {tuple(p["names"]): (p["shared"], p["shorter_list"]) for p in report["mostly_shared_prompt_lists"]}
    assert pairs == {("guenon", "baboon"): (2, 3), ("macaque", "baboon"): (2, 3)}
    assert report["prompts_naming_class"] == {"named": 0, "prompts": 11}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("only 0 of 11 prompts (0%) name their class" in w and "data.prompt_format" in w for w in warnings)
    assert any("2 classes in 1 groups have identical prompt lists ('guenon' = 'macaque')" in w for w in warnings)


def test_sentences_that_name_their_class_do_not_warn(tmp_path, caplog, no_encoder):
    bank = {"tench": ["A tench is a freshwater fish.", "It is olive green."], "goldfish": ["A goldfish is orange."]}
    with caplog.at_level(logging.INFO):
        result = match_prompt_file(write_bank(tmp_path, bank), list(bank))
    assert result.report["prompts_naming_class"] == {"named": 2, "prompts": 3}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    descriptors = {"tench": ["olive-green skin"], "goldfish": ["orange scales"]}
    with caplog.at_level(logging.INFO):
        formatted = match_prompt_file(write_bank(tmp_path, descriptors), list(descriptors),
                                      prompt_format="classify_by_description")  # fmt: skip
    assert formatted.report["prompts_naming_class"] == {"named": 2, "prompts": 2}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ImageNet as CoOp names it (classnames.txt, copied from CLIP's notebook) against the descriptor
# file's keys (its openai_imagenet_classes): index 27 "newt" is "eft", 638 "tights" is "maillot";
# CLIP's list names 657 and 744 "missile", 836 and 837 "sunglasses", the file 744 "projectile"
# and 836 "sunglass". EuroSAT: CoOp's renamed folders against the file's keys.
IMAGENET_DIFFERENCES = {27: ("newt", "eft"), 638: ("tights", "maillot"), 657: ("missile", "missile"),
                        744: ("missile", "projectile"), 836: ("sunglasses", "sunglass"),
                        837: ("sunglasses", "sunglasses")}  # fmt: skip
EUROSAT = {"Annual Crop Land": "annual crop land", "Forest": "forest",
           "Herbaceous Vegetation Land": "brushland or shrubland", "Highway or Road": "highway or road",
           "Industrial Buildings": "industrial buildings or commercial buildings", "Pasture Land": "pasture land",
           "Permanent Crop Land": "permanent crop land",
           "Residential Buildings": "residential buildings or homes or apartments", "River": "river",
           "Sea or Lake": "lake or sea"}  # fmt: skip


@pytest.mark.parametrize("dataset", ["ImageNet", "ImageNetV2"])
def test_shipped_mapping_pairs_imagenets_names_with_the_descriptor_files(tmp_path, dataset, no_encoder):
    names = [f"class {i}" for i in range(1000)]
    keys = list(names)
    for i, (name, key) in IMAGENET_DIFFERENCES.items():
        names[i], keys[i] = name, key
    bank = write_bank(tmp_path, {key: [f"descriptor of {key}"] for key in keys})
    result = match_prompt_file(bank, names, dataset=dataset)
    assert result.select() == [[f"descriptor of {key}"] for key in keys]  # each class its own entry
    assert result.report["unused_bank_keys"] == [] and result.report["shared_bank_keys"] == []
    assert result.report["shipped_mapping"].endswith("descriptors_ImageNet.json")


def test_shipped_mapping_pairs_eurosats_names_and_cupls_still_wins_for_cupl_keys(tmp_path, no_encoder):
    bank = write_bank(tmp_path, {key: [f"descriptor of {key}"] for key in EUROSAT.values()})
    assert resolve_prompts(bank, list(EUROSAT), dataset="EuroSAT") == [[f"descriptor of {k}"] for k in EUROSAT.values()]
    cupl = write_bank(tmp_path, {"off-center face": ["A face."], "side of a car": ["A car."]})
    assert shipped_mapping_path("Caltech101", json.loads(cupl.read_text())).name == "cupl_Caltech101.json"


def test_suggestions_find_a_synonym_by_its_description(tmp_path):
    """Without a mapping, "newt" and "tights" are unmatched; the right keys are the top suggestions."""
    bank = {
        "eft": ["a small, brightly colored salamander", "typically orange or red with black spots",
                "smooth, moist skin"],
        "maillot": ["one-piece swimsuit", "usually brightly colored", "straps that go over the shoulder"],
        "projectile": ["an object in motion", "a round or aerodynamic shape", "a pointed end"],
        "sunglass": ["eyewear", "dark lens", "plastic or metal frame"],
        "tench": ["a freshwater fish"],
    }  # fmt: skip
    result = match_prompts(bank, ["newt", "tights", "tench"])
    rows = result.report["classes"]
    assert result.report["suggestions_by"] == "sentence-transformers cosine"
    assert rows[0]["suggestions"][0]["key"] == "eft" and rows[1]["suggestions"][0]["key"] == "maillot"
