"""Shared fixtures: a tiny CLIP and a tiny CoOp-layout dataset, built by the project, offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aape_lightning.backbones import build_tiny_clip
from tiny_world import make_coop_dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    """GPU tests are skipped, visibly, where there is no CUDA device."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny.pt", seed=0)


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """A random GPT-2 (1 layer, width 32) with the demo world's word tokenizer, in the build-lm format."""
    from aape_lightning.demo.lm_pretrain import build_demo_lm

    return build_demo_lm(tmp_path_factory.mktemp("lm") / "tiny_lm.pt", scenes=100, steps=0, n_layer=1, n_embd=32, n_head=2)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_coop_dataset(tmp_path_factory.mktemp("data") / "Tiny")


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch) -> Path:
    """Every test gets its own cache dir: nothing leaks between tests or into ~/.cache."""
    monkeypatch.setenv("AAPE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
