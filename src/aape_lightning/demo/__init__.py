"""The offline demo world: procedural scenes, a small CLIP pretrained on them, CoOp-layout datasets.

Names are imported on first use, so ``aape demo --help`` starts without torch.
"""

from importlib import import_module

_WHERE = {
    "demo_main": "cli",
    **dict.fromkeys(["CAPTIONS_NAME", "DEMO_DATASETS", "DEMO_IMAGE_SIZE", "DEMO_TEMPLATES", "DemoDataset",
                     "ensure_demo_captions", "ensure_demo_dataset", "prompt_bank"], "datasets"),
    **dict.fromkeys(["DEMO_CLIP_CONFIG", "build_demo_clip"], "pretrain"),
    **dict.fromkeys(["probe_checkpoint", "probe_world"], "probe"),
    **dict.fromkeys(["DemoCaptionReader", "DemoReader", "DemoVQAReader"], "readers"),
    **dict.fromkeys(["CONCEPTS", "DOMAINS", "WORLD_VERSION", "Scene", "Spec", "caption", "captions", "questions",
                     "render", "sample_scene"], "world"),
}

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
    "DemoCaptionReader",
    "DemoReader",
    "DemoVQAReader",
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


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
