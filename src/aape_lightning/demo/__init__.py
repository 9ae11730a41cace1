"""The offline demo world: procedural scenes, a small CLIP pretrained on them, CoOp-layout datasets."""

from aape_lightning.demo.cli import demo_main
from aape_lightning.demo.datasets import (
    CAPTIONS_NAME,
    DEMO_DATASETS,
    DEMO_IMAGE_SIZE,
    DEMO_TEMPLATES,
    DemoDataset,
    ensure_demo_captions,
    ensure_demo_dataset,
    prompt_bank,
)
from aape_lightning.demo.pretrain import DEMO_CLIP_CONFIG, build_demo_clip
from aape_lightning.demo.probe import probe_checkpoint, probe_world
from aape_lightning.demo.reader import DemoReader
from aape_lightning.demo.world import (
    CONCEPTS,
    DOMAINS,
    WORLD_VERSION,
    Scene,
    Spec,
    caption,
    captions,
    questions,
    render,
    sample_scene,
)

__all__ = [
    "CAPTIONS_NAME",
    "CONCEPTS",
    "DEMO_CLIP_CONFIG",
    "DEMO_DATASETS",
    "DEMO_IMAGE_SIZE",
    "DEMO_TEMPLATES",
    "DOMAINS",
    "WORLD_VERSION",
    "DemoDataset",
    "DemoReader",
    "Scene",
    "Spec",
    "build_demo_clip",
    "caption",
    "captions",
    "demo_main",
    "ensure_demo_captions",
    "ensure_demo_dataset",
    "probe_checkpoint",
    "probe_world",
    "prompt_bank",
    "questions",
    "render",
    "sample_scene",
]
