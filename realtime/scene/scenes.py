"""Scenes: what the engine generates. The model's reference frame, where each character is in it, their
names, and the canvas the generated frames are composited on.

Three sources. A built-in seeded world scene (1-4 cartoon characters: what the shipped model animates).
A scene JSON file in the world's own schema, any field left out filled from a seeded world scene, so
users design their own cast (docs/scenes.md). A user's picture (photo or drawing) whose faces are found
offline or given: realtime.scene.picture.scene builds those, the canvas the picture at its own size.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

from realtime.errors import SceneError
from realtime.media import DEFAULT_FRAME_SIZE, MAX_CHARACTERS, MIN_CHARACTERS, SAMPLES_PER_FRAME
from realtime.scene.picture.reader import PICTURE_SUFFIXES
from realtime.scene.scene import Scene as Scene  # defined apart so picture scenes can build one

BUNDLED_SCENES = Path(__file__).parent / "bundled"  # `--scene NAME` finds NAME.json (or .jpg, .png) here
PHOTO_SUFFIXES = PICTURE_SUFFIXES  # a `--scene` with one of these is a picture
MAX_SCENE_BYTES = 1 << 20  # a scene file is a few kB; refuse anything that could not be one
PHOTO_ONLY_NOTE = (
    "a latent model (output='latent', e.g. toon-s) draws only the world's cartoon characters; pictures "
    "need a rig model, which moves the picture itself"
)


# -- world scenes ------------------------------------------------------------------------------------------
def world_scene(n_characters: int, seed: int = 0, size: int = DEFAULT_FRAME_SIZE) -> Scene:
    """The built-in scene: a seeded world scene with 1-4 characters, rendered at rest."""
    from realtime.scene.cartoon.characters import sample_scene

    return scene_from_description(sample_scene(n_characters, seed), seed=seed, size=size, source="world")


def default_scene(n_characters: int, seed: int = 0, size: int = DEFAULT_FRAME_SIZE) -> Scene:
    """The scene the engine uses when none is named (`bya render`, `bya serve`, `POST /rooms`): the world
    scene's cast from `seed`, stood in a row in voice order, so every face is whole and character k is the
    k-th from the left. A world scene as drawn can hide one face behind another (seeds 0, 2 and 3 of 2)."""
    from realtime.scene.cartoon.characters import in_a_row, sample_scene

    description = in_a_row(sample_scene(n_characters, seed))
    return scene_from_description(description, seed=seed, size=size, source="world")


def scene_from_description(
    description: dict, seed: int = 0, size: int = DEFAULT_FRAME_SIZE, source: str = "file"
) -> Scene:
    """Render frame 0 of a world scene description (validated; SceneError names any bad field) at rest."""
    from realtime.scene.cartoon.characters import validate_scene
    from realtime.scene.cartoon.render import check_frame_size, render_scene
    from realtime.scene.cartoon.tracks import DialogueTrack

    description = validate_scene(description)
    size = check_frame_size(size)
    n = len(description["characters"])
    silent = DialogueTrack(
        np.zeros((n, SAMPLES_PER_FRAME), np.float32),
        np.zeros((n, 1), np.float32),
        np.zeros((n, 1), np.int8),
        np.zeros((n, 1), bool),
    )
    r = render_scene(description, silent, size=size, seed=seed)
    return Scene(
        reference=r.frames[0],
        masks=r.masks[0],
        names=tuple(c["name"] for c in description["characters"]),
        boxes=r.boxes[0],
        background=r.background,
        region=(0, 0, size, size),
        source=source,
        description=description,
    )


def _merge(base: Any, override: Any) -> Any:
    """override laid over base: objects merge key by key, anything else (lists included) replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return copy.deepcopy(override)


def scene_from_json(data: Any, size: int = DEFAULT_FRAME_SIZE) -> Scene:
    """A scene file's content: the world schema, any field left out taken from the world scene `seed` draws."""
    from realtime.scene.cartoon.characters import sample_scene

    if not isinstance(data, dict):
        raise SceneError(f"scene: expected a JSON object, got {type(data).__name__}")
    data = dict(data)
    seed = data.pop("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise SceneError(f"seed: expected an integer in [0, 2^32), got {seed!r}")
    characters = data.get("characters")
    if not isinstance(characters, list) or not MIN_CHARACTERS <= len(characters) <= MAX_CHARACTERS:
        got = f"{len(characters)} items" if isinstance(characters, list) else repr(characters)
        raise SceneError(
            f"characters: expected a list of {MIN_CHARACTERS}-{MAX_CHARACTERS} objects, got {got}"
        )
    for i, c in enumerate(characters):
        if not isinstance(c, dict):
            raise SceneError(f"characters[{i}]: expected an object, got {type(c).__name__}")
    base = sample_scene(len(characters), seed)
    if "background" in data and not isinstance(data["background"], dict):
        raise SceneError(f"background: expected an object, got {type(data['background']).__name__}")
    merged = _merge(base, data)
    merged["characters"] = [_merge(b, c) for b, c in zip(base["characters"], characters, strict=True)]
    return scene_from_description(merged, seed=seed, size=size, source="file")


def read_scene_file(
    path: str | Path, size: int = DEFAULT_FRAME_SIZE, boxes: Any = None, max_faces: int = MAX_CHARACTERS
) -> Scene:
    """Load a scene JSON file (docs/scenes.md): the world's schema, or a picture and its faces. `boxes`
    and `max_faces` choose a picture file's faces as for a picture."""
    from realtime.scene.picture.scene import is_picture_file, picture_file_scene

    path = Path(path)
    if not path.is_file():
        raise SceneError(f"scene file {path} not found")
    if path.stat().st_size > MAX_SCENE_BYTES:
        raise SceneError(f"scene file {path} is over {MAX_SCENE_BYTES} bytes; a scene is a few kB of JSON")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SceneError(f"scene file {path}: not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise SceneError(
            f"scene file {path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    if is_picture_file(data):
        try:
            return picture_file_scene(data, path.parent, boxes, size, max_faces)
        except SceneError as exc:
            raise type(exc)(f"scene file {path}: {exc}") from exc
    if boxes is not None:
        raise SceneError("boxes: only a photo scene (a picture) takes face boxes (--face)")
    try:
        return scene_from_json(data, size)
    except SceneError as exc:
        raise type(exc)(f"scene file {path}: {exc}") from exc


# -- picture scenes (realtime.scene.picture.scene) ---------------------------------------------------------
def photo_scene(
    photo: str | Path | np.ndarray,
    boxes: Any = None,  # 1-4 face boxes [x0, y0, x1, y1] in the picture's pixels, in character order
    names: list[str] | None = None,
    size: int = DEFAULT_FRAME_SIZE,
    max_faces: int = MAX_CHARACTERS,
) -> Scene:
    """A user's photo or drawing as a scene (realtime.scene.picture.scene.picture_scene)."""
    from realtime.scene.picture.scene import picture_scene

    return picture_scene(photo, boxes, names, size, max_faces)


def avatar_scene(
    pictures: list[str | Path], names: list[str] | None = None, size: int = DEFAULT_FRAME_SIZE
) -> Scene:
    """1-4 pictures (paths, or bundled pictures' names) side by side, one face each, in order
    (realtime.scene.picture.scene.avatar_scene)."""
    from realtime.scene.picture.scene import avatar_scene as side_by_side

    return side_by_side([_picture_path(p) for p in pictures], names, size)


def _picture_path(spec: str | Path) -> Path:
    """A picture's path: `spec` itself, or the bundled picture of that name."""
    if isinstance(spec, str) and names_a_picture(spec) and Path(spec).suffix == "":
        return _bundled(spec)
    return Path(spec)


def bundled_scene_names() -> list[str]:
    """What `--scene NAME` and `POST /rooms` find in BUNDLED_SCENES: scene files and pictures."""
    return sorted(
        {p.stem for p in BUNDLED_SCENES.iterdir() if p.suffix.lower() in (".json", *PHOTO_SUFFIXES)}
    )


def _bundled(name: str) -> Path | None:
    for suffix in (".json", *PHOTO_SUFFIXES):
        path = BUNDLED_SCENES / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def names_a_picture(spec: str | None) -> bool:
    """Whether a `--scene` value names a picture (a .png/.jpg file or a bundled picture) by its name alone;
    a .json scene file may name one too, which only reading it tells."""
    if spec is None:
        return False
    if Path(spec).suffix.lower() in PHOTO_SUFFIXES:
        return True
    bundled = _bundled(spec) if "/" not in spec and Path(spec).suffix == "" else None
    return bundled is not None and bundled.suffix.lower() in PHOTO_SUFFIXES


def load_scene(
    spec: str | None,
    n_characters: int,
    seed: int = 0,
    size: int = DEFAULT_FRAME_SIZE,
    boxes: Any = None,  # --face: 1-4 face boxes in a picture's pixels, in character order
    avatars: list[str] | None = None,  # --avatar: 1-4 pictures set side by side, one face each
) -> Scene:
    """What `--scene` names: None (the default scene of n_characters), a bundled scene's name (a scene file
    or a picture), a .json scene file, or a picture (.jpg, .png; at most n_characters faces found, or
    given as boxes). With `avatars` instead: those pictures side by side."""
    if avatars:
        if spec is not None or boxes is not None:
            raise SceneError("--avatar pictures make the scene: leave out --scene and --face")
        return avatar_scene(avatars, size=size)
    if spec is None:
        if boxes is not None:
            raise SceneError("--face chooses faces in a picture: give the picture with --scene")
        return default_scene(n_characters, seed, size)
    max_faces = min(max(n_characters, MIN_CHARACTERS), MAX_CHARACTERS)
    path = Path(spec)
    if "/" not in spec and path.suffix == "" and _bundled(spec) is not None:
        path = _bundled(spec)
    if path.suffix.lower() in PHOTO_SUFFIXES:
        return photo_scene(path, boxes, size=size, max_faces=max_faces)
    if path.suffix.lower() == ".json":
        return read_scene_file(path, size, boxes, max_faces)
    raise SceneError(
        f"scene {spec!r}: expected a .json scene file, a picture ({', '.join(PHOTO_SUFFIXES)}) or a bundled "
        f"scene ({', '.join(bundled_scene_names())})"
    )
