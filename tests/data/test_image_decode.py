"""Every mode Pillow opens reaches the model as the picture a viewer shows (issue 23, item 1)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aape_lightning.data.image_dataset import ImageDataset
from aape_lightning.data.image_decode import BACKGROUND, open_rgb, to_rgb
from aape_lightning.data.image_record import UnlabelledImage
from aape_lightning.data.transforms import clip_transform

RAMP16 = np.linspace(0, 65535, 64).round().astype(np.uint16).reshape(8, 8)  # (8, 8) 0..65535


def _grey(path: Path) -> np.ndarray:
    rgb = np.asarray(open_rgb(path))  # (H, W, 3)
    assert rgb.dtype == np.uint8 and rgb.ndim == 3
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    return rgb[..., 0].astype(int)


@pytest.mark.parametrize("mode,suffix", [("I;16", ".png"), ("I;16", ".tif"), ("I;16B", ".tif"), ("I", ".tif")])
def test_sixteen_bit_grey_scales_to_eight_bits_not_clipped(tmp_path, mode, suffix):
    im = Image.fromarray(RAMP16.astype(np.int32), "I").convert(mode) if mode != "I;16" else Image.fromarray(RAMP16)
    path = tmp_path / f"ramp{suffix}"
    im.save(path)
    assert Image.open(path).mode.startswith("I")
    expected = np.round(RAMP16 / 257).astype(int)
    assert np.abs(_grey(path) - expected).max() <= 1  # a gradient, not almost all white


def test_float_grey_reads_zero_to_one_as_black_to_white(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray((RAMP16 / 65535).astype(np.float32), "F").save(path)
    assert Image.open(path).mode == "F"
    assert np.abs(_grey(path) - np.round(RAMP16 / 257)).max() <= 1


def test_cmyk_reads_as_its_colour(tmp_path):
    path = tmp_path / "red.tif"
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(path)
    assert tuple(np.asarray(open_rgb(path))[0, 0]) == (255, 0, 0)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pixels_are_composited_on_the_documented_background(tmp_path, mode):
    """Half of the picture is transparent black: it shows the background, not black."""
    rgba = np.zeros((4, 8, 4), np.uint8)  # (H, W, RGBA) black
    rgba[:, :4, 3] = 255  # left half opaque, right half fully transparent
    im = Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        im = im.convert("LA")
    elif mode == "P":
        im = Image.new("P", (8, 4), 0)
        im.putpalette([0, 0, 0, 10, 20, 30])
        im.paste(1, (4, 0, 8, 4))
        im.info["transparency"] = 1
    path = tmp_path / f"alpha-{mode}.png"
    im.save(path, transparency=1) if mode == "P" else im.save(path)
    rgb = np.asarray(open_rgb(path))  # (4, 8, 3)
    assert (rgb[:, :4] == 0).all()
    assert (rgb[:, 4:] == BACKGROUND).all()


@pytest.mark.parametrize("mode", ["RGBa", "La", "PA"])
def test_premultiplied_and_palette_alpha_modes_show_the_background(mode):
    """Modes Pillow makes in memory (never saved as such): fully transparent shows the background."""
    assert to_rgb(Image.new(mode, (2, 2))).getpixel((0, 0)) == BACKGROUND


def test_half_transparent_pixels_blend_with_the_background(tmp_path):
    path = tmp_path / "half.png"
    Image.new("RGBA", (2, 2), (0, 0, 0, 128)).save(path)
    assert np.abs(np.asarray(open_rgb(path)).astype(int) - 127).max() <= 1


def test_bilevel_reads_as_black_and_white(tmp_path):
    path = tmp_path / "one.png"
    im = Image.new("1", (4, 2), 0)
    im.paste(1, (2, 0, 4, 2))
    im.save(path)
    assert _grey(path).tolist() == [[0, 0, 255, 255]] * 2


def _sideways_photo(path: Path) -> None:
    """A 4x2 picture stored left red / right blue, with EXIF orientation 6 (a viewer turns it 90 degrees clockwise)."""
    im = Image.new("RGB", (4, 2), (255, 0, 0))
    im.paste((0, 0, 255), (2, 0, 4, 2))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(path, exif=exif)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "phone.png"
    _sideways_photo(path)
    rgb = open_rgb(path)
    assert rgb.size == (2, 4)  # upright: 2 wide, 4 tall
    pixels = np.asarray(rgb)  # (4, 2, 3)
    assert (pixels[:2] == (255, 0, 0)).all() and (pixels[2:] == (0, 0, 255)).all()  # the stored left is now the top


def test_a_pil_image_given_to_the_transform_is_decoded_by_the_same_rules(tmp_path):
    """Code that hands an opened image straight to the CLIP transform gets the same pixels as the dataset."""
    path = tmp_path / "ramp.png"
    Image.fromarray(RAMP16).save(path)
    transform = clip_transform(8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    with Image.open(path) as im:
        direct = transform(im)
    assert torch.equal(direct, transform(open_rgb(path)))
    assert to_rgb(open_rgb(path)).mode == "RGB"


def test_dataset_feeds_the_model_the_decoded_picture(tmp_path):
    """Train, test and predict all read through ``ImageDataset``: a 16-bit ramp and a sideways photo arrive as shown."""
    ramp, photo = tmp_path / "ramp.png", tmp_path / "phone.png"
    Image.fromarray(RAMP16).save(ramp)
    _sideways_photo(photo)
    identity = clip_transform(8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    items = [UnlabelledImage(str(ramp)), UnlabelledImage(str(photo))]
    data = ImageDataset(items, lambda im: torch.from_numpy(np.asarray(im).copy()))  # no resizing: raw pixels
    assert np.abs(data[0]["image"][..., 0].numpy().astype(int) - np.round(RAMP16 / 257)).max() <= 1
    assert tuple(data[1]["image"].shape) == (4, 2, 3)
    assert ImageDataset(items, identity)[0]["image"].mean() == pytest.approx(0.5, abs=0.05)


def test_nothing_in_the_package_opens_an_image_but_the_decoder():
    """explain, the VQA context examples, the demo probe and ``aape data check`` decode through ``open_rgb`` too."""
    src = Path(__file__).resolve().parents[2] / "src" / "aape_lightning"
    opened = [
        f"{p.relative_to(src)}:{i}"
        for p in src.rglob("*.py")
        if p.name != "image_decode.py"
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"Image\.open\(|\.convert\(\"RGB\"\)", line)
    ]
    assert opened == []
