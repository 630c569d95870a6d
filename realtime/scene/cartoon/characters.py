"""Scene descriptions of the cartoon world: who is on stage, what they look like, where they stand.

`sample_scene` draws a varied, seeded, JSON-able scene for 1-4 characters; `validate_scene` checks a
scene that came from anywhere (a user's JSON file included) and returns a clean copy. The renderer in
realtime.scene.cartoon.render reads only what this schema allows. Coordinates are fractions of the frame width.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from realtime.errors import CharacterCountError, SceneError
from realtime.media import MAX_CHARACTERS, MIN_CHARACTERS
from realtime.scene.cartoon.tracks import check_character_count

SCENE_VERSION = 1

HAIR_STYLES = ("none", "cap", "fringe", "side")
EYE_STYLES = ("dot", "oval", "round")
BROW_STYLES = ("none", "thin", "thick")
HAT_STYLES = ("none", "cap", "top_hat", "beanie")
GLASSES_STYLES = ("none", "round", "square")
EARRING_STYLES = ("none", "stud", "hoop")
NECKWEAR_STYLES = ("none", "bow_tie", "collar")
PATTERNS = ("none", "stripes", "dots", "windows")
SHAPE_KINDS = ("circle", "rect")
MAX_BACKGROUND_SHAPES = 16

# Head widths (fraction of frame width) per cast size: big enough that a fully open mouth is >= ~5.5 px
# tall at 128x128 even for the farthest character, small enough that four of them fit.
_HEAD_SIZE = {1: (0.27, 0.36), 2: (0.21, 0.28), 3: (0.18, 0.24), 4: (0.17, 0.21)}
# Frame widths between neighbouring head boxes in `in_a_row`: ears and hat brims reach ~0.08 head widths
# past the head box, 0.017 for the biggest head of four.
ROW_GAP = 0.02

_SKINS = [(255, 220, 185), (241, 194, 150), (224, 172, 125), (198, 134, 86), (141, 85, 54), (95, 60, 40)]
_FANTASY_SKINS = [(150, 210, 140), (150, 190, 240), (200, 170, 230), (250, 170, 170), (250, 230, 120)]
_HAIR = [(30, 25, 20), (80, 50, 30), (150, 95, 45), (230, 200, 110), (190, 70, 35), (200, 200, 205)]
_FANTASY_HAIR = [(60, 110, 220), (220, 70, 150), (70, 170, 90), (140, 70, 200), (250, 140, 30)]
_EYES = [(60, 40, 25), (40, 90, 160), (50, 120, 60), (110, 80, 40), (90, 90, 100)]
_MOUTHS = [(120, 30, 40), (90, 25, 30), (140, 45, 55), (70, 20, 30)]
_SYLLABLES = ["bo", "ki", "lu", "ma", "ne", "ra", "zi", "po", "ta", "mi", "fen", "dor", "ly", "sa", "gu"]


# ---------------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------------


def _rgb(rng: np.random.Generator, lo: int = 0, hi: int = 255) -> list[int]:
    return [int(v) for v in rng.integers(lo, hi + 1, size=3)]


def _jitter(rng: np.random.Generator, colour: tuple[int, ...], amount: int = 12) -> list[int]:
    return [int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour]


def _pick(rng: np.random.Generator, options: list | tuple, p: list[float] | None = None) -> Any:
    return options[int(rng.choice(len(options), p=p))]


def _r(x: float) -> float:
    return round(float(x), 4)


def _sample_background(rng: np.random.Generator) -> dict:
    hue_top = np.array(_rgb(rng, 90, 245))
    top = hue_top
    bottom = np.clip(hue_top * rng.uniform(0.75, 1.05) + rng.integers(-30, 31, 3), 0, 255)
    floor = np.clip(np.array(_rgb(rng, 40, 200)) * 0.8, 0, 255)
    shapes = []
    for _ in range(int(rng.integers(0, 5))):
        shapes.append(
            {
                "kind": _pick(rng, SHAPE_KINDS),
                "center": [_r(rng.uniform(0.05, 0.95)), _r(rng.uniform(0.05, 0.6))],
                "size": [_r(rng.uniform(0.04, 0.2)), _r(rng.uniform(0.04, 0.25))],
                "colour": _rgb(rng, 30, 240),
            }
        )
    return {
        "top": [int(v) for v in top],
        "bottom": [int(v) for v in bottom],
        "floor_y": _r(rng.uniform(0.68, 0.92)),
        "floor": [int(v) for v in floor],
        "pattern": _pick(rng, PATTERNS),
        "pattern_colour": _rgb(rng, 60, 250),
        "pattern_scale": _r(rng.uniform(0.06, 0.2)),
        "shapes": shapes,
    }


def _sample_homes(rng: np.random.Generator, n: int, head: float) -> list[tuple[float, float]]:
    """Head-centre positions: a spread row, a close (overlapping) huddle, or anywhere; never sorted."""
    layout = _pick(rng, ["row", "huddle", "scatter"], p=[0.45, 0.3, 0.25])
    if layout == "row":
        xs = (np.arange(n) + 0.5) / n + rng.uniform(-0.06, 0.06, n)
    elif layout == "huddle":
        # Closer than one head width apart, so neighbours overlap and occlusion is exercised.
        centre = rng.uniform(0.35, 0.65)
        step = head * rng.uniform(0.55, 0.95)
        xs = centre + (np.arange(n) - (n - 1) / 2) * step
    else:
        xs = rng.uniform(0.15, 0.85, n)
    ys = rng.uniform(0.38, 0.58, n)
    order = rng.permutation(n)  # who stands where is independent of the character index
    xs = np.clip(xs[order], 0.1, 0.9)
    return [(_r(x), _r(y)) for x, y in zip(xs, ys, strict=True)]


def _sample_name(rng: np.random.Generator, taken: set[str]) -> str:
    while True:
        name = "".join(_pick(rng, _SYLLABLES) for _ in range(int(rng.integers(2, 4)))).capitalize()
        if name not in taken:
            taken.add(name)
            return name


def _sample_motion(rng: np.random.Generator, home: tuple[float, float], others: list) -> dict:
    kind = _pick(rng, ["still", "wander", "cross"], p=[0.35, 0.4, 0.25])
    if kind == "still":
        to = home
    elif kind == "wander":
        to = (home[0] + rng.uniform(-0.1, 0.1), home[1] + rng.uniform(-0.04, 0.04))
    else:
        # Walk over to (or past) another character's spot, so paths cross and depth order matters.
        target = others[int(rng.integers(len(others)))] if others else (1.0 - home[0], home[1])
        to = (target[0] + rng.uniform(-0.05, 0.05), home[1] + rng.uniform(-0.03, 0.03))
    return {
        "bob": {"amplitude": _r(rng.uniform(0.002, 0.012)), "frequency_hz": _r(rng.uniform(0.3, 1.5))},
        "sway": {"amplitude": _r(rng.uniform(0.002, 0.015)), "frequency_hz": _r(rng.uniform(0.15, 0.8))},
        "tilt_deg": _r(rng.uniform(1.0, 7.0)),
        "phase": _r(rng.uniform(0, 1)),
        "drift": {
            "to": [_r(np.clip(to[0], 0.05, 0.95)), _r(np.clip(to[1], home[1] - 0.02, 0.74))],
            "period_s": _r(rng.uniform(5.0, 14.0)),
            "phase": _r(rng.uniform(0, 1)),
        },
    }


def _sample_character(
    rng: np.random.Generator, n: int, home: tuple, depth: float, others: list, taken: set[str]
) -> dict:
    lo, hi = _HEAD_SIZE[n]
    size = rng.uniform(lo, hi) * (1.0 - 0.15 * depth)  # farther characters look a little smaller
    fantasy = rng.random() < 0.3
    skin = _pick(rng, _FANTASY_SKINS if fantasy else _SKINS)
    hair = _pick(rng, _FANTASY_HAIR if rng.random() < 0.25 else _HAIR)
    hat = _pick(rng, HAT_STYLES, p=[0.55, 0.15, 0.15, 0.15])
    accent = _rgb(rng, 20, 235)
    aspect = rng.uniform(0.95, 1.3)
    # Keep the head (and most of a hat) inside the frame: a big head cannot stand too high.
    reach = {"none": 0.6, "cap": 0.7, "beanie": 0.8, "top_hat": 1.2}[hat] * size * aspect
    home = (home[0], _r(min(max(home[1], reach + 0.03), 0.72)))
    return {
        "name": _sample_name(rng, taken),
        "home": [home[0], home[1]],
        "depth": _r(depth),
        "head": {
            "size": _r(size),
            "aspect": _r(aspect),
            "roundness": _r(rng.uniform(2.0, 3.6)),
        },
        "skin": _jitter(rng, skin),
        "hair": {"style": _pick(rng, HAIR_STYLES, p=[0.15, 0.3, 0.3, 0.25]), "colour": _jitter(rng, hair)},
        "eyes": {
            "style": _pick(rng, EYE_STYLES),
            "colour": _jitter(rng, _pick(rng, _EYES)),
            "size": _r(rng.uniform(0.8, 1.25)),
            "spacing": _r(rng.uniform(0.85, 1.15)),
        },
        "brows": {"style": _pick(rng, BROW_STYLES, p=[0.1, 0.5, 0.4]), "colour": _jitter(rng, hair, 20)},
        "hat": {"style": hat, "colour": _rgb(rng, 20, 235)},
        "accessories": {
            "glasses": {"style": _pick(rng, GLASSES_STYLES, p=[0.6, 0.2, 0.2]), "colour": _rgb(rng, 0, 120)},
            "earrings": {
                "style": _pick(rng, EARRING_STYLES, p=[0.6, 0.2, 0.2]),
                "colour": _rgb(rng, 150, 255),
            },
            "neckwear": {"style": _pick(rng, NECKWEAR_STYLES, p=[0.4, 0.3, 0.3]), "colour": accent},
        },
        "shirt": _rgb(rng, 20, 235),
        "mouth": _jitter(rng, _pick(rng, _MOUTHS), 10),
        "motion": _sample_motion(rng, home, others),
    }


def sample_scene(n_characters: int, seed: int) -> dict:
    """Draw a random JSON-able scene with n_characters characters, deterministic from seed."""
    n = check_character_count(n_characters)
    rng = np.random.default_rng([seed, 0x5CE7E])  # own stream: the same seed drives dialogue elsewhere
    background = _sample_background(rng)
    lo, hi = _HEAD_SIZE[n]
    homes = _sample_homes(rng, n, (lo + hi) / 2)
    # Characters lower in the frame stand nearer the camera, like on a stage floor.
    ys = np.array([h[1] for h in homes])
    depths = 1.0 - (ys - ys.min()) / max(float(np.ptp(ys)), 1e-6) if n > 1 else np.zeros(1)
    taken: set[str] = set()
    characters = [
        _sample_character(rng, n, homes[i], float(depths[i]), homes[:i] + homes[i + 1 :], taken)
        for i in range(n)
    ]
    return {"version": SCENE_VERSION, "background": background, "characters": characters}


def in_a_row(scene: dict, gap: float = ROW_GAP) -> dict:
    """A copy of a sampled scene with character k standing in the k-th of n equal slots from the left.

    Everything else (looks, heights, depths, bob, tilt) is kept. Each head plus its sway and sideways
    drift stays inside its slot, `gap` frame widths from the next one, so no face ever covers another
    or leaves the frame, at rest or along the choreography. It is the world's "row" layout without its
    jitter, with drifts shortened to fit: positions the world samples, for scenes a user must see whole.
    """
    out = copy.deepcopy(scene)
    n = len(out["characters"])
    for k, ch in enumerate(out["characters"]):
        m = ch["motion"]
        # Free room on each side of the head in its slot, shared by sway and drift.
        slack = (1.0 / n - gap - ch["head"]["size"]) / 2
        if slack < 0:
            raise SceneError(f"characters[{k}].head.size: {ch['head']['size']} does not fit a row of {n}")
        x = (k + 0.5) / n
        m["sway"]["amplitude"] = _r(min(m["sway"]["amplitude"], slack / 2))
        room = slack - m["sway"]["amplitude"]
        m["drift"]["to"][0] = _r(x + np.clip(m["drift"]["to"][0] - ch["home"][0], -room, room))
        ch["home"][0] = _r(x)
    return out


# ---------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------

Checker = Callable[[str, Any], Any]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _number(lo: float, hi: float) -> Checker:
    def check(path: str, v: Any) -> float:
        if not _is_number(v) or not math.isfinite(float(v)) or not lo <= float(v) <= hi:
            raise SceneError(f"{path}: expected a number in [{lo}, {hi}], got {v!r}")
        return float(v)

    return check


def _vec2(lo: float, hi: float) -> Checker:
    def check(path: str, v: Any) -> list[float]:
        ok = isinstance(v, list | tuple) and len(v) == 2 and all(_is_number(x) for x in v)
        if not ok or not all(math.isfinite(float(x)) and lo <= float(x) <= hi for x in v):
            raise SceneError(f"{path}: expected 2 numbers in [{lo}, {hi}], got {v!r}")
        return [float(x) for x in v]

    return check


def _colour(path: str, v: Any) -> list[int]:
    ok = isinstance(v, list | tuple) and len(v) == 3
    ok = ok and all(isinstance(c, int | np.integer) and not isinstance(c, bool) and 0 <= c <= 255 for c in v)
    if not ok:
        raise SceneError(f"{path}: expected 3 integers 0-255, got {v!r}")
    return [int(c) for c in v]


def _choice(options: tuple[str, ...]) -> Checker:
    def check(path: str, v: Any) -> str:
        if v not in options:
            raise SceneError(f"{path}: expected one of {', '.join(options)}, got {v!r}")
        return v

    return check


def _text(path: str, v: Any) -> str:
    if not isinstance(v, str) or not 0 < len(v) <= 64:
        raise SceneError(f"{path}: expected a non-empty string of at most 64 characters, got {v!r}")
    return v


def _styled(styles: tuple[str, ...]) -> dict:
    return {"style": _choice(styles), "colour": _colour}


_SHAPE = {
    "kind": _choice(SHAPE_KINDS),
    "center": _vec2(-0.5, 1.5),
    "size": _vec2(0.0, 1.0),
    "colour": _colour,
}

_BACKGROUND = {
    "top": _colour,
    "bottom": _colour,
    "floor_y": _number(0.0, 1.0),
    "floor": _colour,
    "pattern": _choice(PATTERNS),
    "pattern_colour": _colour,
    "pattern_scale": _number(0.02, 0.5),
    "shapes": ("list", _SHAPE, MAX_BACKGROUND_SHAPES),
}

_OSCILLATION = {"amplitude": _number(0.0, 0.1), "frequency_hz": _number(0.0, 5.0)}

_CHARACTER = {
    "name": _text,
    "home": _vec2(0.0, 1.0),
    "depth": _number(0.0, 1.0),
    "head": {"size": _number(0.08, 0.6), "aspect": _number(0.7, 1.6), "roundness": _number(1.5, 8.0)},
    "skin": _colour,
    "hair": _styled(HAIR_STYLES),
    "eyes": {
        "style": _choice(EYE_STYLES),
        "colour": _colour,
        "size": _number(0.5, 1.6),
        "spacing": _number(0.6, 1.4),
    },
    "brows": _styled(BROW_STYLES),
    "hat": _styled(HAT_STYLES),
    "accessories": {
        "glasses": _styled(GLASSES_STYLES),
        "earrings": _styled(EARRING_STYLES),
        "neckwear": _styled(NECKWEAR_STYLES),
    },
    "shirt": _colour,
    "mouth": _colour,
    "motion": {
        "bob": _OSCILLATION,
        "sway": _OSCILLATION,
        "tilt_deg": _number(0.0, 20.0),
        "phase": _number(0.0, 1.0),
        "drift": {"to": _vec2(0.0, 1.0), "period_s": _number(0.5, 600.0), "phase": _number(0.0, 1.0)},
    },
}


def _check(path: str, value: Any, spec: Any) -> Any:
    """Check value against spec (a checker, a dict of specs, or ("list", item spec, max length))."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise SceneError(f"{path}: expected an object, got {type(value).__name__}")
        for key in value:
            if key not in spec:
                raise SceneError(f"{path}.{key}: unknown key (expected one of {', '.join(spec)})")
        out = {}
        for key, sub in spec.items():
            if key not in value:
                raise SceneError(f"{path}.{key}: missing required key")
            out[key] = _check(f"{path}.{key}", value[key], sub)
        return out
    if isinstance(spec, tuple):
        _, item, max_len = spec
        if not isinstance(value, list | tuple) or len(value) > max_len:
            raise SceneError(f"{path}: expected a list of at most {max_len} items, got {value!r}")
        return [_check(f"{path}[{i}]", v, item) for i, v in enumerate(value)]
    return spec(path, value)


def validate_scene(scene: dict) -> dict:
    """Check a scene description and return a normalised copy; raise SceneError naming the bad field."""
    if not isinstance(scene, dict):
        raise SceneError(f"scene: expected an object, got {type(scene).__name__}")
    for key in scene:
        if key not in ("version", "background", "characters"):
            raise SceneError(f"{key}: unknown key (expected version, background, characters)")
    version = scene.get("version", SCENE_VERSION)
    if version != SCENE_VERSION:
        raise SceneError(f"version: expected {SCENE_VERSION}, got {version!r}")
    if "characters" not in scene:
        raise SceneError("characters: missing required key")
    characters = scene["characters"]
    if not isinstance(characters, list):
        raise SceneError(f"characters: expected a list, got {type(characters).__name__}")
    try:
        check_character_count(len(characters))
    except CharacterCountError as e:
        raise CharacterCountError(
            f"characters: a scene needs {MIN_CHARACTERS} to {MAX_CHARACTERS} characters, got {len(characters)}"
        ) from e
    if "background" not in scene:
        raise SceneError("background: missing required key")
    out = {
        "version": SCENE_VERSION,
        "background": _check("background", scene["background"], _BACKGROUND),
        "characters": [_check(f"characters[{i}]", c, _CHARACTER) for i, c in enumerate(characters)],
    }
    names = [c["name"] for c in out["characters"]]
    if len(set(names)) != len(names):
        raise SceneError(f"characters: names must be unique, got {names}")
    return out
