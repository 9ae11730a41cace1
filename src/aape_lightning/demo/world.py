"""A procedural image world with words for everything in it, so a small CLIP can be pretrained offline.

A scene is a domain (how the picture is made: photo, textured, sketch, satellite) and
groups of identical objects (shape, colour, pattern, size, how many, where). Every
function is deterministic for the ``random.Random`` / seed it is given and never
touches global random state, so datasets and checkpoints can be rebuilt bit for bit.

Composite concepts (``CONCEPTS``: "stop sign" is a plain red hexagon) exist in the
world, but image captions do not name them (``concept_rate``, default 0): a CLIP pretrained
here learns the attributes from images and the concept names only from text, the
``glossary`` sentences that link a name to a partial description of what it looks like
(as web text links "altar" to "a raised table in a church"). So the CLIP knows the names
by description but hardly by sight, which is the gap prompt sentences describing the
attributes (CuPL, AAPE) can close. Concepts come in families that share a name word
("stop sign", "warning sign", "yield sign") and differ only by attributes the name does
not say, as fine-grained classes do.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

WORLD_VERSION = "demo-world-2"

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross", "diamond", "ring")
PLURALS = {"cross": "crosses"}
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 30),
    "green": (40, 165, 55),
    "blue": (35, 75, 215),
    "purple": (135, 50, 185),
    "pink": (245, 125, 185),
    "gray": (125, 125, 125),
}
PATTERNS = ("plain", "striped", "dotted")
SIZES: dict[str, float] = {"small": 0.10, "medium": 0.16, "large": 0.25}  # radius / image side
DOMAINS = ("photo", "textured", "sketch", "satellite")
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "center", "right")

CONCEPT_RATE = 0.0  # chance that an image caption names a concept its scene shows (the knob; 0: text only)


@dataclass(frozen=True)
class Spec:
    """A constraint on a scene's main group; ``None`` leaves an attribute free."""

    shape: str | None = None
    colour: str | None = None
    pattern: str | None = None
    size: str | None = None
    domain: str | None = None
    count: tuple[int, int] | None = None  # inclusive range

    def matches(self, group: Group, domain: str) -> bool:
        return (
            (self.shape is None or self.shape == group.shape)
            and (self.colour is None or self.colour == group.colour)
            and (self.pattern is None or self.pattern == group.pattern)
            and (self.size is None or self.size == group.size)
            and (self.domain is None or self.domain == domain)
            and (self.count is None or self.count[0] <= len(group.items) <= self.count[1])
        )


_AREA = dict(domain="satellite", count=(3, 9))
CONCEPTS: dict[str, Spec] = {
    # families share their last name word and the look it stands for; members differ by colour,
    # which the glossary seldom says (fine-grained classes: the name tells the kind, not which one)
    "stop sign": Spec("hexagon", "red", "plain"),
    "exit sign": Spec("hexagon", "green", "plain"),
    "detour sign": Spec("hexagon", "orange", "plain"),
    "info sign": Spec("hexagon", "blue", "plain"),
    "tiger moth": Spec("diamond", "orange", "striped"),
    "luna moth": Spec("diamond", "yellow", "striped"),
    "atlas moth": Spec("diamond", "red", "striped"),
    "emperor moth": Spec("diamond", "purple", "striped"),
    "pine forest": Spec("circle", "green", "dotted", **_AREA),
    "birch forest": Spec("circle", "yellow", "dotted", **_AREA),
    "residential area": Spec("square", "red", "plain", **_AREA),
    "industrial area": Spec("square", "gray", "plain", **_AREA),
    "wheat field": Spec("square", "yellow", "striped", **_AREA),
    "rice field": Spec("square", "green", "striped", **_AREA),
}


def family(name: str) -> str:
    """A concept's family: its last name word ("stop sign" -> "sign")."""
    return name.split()[-1]


def family_attributes(name: str) -> frozenset[str]:
    """The attributes every member of ``name``'s family shares (what the family word stands for)."""
    members = [CONCEPTS[n] for n in CONCEPTS if family(n) == family(name)]
    fields = ("shape", "colour", "pattern", "size")
    return frozenset(f for f in fields if len({getattr(m, f) for m in members}) == 1 and getattr(members[0], f))


@dataclass(frozen=True)
class Item:
    """One drawn object: centre and radius as fractions of the image side, angle in radians."""

    x: float
    y: float
    r: float
    angle: float


@dataclass(frozen=True)
class Group:
    """Identical objects that a caption names together ("two small red circles")."""

    shape: str
    colour: str
    pattern: str
    size: str
    items: tuple[Item, ...]
    rgb: tuple[int, int, int]  # the colour, jittered per group


@dataclass(frozen=True)
class Scene:
    """What an image shows; ``groups[0]`` is the main group a class label refers to."""

    domain: str
    groups: tuple[Group, ...]
    seed: int  # drives background texture and pixel noise


# ---------------------------------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------------------------------
def _count_for(rng: random.Random, domain: str, size: str) -> int:
    if domain == "satellite" and size != "large":
        return rng.randint(3, 5)
    return rng.choices((1, 2, 3), weights=(0.6, 0.25, 0.15))[0]


def _attributes(rng: random.Random, domain: str, spec: Spec) -> tuple[str, str, str, str, int]:
    shape = spec.shape or rng.choice(SHAPES)
    colour = spec.colour or rng.choice(tuple(COLOURS))
    pattern = spec.pattern or rng.choice(PATTERNS)
    default_size = "small" if domain == "satellite" else rng.choice(("medium", "medium", "large", "small"))
    size = spec.size or default_size
    count = rng.randint(*spec.count) if spec.count else _count_for(rng, domain, size)
    return shape, colour, pattern, size, count


def _place(rng: random.Random, size: str, count: int, taken: list[Item]) -> tuple[Item, ...]:
    """Non-overlapping positions where possible (rejection sampling, then give up and overlap)."""
    items = []
    for _ in range(count):
        r = SIZES[size] * rng.uniform(0.85, 1.15)
        for _attempt in range(40):
            x, y = rng.uniform(r, 1 - r), rng.uniform(r, 1 - r)
            if all((x - o.x) ** 2 + (y - o.y) ** 2 > (0.9 * (r + o.r)) ** 2 for o in taken):
                break
        item = Item(x, y, r, rng.uniform(-0.35, 0.35))
        taken.append(item)
        items.append(item)
    return tuple(items)


def _jitter(rng: random.Random, colour: str) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c + rng.randint(-18, 18)))) for c in COLOURS[colour])  # type: ignore[return-value]


def sample_scene(
    rng: random.Random,
    domain: str | None = None,
    main: Spec | None = None,
    avoid: Sequence[Spec] = (),
    clutter: tuple[int, int] = (0, 2),
) -> Scene:
    """A random scene whose main group satisfies ``main`` and none of ``avoid``.

    Clutter groups are single small objects of another shape that match no spec in
    ``avoid`` or ``main``, so a class label stays unambiguous.
    """
    domain = domain or rng.choice(DOMAINS)
    main = main or Spec()
    for _ in range(200):
        shape, colour, pattern, size, count = _attributes(rng, domain, main)
        probe = Group(shape, colour, pattern, size, (Item(0.5, 0.5, 0.1, 0.0),) * count, (0, 0, 0))
        if not any(s.matches(probe, domain) for s in avoid):
            break
    else:
        raise ValueError(f"cannot sample a scene matching {main} while avoiding {list(avoid)}")
    taken: list[Item] = []
    groups = [Group(shape, colour, pattern, size, _place(rng, size, count, taken), _jitter(rng, colour))]
    forbidden = [*avoid, main]
    for _ in range(rng.randint(*clutter)):
        c_shape = rng.choice([s for s in SHAPES if s != shape])
        c_colour, c_pattern = rng.choice(tuple(COLOURS)), rng.choice(PATTERNS)
        probe = Group(c_shape, c_colour, c_pattern, "small", (Item(0.5, 0.5, 0.1, 0.0),), (0, 0, 0))
        if any(s.matches(probe, domain) for s in forbidden):
            continue
        items = _place(rng, "small", 1, taken)
        groups.append(Group(c_shape, c_colour, c_pattern, "small", items, _jitter(rng, c_colour)))
    return Scene(domain, tuple(groups), rng.getrandbits(31))


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------
def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a polygonal shape, in pixels."""
    if shape == "square":
        pts = [(math.cos(a), math.sin(a)) for a in (math.pi / 4 + k * math.pi / 2 for k in range(4))]
        pts = [(x * 1.1, y * 1.1) for x, y in pts]  # area close to a circle's
    elif shape == "diamond":
        pts = [(0.75, 0), (0, 1.15), (-0.75, 0), (0, -1.15)]
    elif shape == "triangle":
        pts = [(math.cos(a), math.sin(a)) for a in (-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))]
        pts = [(x * 1.2, y * 1.2 + 0.15) for x, y in pts]
    elif shape == "hexagon":
        pts = [(math.cos(k * math.pi / 3), math.sin(k * math.pi / 3)) for k in range(6)]
    elif shape == "star":
        pts = [
            ((1.15 if k % 2 == 0 else 0.48) * math.cos(-math.pi / 2 + k * math.pi / 5),
             (1.15 if k % 2 == 0 else 0.48) * math.sin(-math.pi / 2 + k * math.pi / 5))
            for k in range(10)
        ]
    elif shape == "cross":
        a, b = 1.0, 0.34
        pts = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b),
               (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)]  # fmt: skip
    else:
        raise ValueError(f"no polygon for shape {shape!r}")
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in pts]


def _box(item: Item, side: int) -> tuple[slice, slice]:
    """The pixel rows and columns an object can touch (drawing only there keeps rendering fast)."""
    lo = lambda c: max(0, int((c - 1.3 * item.r) * side) - 2)  # noqa: E731
    hi = lambda c: min(side, int((c + 1.3 * item.r) * side) + 3)  # noqa: E731
    return slice(lo(item.y), hi(item.y)), slice(lo(item.x), hi(item.x))


def _shape_mask(shape: str, item: Item, side: int, box: tuple[slice, slice], outline: int = 0) -> np.ndarray:
    """Float mask of the shape inside ``box`` (filled, or only its outline of ``outline`` px)."""
    rows, cols = box
    img = Image.new("L", (cols.stop - cols.start, rows.stop - rows.start), 0)
    draw = ImageDraw.Draw(img)
    cx, cy, r = item.x * side - cols.start, item.y * side - rows.start, item.r * side
    fill, width = (None, outline) if outline else (255, 0)
    if shape in ("circle", "ring"):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=255, width=width)
        if shape == "ring":
            ri = 0.5 * r
            hole = 0 if not outline else None
            draw.ellipse((cx - ri, cy - ri, cx + ri, cy + ri), fill=hole, outline=255, width=width)
    else:
        pts = _polygon(shape, cx, cy, r, item.angle)
        draw.polygon(pts, fill=fill, outline=255, width=width or 1)
    return np.asarray(img, dtype=np.float32) / 255.0


def _pattern_mask(pattern: str, item: Item, side: int, box: tuple[slice, slice], angle: float) -> np.ndarray:
    """Where the pattern's second colour goes inside ``box``: stripes or a grid of dots."""
    rows, cols = box
    if pattern == "plain":
        return np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.float32)
    yy, xx = np.mgrid[rows, cols].astype(np.float32)
    period = max(3.0, item.r * side * 0.55)
    u = (xx - item.x * side) * math.cos(angle) + (yy - item.y * side) * math.sin(angle)
    if pattern == "striped":
        return ((u / period) % 1.0 < 0.5).astype(np.float32)
    v = -(xx - item.x * side) * math.sin(angle) + (yy - item.y * side) * math.cos(angle)
    du, dv = (u / period) % 1.0 - 0.5, (v / period) % 1.0 - 0.5
    return ((du**2 + dv**2) < 0.28**2).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, side: int, cells: int) -> np.ndarray:
    """Value noise: a random ``cells x cells`` grid upsampled to ``side``, in [0, 1]."""
    grid = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(grid.resize((side, side), Image.BILINEAR), np.float32) / 255.0


def _background(domain: str, rng: np.random.Generator, side: int) -> np.ndarray:
    """``(side, side, 3)`` float background in [0, 255] for a domain."""
    if domain == "photo":
        a, b = rng.uniform(90, 230, 3), rng.uniform(90, 230, 3)
        t = np.linspace(0, 1, side, dtype=np.float32)[:, None, None]  # (side, 1, 1)
        t = t if rng.random() < 0.5 else t.transpose(1, 0, 2)
        return np.broadcast_to(a + (b - a) * t, (side, side, 3))
    if domain == "textured":
        base = rng.uniform(60, 200, 3)
        tex = _smooth_noise(rng, side, 4) * 0.5 + _smooth_noise(rng, side, 12) * 0.5  # (side, side)
        tint = rng.uniform(-90, 90, 3)
        return base + tint * (tex[..., None] - 0.5) * 2 + rng.normal(0, 12, (side, side, 1))
    if domain == "sketch":
        return np.full((side, side, 3), rng.uniform(225, 250), np.float32) + rng.normal(0, 3, (side, side, 1))
    if domain == "satellite":
        tiles = int(rng.integers(3, 6))
        field = rng.integers(0, 4, (tiles, tiles))
        palette = np.array([[85, 120, 60], [120, 140, 70], [140, 115, 80], [100, 95, 70]], np.float32)
        img = palette[field] + rng.normal(0, 10, (tiles, tiles, 3))  # (tiles, tiles, 3)
        img = Image.fromarray(img.clip(0, 255).astype(np.uint8)).resize((side, side), Image.NEAREST)
        img = np.asarray(img, np.float32)  # (side, side, 3)
        road = (np.arange(side) % (side // tiles) < max(1, side // 48)).astype(np.float32)  # roads between fields
        roads = np.maximum(road[:, None], road[None, :])[..., None]
        return img * (1 - roads) + 150 * roads + rng.normal(0, 8, (side, side, 1))
    raise ValueError(f"unknown domain {domain!r}; known: {DOMAINS}")


def render(scene: Scene, size: int = 48, supersample: int = 2) -> Image.Image:
    """Draw ``scene`` as an RGB image of ``size`` x ``size`` (drawn larger, then box-filtered)."""
    rng = np.random.default_rng(scene.seed)
    side = size * supersample
    canvas = _background(scene.domain, rng, side).astype(np.float32)  # (side, side, 3)
    for group in scene.groups:
        rgb = np.array(group.rgb, np.float32)
        for item in group.items:
            box = _box(item, side)
            pattern = _pattern_mask(group.pattern, item, side, box, float(rng.uniform(0, math.pi)))
            fill = _shape_mask(group.shape, item, side, box)  # (h, w)
            if scene.domain == "sketch":  # coloured-pencil outline, hatching or dots inside, no fill
                ink = np.maximum(_shape_mask(group.shape, item, side, box, outline=2 * supersample), fill * pattern)
                canvas[box] = canvas[box] * (1 - ink[..., None]) + rgb * ink[..., None]
            else:
                colour = rgb * (1 - 0.65 * pattern[..., None])  # (h, w, 3): the pattern in a darker shade
                canvas[box] = canvas[box] * (1 - fill[..., None]) + colour * fill[..., None]
    canvas += rng.normal(0, 5, (side, side, 1)).astype(np.float32)
    canvas = canvas.reshape(size, supersample, size, supersample, 3).mean(axis=(1, 3))  # box filter
    return Image.fromarray(canvas.clip(0, 255).astype(np.uint8), "RGB")


# ---------------------------------------------------------------------------------------------
# language
# ---------------------------------------------------------------------------------------------
DOMAIN_FRAMES: dict[str, tuple[str, ...]] = {
    "photo": ("a photo of {}.", "{} on a plain background.", "an image of {}.", "a picture of {}.", "a photo of {}"),
    "textured": ("{} on a textured background.", "a photo of {} on a noisy background.", "{} over a busy texture."),
    "sketch": ("a sketch of {}.", "a line drawing of {}.", "a hand drawn sketch of {}.", "a pencil drawing of {}."),
    "satellite": (
        "a satellite image of {}.", "an aerial view of {}.", "a satellite photo of {}.", "{} seen from above."
    ),  # fmt: skip
}
PLAIN_FRAMES = ("there is {}.", "this is {}.", "it is {}.", "{}.")  # sentence shapes prompts use too
PATTERN_WITH = {"striped": ("with stripes", "with striped paint"), "dotted": ("with dots", "covered in dots")}


def plural(shape: str) -> str:
    return PLURALS.get(shape, shape + "s")


def position_of(item: Item) -> str:
    """Where an object is, in words ("top left", "center")."""
    row, col = ROWS[min(2, int(item.y * 3))], COLUMNS[min(2, int(item.x * 3))]
    if row == "middle":
        return "center" if col == "center" else col
    return row if col == "center" else f"{row} {col}"


def concepts_of(scene: Scene) -> list[str]:
    """Concept names the main group of ``scene`` is an instance of."""
    return [name for name, spec in CONCEPTS.items() if spec.matches(scene.groups[0], scene.domain)]


def describe_group(group: Group, rng: random.Random, terse: bool = False) -> str:
    """A noun phrase for a group, with attributes dropped or reordered at random."""
    n = len(group.items)
    keep = 0.5 if terse else 1.0
    size = group.size if group.size != "medium" and rng.random() < 0.6 * keep else ""
    colour = group.colour if rng.random() < 0.9 * keep else ""
    pattern = group.pattern if group.pattern != "plain" or rng.random() < 0.2 else ""
    pattern = pattern if rng.random() < 0.85 * keep else ""
    noun = group.shape if n == 1 else plural(group.shape)
    if n == 1:
        det = rng.choice(("a", "a", "one", "a single")) if not size else rng.choice(("a", "one"))
    elif n >= 4:
        det = rng.choice(("many", "several", COUNT_WORDS.get(n, "many")))
    else:
        det = COUNT_WORDS[n]
    if pattern in PATTERN_WITH and rng.random() < 0.35:
        words = [det, size, colour, noun, rng.choice(PATTERN_WITH[pattern])]
    else:
        words = [det, size, colour, pattern, noun]
    phrase = " ".join(w for w in words if w)
    if n == 1 and not terse and rng.random() < 0.35:
        phrase += rng.choice((" in the ", " at the ")) + position_of(group.items[0])
    return with_articles(phrase)


def with_articles(text: str) -> str:
    """"a orange" -> "an orange" (the grammar writes "a" everywhere, then fixes it here)."""
    return re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)


def caption(scene: Scene, rng: random.Random, concept_rate: float = CONCEPT_RATE) -> str:
    """One natural caption: the main group, sometimes the clutter, usually the domain."""
    concepts = concepts_of(scene)
    if concepts and rng.random() < concept_rate:
        main = with_articles("a " + rng.choice(concepts))
    else:
        main = describe_group(scene.groups[0], rng)
    parts = [main]
    for group in scene.groups[1:]:
        if rng.random() < 0.45:
            parts.append(describe_group(group, rng, terse=True))
    phrase = " and ".join(parts)
    draw = rng.random()
    if draw < 0.75:
        return rng.choice(DOMAIN_FRAMES[scene.domain]).format(phrase)
    if draw < 0.92:
        return rng.choice(PLAIN_FRAMES).format(phrase)
    return phrase


def captions(scene: Scene, rng: random.Random, n: int = 5, concept_rate: float = CONCEPT_RATE) -> list[str]:
    """``n`` captions, distinct where the grammar allows (as five annotators would write)."""
    out: list[str] = []
    for _ in range(n * 6):
        text = caption(scene, rng, concept_rate)
        if text not in out:
            out.append(text)
        if len(out) == n:
            break
    while len(out) < n:
        out.append(out[len(out) % len(out)])
    return out


def spec_phrase(spec: Spec, rng: random.Random, keep: float = 1.0, always: frozenset[str] = frozenset()) -> str:
    """A noun phrase for what instances of ``spec`` look like ("many small green dotted circles").

    ``keep``: the chance each constrained attribute (colour, pattern, size, shape) is said, except
    those in ``always``; at least one is always said, and an unsaid shape reads "shapes" / "objects".
    """
    many = spec.count is not None and spec.count[0] > 1 or spec.domain == "satellite" and spec.size != "large"
    pattern = spec.pattern if spec.pattern != "plain" or rng.random() < 0.5 else None
    given = [a for a in ("colour", "pattern", "size", "shape") if (pattern if a == "pattern" else getattr(spec, a))]
    said = {a for a in given if a in always or rng.random() < keep} or ({rng.choice(given)} if given else set())
    count = rng.choice(("many", "several", "a few")) if many else "a"
    size = spec.size if "size" in said else ("small" if many and rng.random() < 0.5 else "")
    colour = spec.colour if "colour" in said else ""
    pattern = pattern if "pattern" in said else ""
    if "shape" in said:
        shape = plural(spec.shape) if many else spec.shape
    else:
        shape = rng.choice(("shapes", "objects")) if many else rng.choice(("shape", "object"))
    return with_articles(" ".join(w for w in (count, size, colour, pattern, shape) if w))


GLOSS_NAMES = ("a {}", "the {}", "{}", "a photo of a {}.", "a picture of a {}.", "this is a {}.")
GLOSS_FRAMES = ("{}", "{}.", "it looks like {}.", "it is {}.", "a photo of {}.", "an image of {}.")
GLOSS_SATELLITE = ("a satellite image of {}.", "an aerial view of {}.", "{} seen from above.")


DEFINITIONS = ("a {name} is {look}.", "{look} is called a {name}.", "a {name}, which is {look}.",
               "a {name} looks like {look}.")  # fmt: skip


def gloss(name: str, rng: random.Random, keep: float = 0.2, define: float = 0.5) -> tuple[str, str]:
    """One text-only pair linking a concept's name to a description of its look.

    The demo CLIP's text tower learns names from these pairs only (never from an image), the way
    web text defines a word: the description always says what the family word stands for ("a
    plain hexagon" for a sign) and each other attribute with chance ``keep``, so the name says what
    kind of thing it is but seldom which one. With chance ``define`` the pair is a definition that
    says the name and the whole look ("a stop sign is a red plain hexagon.") and the whole look
    again: that is how the text tower learns to read such a sentence by the look it states.
    """
    spec = CONCEPTS[name]
    satellite = spec.domain == "satellite"
    if rng.random() < define:  # (definition, the whole look said again)
        named = rng.choice(DEFINITIONS).format(name=name, look=spec_phrase(spec, rng))
        named = named.replace(f"a {name}", name) if satellite else named  # "pine forest", no article
        return with_articles(named), rng.choice(GLOSS_FRAMES).format(spec_phrase(spec, rng))
    described = spec_phrase(spec, rng, keep, family_attributes(name))
    if satellite:
        return rng.choice(GLOSS_SATELLITE + ("{}",)).format(name), rng.choice(GLOSS_SATELLITE).format(described)
    return with_articles(rng.choice(GLOSS_NAMES).format(name)), rng.choice(GLOSS_FRAMES).format(described)


def questions(scene: Scene, rng: random.Random, n: int = 3) -> list[tuple[str, list[str]]]:
    """``n`` question-answer pairs about ``scene`` (answers: the accepted spellings)."""
    shapes = [g.shape for g in scene.groups]
    pool: list[tuple[str, list[str]]] = []
    for g in scene.groups:
        k = len(g.items)
        pool.append((f"How many {plural(g.shape)} are there?", [COUNT_WORDS.get(k, str(k)), str(k)]))
        if shapes.count(g.shape) == 1:
            pool.append((f"What colour is the {g.shape}?", [g.colour]))
            pool.append((f"What pattern does the {g.shape} have?", [g.pattern]))
            if k == 1:
                pool.append((f"Where is the {g.shape}?", [position_of(g.items[0])]))
    main = scene.groups[0]
    pool.append((f"What shape are the {main.colour} objects?" if len(main.items) > 1 else
                 f"What shape is the {main.colour} object?", [main.shape]))
    absent = [s for s in SHAPES if s not in shapes]
    probe = rng.choice(absent + shapes[:1])
    pool.append((f"Is there a {probe}?", ["yes" if probe in shapes else "no"]))
    pool.append(("What kind of image is this?", [scene.domain]))
    rng.shuffle(pool)
    return pool[:n]
