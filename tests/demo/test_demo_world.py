"""The procedural world is a pure function of its seed: same seed, same pixels and words."""

from __future__ import annotations

import random

import numpy as np
import pytest

from aape_lightning.demo.world import CONCEPTS, DOMAINS, Spec, captions, concepts_of, questions, render, sample_scene


def _draw(seed: int, n: int = 6) -> tuple[list[np.ndarray], list[list[str]], list]:
    rng = random.Random(seed)
    scenes = [sample_scene(rng, domain=DOMAINS[i % len(DOMAINS)]) for i in range(n)]
    pixels = [np.asarray(render(s, 32)) for s in scenes]
    return pixels, [captions(s, rng, 4) for s in scenes], [questions(s, rng, 3) for s in scenes]


def test_same_seed_same_world() -> None:
    a, b = _draw(7), _draw(7)
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
    assert a[1] == b[1] and a[2] == b[2]


def test_other_seed_other_world() -> None:
    a, b = _draw(7), _draw(8)
    assert not all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
    assert a[1] != b[1]


def test_render_shape_and_variety() -> None:
    pixels, caps, qa = _draw(0)
    assert pixels[0].shape == (32, 32, 3) and pixels[0].dtype == np.uint8
    assert all(p.std() > 5 for p in pixels)  # not blank
    assert all(len(c) == 4 and all(isinstance(t, str) and t for t in c) for c in caps)
    assert all(len(set(c)) > 1 for c in caps)  # several distinct captions per scene
    assert all(q.endswith("?") and answers for pairs in qa for q, answers in pairs)


@pytest.mark.parametrize("concept", sorted(CONCEPTS))
def test_scenes_honour_specs(concept: str) -> None:
    rng = random.Random(0)
    spec = CONCEPTS[concept]
    others = [s for name, s in CONCEPTS.items() if name != concept]
    for _ in range(5):
        scene = sample_scene(rng, domain=spec.domain or "photo", main=spec, avoid=[Spec(colour="purple")])
        assert spec.matches(scene.groups[0], scene.domain) and concept in concepts_of(scene)
        assert scene.groups[0].colour != "purple"
        clutter = scene.groups[1:]
        assert not any(s.matches(g, scene.domain) for g in clutter for s in [*others, spec] if s.domain is None)


def test_concepts_are_rarely_named() -> None:
    rng = random.Random(0)
    scene = sample_scene(rng, domain="photo", main=CONCEPTS["stop sign"])
    texts = [t for _ in range(200) for t in captions(scene, rng, 1)]
    named = sum("stop sign" in t for t in texts)
    assert 0 < named < 40
    assert sum("hexagon" in t for t in texts) > 150
