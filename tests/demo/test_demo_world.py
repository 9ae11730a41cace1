"""The procedural world is a pure function of its seed: same seed, same pixels and words."""

from __future__ import annotations

import random

import numpy as np
import pytest

from aape_lightning.demo.world import (
    CONCEPTS,
    DOMAINS,
    Spec,
    captions,
    concepts_of,
    family,
    family_attributes,
    gloss,
    questions,
    render,
    sample_scene,
)


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
        other = "pink" if spec.colour != "pink" else "gray"
        scene = sample_scene(rng, domain=spec.domain or "photo", main=spec, avoid=[Spec(colour=other), *others])
        assert spec.matches(scene.groups[0], scene.domain) and concept in concepts_of(scene)
        assert scene.groups[0].colour != other
        clutter = scene.groups[1:]
        assert not any(s.matches(g, scene.domain) for g in clutter for s in [*others, spec] if s.domain is None)


def test_image_captions_never_name_concepts_by_default() -> None:
    rng = random.Random(0)
    scene = sample_scene(rng, domain="photo", main=CONCEPTS["stop sign"])
    texts = [t for _ in range(200) for t in captions(scene, rng, 1)]
    assert not any("stop sign" in t for t in texts)
    assert sum("hexagon" in t for t in texts) > 150
    named = [t for _ in range(50) for t in captions(scene, rng, 1, concept_rate=1.0)]
    assert all("stop sign" in t for t in named)  # the knob still works


@pytest.mark.parametrize("concept", sorted(CONCEPTS))
def test_glossary_says_the_kind_always_and_which_one_seldom(concept: str) -> None:
    rng = random.Random(0)
    spec = CONCEPTS[concept]
    assert {"shape"} <= family_attributes(concept) and "colour" not in family_attributes(concept)
    pairs = [gloss(concept, rng) for _ in range(200)]
    assert all(concept in name and concept not in look for name, look in pairs)
    assert all(spec.shape in look for _, look in pairs)  # the family's look is always said
    definitions = [look for name, look in pairs if len(name.split()) > 6]
    named_only = [look for name, look in pairs if len(name.split()) <= 6]
    assert all(spec.colour in look for look in definitions)  # a definition says the whole look
    assert 0 < sum(spec.colour in look for look in named_only) < 0.4 * len(named_only)  # keep=0.2
    assert 60 < len(definitions) < 140  # define=0.5


def test_families_share_a_look_and_differ_by_colour() -> None:
    by_family: dict[str, list[str]] = {}
    for name in CONCEPTS:
        by_family.setdefault(family(name), []).append(name)
    assert all(len(members) >= 2 for members in by_family.values())  # no concept without a sibling
    for members in by_family.values():
        assert len({CONCEPTS[m].colour for m in members}) == len(members)
