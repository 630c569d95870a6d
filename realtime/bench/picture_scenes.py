"""The picture scenes the speed benchmarks run on (issue 20 §5): `--scene photo-512`, `--scene photo-720p`.

Built in code from the bundled portraits (realtime/scene/bundled: astronaut.jpg, grace_hopper.jpg, public
domain), so a benchmark row names a fixed canvas and face count without shipping another picture:
- photo-512: 512x512, two faces side by side (each portrait 512 px tall, cropped 256 px wide around
  its face);
- photo-720p: 1280x720, one face (Grace Hopper 720 px tall in the middle, the sides filled with a
  blurred copy of the same portrait stretched to 16:9, the usual way a portrait fills a wide frame).
`scene_for_bench` also takes anything `--scene` takes (realtime.scene.scenes.load_scene); `scene_session`
opens a streaming session on a scene as the live engine does (a rig model moves the picture itself).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from realtime.errors import SceneError
from realtime.media import MAX_CHARACTERS
from realtime.scene.picture.reader import read_picture, resize_to
from realtime.scene.scene import Scene
from realtime.scene.scenes import BUNDLED_SCENES, PHOTO_ONLY_NOTE

# each portrait's face centre, as a share of its width (where realtime.scene.picture.landmarks finds it): a crop
# centred here keeps the whole head in a half-width column
FACE_CENTRE_X = {"astronaut": 0.44, "grace_hopper": 0.52}
SIDE_BLUR_SIGMA = 24.0  # px at 720p: the stretched sides read as a soft backdrop, nothing in them a face
SIDE_DIM = 0.7  # the sides are darkened so the sharp portrait stands out, as the usual layout does


def _portrait(name: str, height: int) -> np.ndarray:
    """A bundled portrait scaled to `height` px tall (width even)."""
    canvas, _, _ = read_picture(BUNDLED_SCENES / f"{name}.jpg")
    h, w = canvas.shape[:2]
    return resize_to(canvas, max(2, round(w * height / h) // 2 * 2), height)


def _column(name: str, width: int, height: int) -> np.ndarray:
    """(height, width, 3): a portrait `height` px tall, cropped to `width` px around its face."""
    image = _portrait(name, height)
    centre = FACE_CENTRE_X[name] * image.shape[1]
    left = int(np.clip(round(centre - width / 2), 0, image.shape[1] - width))
    return image[:, left : left + width]


def photo_512() -> np.ndarray:
    """(512, 512, 3) uint8: two faces side by side."""
    return np.ascontiguousarray(
        np.concatenate([_column("astronaut", 256, 512), _column("grace_hopper", 256, 512)], 1)
    )


def photo_720p() -> np.ndarray:
    """(720, 1280, 3) uint8: one portrait in the middle of a blurred, stretched copy of itself."""
    import cv2

    portrait = _portrait("grace_hopper", 720)
    sides = cv2.GaussianBlur(resize_to(portrait, 1280, 720), (0, 0), SIDE_BLUR_SIGMA)
    out = (sides.astype(np.float32) * SIDE_DIM).astype(np.uint8)
    left = (1280 - portrait.shape[1]) // 2
    out[:, left : left + portrait.shape[1]] = portrait
    return out


# name -> (the picture, its faces): the faces a benchmark row is labelled with
PICTURES: dict[str, tuple[Callable[[], np.ndarray], int]] = {
    "photo-512": (photo_512, 2),
    "photo-720p": (photo_720p, 1),
}
BENCH_SCENES = tuple(PICTURES)


def bench_scene(name: str, size: int) -> Scene:
    """The benchmark picture scene `name` (one of BENCH_SCENES) for a model of `size` px frames."""
    from realtime.scene.picture.scene import picture_scene

    if name not in PICTURES:
        raise SceneError(f"bench scene {name!r}: expected one of {', '.join(BENCH_SCENES)}")
    make, faces = PICTURES[name]
    scene = picture_scene(make(), size=size, max_faces=faces)
    if scene.n_characters != faces:
        raise SceneError(f"bench scene {name}: {faces} faces expected, {scene.n_characters} found")
    return scene


def scene_for_bench(spec: str, characters: int, size: int, seed: int = 0) -> Scene:
    """A benchmark's `--scene`: a bench scene's name, else anything load_scene takes (at most
    `characters` faces of a picture)."""
    if spec in PICTURES:
        return bench_scene(spec, size)
    from realtime.scene.scenes import load_scene

    return load_scene(spec, characters, seed, size)


def add_scene_argument(p: argparse.ArgumentParser) -> None:
    """`--scene NAME_OR_PICTURE`, repeatable: one benchmark row per scene."""
    p.add_argument(
        "--scene",
        action="append",
        default=None,
        metavar="NAME_OR_PICTURE",
        help=f"a scene to add a row for, repeatable: {', '.join(BENCH_SCENES)} (built-in pictures), or "
        "anything --scene takes elsewhere (a bundled picture, a .jpg/.png, a scene .json); default with a "
        f"rig model: {' '.join(BENCH_SCENES)}; a latent model draws no pictures",
    )


def scenes_to_run(given: list[str] | None, model) -> list[str]:
    """The `--scene` values a benchmark runs: those given, else the bench scenes for a rig model (none for
    a latent model: it draws only the cartoon world)."""
    if given is not None:
        return list(given)
    return list(BENCH_SCENES) if model.cfg.output == "rig" else []


def bench_scenes(model, specs: list[str] | None, seed: int) -> list[tuple[str, Scene]]:
    """(spec, scene) for every scene row to run (scenes_to_run), each built and checked before anything is
    timed: a picture needs a rig model."""
    scenes = []
    for spec in scenes_to_run(specs, model):
        scene = scene_for_bench(spec, MAX_CHARACTERS, model.cfg.frame_size, seed)
        if scene.source == "photo" and model.cfg.output != "rig":
            raise SceneError(f"--scene {spec}: {PHOTO_ONLY_NOTE}; pass --model with a rig model")
        scenes.append((spec, scene))
    return scenes


def scene_session(model, autoencoder, scene: Scene, options):
    """A StreamingGenerator on `scene` as the live engine opens one, and the scene as the model shows it:
    a rig model decodes with a RigCodec at the canvas size (a world scene shown as its picture); a latent
    model draws world and file scenes only (SceneError for a picture)."""
    from realtime.stream.rig_codec import scene_for_model, session_codec
    from realtime.stream.session import StreamingGenerator

    if scene.source == "photo" and model.cfg.output != "rig":
        raise SceneError(f"{PHOTO_ONLY_NOTE}; pass --model with a rig model")
    shown = scene_for_model(scene, model, seed=options.seed)
    codec = session_codec(model, shown, autoencoder, seed=options.seed)
    session = StreamingGenerator(model, codec, shown.reference, shown.masks, options=options)
    return session, shown


def canvas_label(scene: Scene) -> str:
    """The canvas as W x H, e.g. "1280x720"."""
    h, w = scene.background.shape[:2]
    return f"{w}x{h}"
