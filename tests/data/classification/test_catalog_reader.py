"""Every catalogued dataset reads from a tiny fake tree in CoOp's exact layout (fake_catalog.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fake_catalog import IMAGENET, build, build_aircraft

from aape_lightning.data.classification.catalog import CATALOG, catalog_entry
from aape_lightning.data.classification.catalog_reader import CatalogReader
from aape_lightning.errors import DataError

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "datasets"


@pytest.mark.parametrize("name", list(CATALOG))
def test_reader_reads_coop_layout(name, tmp_path):
    tree = build(name, tmp_path)
    reader = CatalogReader(name, root=str(tmp_path))
    splits = reader.read()
    assert splits.classnames == tree.classnames
    assert (len(splits.train), len(splits.val), len(splits.test)) == tree.sizes
    everything = splits.train + splits.val + splits.test
    assert sorted({it.label for it in splits.test}) == list(range(len(tree.classnames)))
    assert all(splits.classnames[it.label] == it.classname for it in everything)
    assert all(Path(it.path).is_absolute() and Path(it.path).is_file() for it in everything)
    assert splits.template == CATALOG[name].template and "{}" in splits.template
    assert reader.spec.evaluation_only == (tree.sizes[:2] == (0, 0))
    assert reader.name == name and reader.root == tmp_path / CATALOG[name].folder


def test_imagenet_subsets_map_to_imagenet_indices(tmp_path):
    build("ImageNetA", tmp_path)
    build("ImageNetR", tmp_path)
    a, r = CatalogReader("ImageNetA", root=str(tmp_path)), CatalogReader("ImageNetR", root=str(tmp_path))
    assert a.read().classnames == ["goldfish", "great white shark"] and a.imagenet_indices == [1, 2]
    assert r.read().classnames == ["tench", "great white shark"] and r.imagenet_indices == [0, 2]
    assert CatalogReader("Caltech101").imagenet_indices is None


def test_imagenet_variants_need_classnames(tmp_path):
    build("ImageNetA", tmp_path)
    (tmp_path / "imagenet" / "classnames.txt").rename(tmp_path / "names.txt")
    with pytest.raises(DataError, match=r"ImageNetA needs ImageNet's class names: no classnames.txt.*imagenet_root"):
        CatalogReader("ImageNetA", root=str(tmp_path)).read()
    splits = CatalogReader("ImageNetA", root=str(tmp_path), imagenet_root=str(tmp_path / "names.txt")).read()
    assert splits.classnames == ["goldfish", "great white shark"]


def test_flat_imagenet_val_says_how_to_fix(tmp_path):
    build("ImageNet", tmp_path)
    val = tmp_path / "imagenet" / "images" / "val"
    for image in list(val.rglob("*.JPEG")):
        image.rename(val / image.name)
    for wnid, _ in IMAGENET:
        (val / wnid).rmdir()
    with pytest.raises(DataError, match="holds 6 images directly: sort them into one folder per class"):
        CatalogReader("ImageNet", root=str(tmp_path)).read()


def test_aircraft_unrenamed_data_folder(tmp_path):
    tree = build_aircraft(tmp_path / "fgvc_aircraft" / "data", split=False)
    splits = CatalogReader("FGVCAircraft", root=str(tmp_path)).read()
    assert splits.classnames == tree.classnames and len(splits.train) == 9


def test_missing_folder_names_dataset_path_and_fix(tmp_path):
    with pytest.raises(DataError) as err:
        CatalogReader("DescribableTextures", root=str(tmp_path)).read()
    message = str(err.value)
    assert message.startswith("DescribableTextures: no dataset folder at " + str(tmp_path / "dtd"))
    assert f"aape data prepare DescribableTextures --root {tmp_path}" in message


def test_unknown_name_lists_known_ones():
    with pytest.raises(DataError, match=r"unknown dataset 'Flowers999'; known: ImageNet, Caltech101, .*ImageNetR"):
        catalog_entry("Flowers999")


@pytest.mark.parametrize(
    "alias, name",
    [("dtd", "DescribableTextures"), ("Flowers102", "OxfordFlowers"), ("imagenet-a", "ImageNetA"),
     ("food-101", "Food101"), ("OXFORD_PETS", "OxfordPets"), ("imagenet-sketch", "ImageNetSketch")],
)
def test_folder_names_and_aliases(alias, name):
    assert catalog_entry(alias).name == name


def test_split_class_names_disagreeing_with_folders(tmp_path):
    build("DescribableTextures", tmp_path)
    path = tmp_path / "dtd" / "split_zhou_DescribableTextures.json"
    split = json.loads(path.read_text())
    for part in split.values():
        for entry in part:
            if entry[1] == 1:
                entry[2] = "striped"
    path.write_text(json.dumps(split))
    with pytest.raises(DataError, match=r"label 1 is 'striped' in the split but its images are in the folder of "
                                        r"'blotchy' \(blotchy/blotchy_\d\.jpg\)"):
        CatalogReader("DescribableTextures", root=str(tmp_path)).read()


def test_overrides_template_prompts_folder_image_dir(tmp_path):
    build("EuroSAT", tmp_path)
    (tmp_path / "eurosat").rename(tmp_path / "EuroSAT_rgb")
    (tmp_path / "EuroSAT_rgb" / "2750").rename(tmp_path / "EuroSAT_rgb" / "tiles")
    (tmp_path / "EuroSAT_rgb" / "bank.json").write_text("{}")
    splits = CatalogReader(
        "EuroSAT", root=str(tmp_path), folder="EuroSAT_rgb", image_dir="tiles", template="{} from space.",
        prompts="bank.json",
    ).read()
    assert splits.template == "{} from space." and splits.prompts == str(tmp_path / "EuroSAT_rgb" / "bank.json")
    assert len(splits.train) == 15


def test_every_dataset_has_a_config():
    """``configs/datasets/*.yaml`` select CatalogReader by catalog name; one file per dataset."""
    names = []
    for path in sorted(CONFIGS.glob("*.yaml")):
        reader = yaml.safe_load(path.read_text())["data"]["init_args"]["reader"]
        assert reader["class_path"] == "CatalogReader", path
        names.append(reader["init_args"]["name"])
        CatalogReader(**reader["init_args"])  # the init args are valid
    assert sorted(names) == sorted(CATALOG)


def test_datamodule_reads_catalogued_datasets(tmp_path, cache_dir):
    """The DataModule samples few-shot splits from a catalogued dataset, and evaluates on a test-only one."""
    from aape_lightning.data.classification.datamodule import ClassificationDataModule

    build("DescribableTextures", tmp_path)
    build("ImageNetA", tmp_path)
    dm = ClassificationDataModule(CatalogReader("DescribableTextures", root=str(tmp_path)), shots=2, protocol="all")
    dm.setup("fit")  # the fake DTD has 3 classes: too few for base-to-new (one new class)
    assert dm.class_sets == {"all": ["banded", "blotchy", "zigzagged"]}
    assert len(dm.datasets["train"]["all"]) == 6 and dm.template == "{} texture."
    assert dm.few_shot_record.is_relative_to(cache_dir) and not (tmp_path / "dtd" / "split_fewshot").exists()
    cross = ClassificationDataModule(CatalogReader("ImageNetA", root=str(tmp_path)), protocol="cross")
    cross.setup("test")
    assert cross.class_sets == {"cross:ImageNetA": ["goldfish", "great white shark"]}
    assert len(cross.datasets["test"]["cross:ImageNetA"]) == 4
