"""Several independent rooms in one `bya serve` process: what `POST /rooms` may ask for, and how one is built.

Each room is its own engine Room (its own generator session and cache, media clock and binding table);
all of them share the one loaded model, which only reads its weights. The room made at start-up is
`default` and keeps the un-prefixed routes (`/whip/<character>`, `/whep`, ...); the others live under
`/rooms/<name>/...`. A request names only built-in things (a bundled scene or picture, or a seeded world
scene), so nothing from the network reaches the filesystem; a bundled picture's faces may be chosen by box.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

from realtime.audio.binding import AUDIO_GUIDANCE_RANGE
from realtime.errors import BYAError
from realtime.media import MAX_CHARACTERS, MIN_CHARACTERS
from realtime.scene.scenes import bundled_scene_names, names_a_picture

log = logging.getLogger(__name__)

DEFAULT_ROOM = "default"
ROOM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # one URL path segment, no escaping needed
SCENE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_SEED = 2**31 - 1
ROOM_FIELDS = {"name", "characters", "scene", "faces", "seed", "motion", "audio_guidance"}


class RoomRequestError(BYAError):
    """A `POST /rooms` body that does not describe a room this server can make."""


@dataclass(frozen=True)
class RoomRequest:
    """A room to create: its name and its scene (a bundled one, or a seeded world scene of N characters)."""

    name: str
    characters: int = 2  # world scene size when no scene is named (what `bya serve` defaults to)
    scene: str | None = (
        None  # a bundled scene's name (realtime/scene/bundled/<name>.json); its cast decides N
    )
    seed: int = 0  # of the world scene and the sampler
    motion: bool | None = None  # characters follow the scene's choreography (None: as the server's room)
    audio_guidance: float | None = None  # 1-4: how far speakers' mouths are pushed (None: as the server's)
    faces: tuple[tuple[float, float, float, float], ...] | None = None  # a bundled picture's face boxes


def bundled_scenes() -> list[str]:
    return bundled_scene_names()


def _face_boxes(value: object) -> tuple[tuple[float, float, float, float], ...]:
    """The "faces" field: 1-4 boxes [x0, y0, x1, y1] of finite numbers (load_scene checks they fit)."""
    if not isinstance(value, list) or not MIN_CHARACTERS <= len(value) <= MAX_CHARACTERS:
        raise RoomRequestError(
            f"faces must be a list of {MIN_CHARACTERS}-{MAX_CHARACTERS} boxes [x0, y0, x1, y1]"
        )
    boxes = []
    for i, box in enumerate(value):
        if (
            not isinstance(box, list)
            or len(box) != 4
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box
            )
        ):
            raise RoomRequestError(f"faces[{i}] must be 4 numbers [x0, y0, x1, y1], got {box!r}"[:120])
        boxes.append(tuple(float(v) for v in box))
    return tuple(boxes)


def parse_room_request(doc: object) -> RoomRequest:
    """Validate a decoded JSON body: {"name": str, "characters"?: 1-4, "scene"?: bundled name, "faces"?: boxes
    in a bundled picture, "seed"?: int, "motion"?: bool, "audio_guidance"?: number in [1, 4]}."""
    if not isinstance(doc, dict):
        raise RoomRequestError('the body must be a JSON object like {"name": "studio-2", "characters": 2}')
    unknown = set(doc) - ROOM_FIELDS
    if unknown:
        raise RoomRequestError(f"unknown field(s) {sorted(unknown)[:4]}; allowed: {sorted(ROOM_FIELDS)}")
    name = doc.get("name")
    if not isinstance(name, str) or not ROOM_NAME.fullmatch(name):
        raise RoomRequestError(
            f"name must match {ROOM_NAME.pattern} (lowercase letters, digits, - and _), got {str(name)[:40]!r}"
        )
    if name == DEFAULT_ROOM:
        raise RoomRequestError(f"{DEFAULT_ROOM!r} is the room the server started with")
    scene = doc.get("scene")
    if scene is not None:
        if "characters" in doc:
            raise RoomRequestError("give either scene (its cast sets the characters) or characters, not both")
        if not isinstance(scene, str) or not SCENE_NAME.fullmatch(scene) or scene not in bundled_scenes():
            raise RoomRequestError(f"scene must be a bundled scene ({', '.join(bundled_scenes())})")
    faces = None
    if "faces" in doc:
        if not isinstance(scene, str) or not names_a_picture(scene):
            raise RoomRequestError("faces go with a bundled picture scene (choose its faces by box)")
        faces = _face_boxes(doc["faces"])
    characters = doc.get("characters", 2)
    if isinstance(characters, bool) or not isinstance(characters, int):
        raise RoomRequestError(f"characters must be an integer, got {characters!r}"[:120])
    if not MIN_CHARACTERS <= characters <= MAX_CHARACTERS:
        raise RoomRequestError(f"characters must be {MIN_CHARACTERS}-{MAX_CHARACTERS}, got {characters}")
    seed = doc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise RoomRequestError(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}"[:120])
    motion = doc.get("motion")
    if motion is not None and not isinstance(motion, bool):
        raise RoomRequestError(f"motion must be true or false, got {motion!r}"[:120])
    guidance = doc.get("audio_guidance")
    if guidance is not None and (
        isinstance(guidance, bool)
        or not isinstance(guidance, (int, float))
        or not AUDIO_GUIDANCE_RANGE[0] <= guidance <= AUDIO_GUIDANCE_RANGE[1]
    ):
        raise RoomRequestError(f"audio_guidance must be a number in [1, 4], got {guidance!r}"[:120])
    return RoomRequest(
        name, characters, scene, seed, motion, None if guidance is None else float(guidance), faces
    )


def build_room(template, request: RoomRequest):
    """A new engine Room like `template` (same loaded model, steps, input limit) for `request`'s scene."""
    from realtime.engine.room import Room
    from realtime.scene.scenes import load_scene

    cfg = template.loaded.generator.cfg
    # a bundled scene's cast is checked by Room against the same limit
    if request.scene is None and request.characters > cfg.max_characters:
        raise RoomRequestError(
            f"characters must be {MIN_CHARACTERS}-{cfg.max_characters} for this server's model, "
            f"got {request.characters}"
        )
    # a bundled scene's cast decides N: a picture's faces, up to what the model holds
    n = request.characters if request.scene is None else cfg.max_characters
    faces = None if request.faces is None else [list(b) for b in request.faces]
    scene = load_scene(request.scene, n, request.seed, size=cfg.frame_size, boxes=faces)
    for note in scene.notes:
        log.info("room %s: %s", request.name, note)
    from realtime.model.default_model import model_for_scene

    # a picture room is animated by the rig model when the server's model is a latent one (it cannot)
    loaded = model_for_scene(template.loaded, scene, chosen=False)
    return Room(
        loaded,
        scene,
        steps=template.steps,
        seed=request.seed,
        max_inputs=template.max_inputs,
        motion=template.motion if request.motion is None else request.motion,
        audio_guidance=template.audio_guidance if request.audio_guidance is None else request.audio_guidance,
    )
