"""Prompt tests never write the user's cache: sentence embeddings go to a per-test cache dir."""

import pytest


@pytest.fixture(autouse=True)
def _own_cache_dir(cache_dir):
    return cache_dir
