"""Decoding an image file into the 8-bit RGB picture a viewer shows; every image the package reads comes through here.

``convert("RGB")`` alone is wrong for several modes Pillow opens: it clips 16-bit grey (0..65535)
at 255, so a gradient reads as almost all white; it drops alpha onto black, so a transparent
logo turns into a black square; and it ignores the EXIF orientation a phone writes instead of
rotating its pixels. The rules, by mode (after applying the EXIF orientation):

- ``I;16`` / ``I;16L`` / ``I;16B`` / ``I;16N`` (16-bit grey) and ``I`` (32-bit integer grey, what
  Pillow gives for many 16-bit files): 0..65535 scaled to 0..255; values outside are clipped.
- ``F`` (32-bit float grey): 0.0..1.0 scaled to 0..255 (the float-image convention); clipped.
- ``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La`` and palette (``P``) or ``L`` / ``RGB`` images with a
  transparency colour: composited over :data:`BACKGROUND` (white, as a browser page shows them).
- ``1`` (bilevel), ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: Pillow's conversion.

Multi-frame files (GIF, TIFF) give their first frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

PIXEL_PIPELINE = "rgb-v1:exif-transpose,16bit/257,float*255,alpha-over-white"
"""Names this decoder's rules; anything that stores pixels or features computed from them keys on it."""

BACKGROUND = (255, 255, 255)
"""What transparent pixels are composited over (white)."""

_ORIENTATION = 0x0112  # the EXIF tag; 1 is upright
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
_WITH_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` upright, as 8-bit RGB, by the rules above; an upright RGB image is returned as is."""
    if image.getexif().get(_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _SIXTEEN_BIT or mode == "F":
        scale = 1 / 257 if mode in _SIXTEEN_BIT else 255.0
        values = np.asarray(image, dtype=np.float64) * scale  # (H, W)
        grey = np.clip(np.nan_to_num(values), 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode in _WITH_ALPHA or "transparency" in image.info:
        rgba = (image.convert("LA") if mode == "La" else image).convert("RGBA")  # Pillow has no La -> RGBA
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def open_rgb(path: str | Path, draft: tuple[int, int] | None = None) -> Image.Image:
    """The file at ``path`` decoded (the file is closed on return); raises OSError / ValueError if unreadable.

    ``draft``: a JPEG may decode at a reduced size no smaller than this (fast; for checking files).
    """
    with Image.open(path) as image:
        if draft is not None:
            image.draft("RGB", draft)
        image.load()
        rgb = to_rgb(image)
        return rgb.copy() if rgb is image else rgb  # closing the file frees ``image``'s pixels
