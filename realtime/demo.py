"""`bya demo`: the first five minutes. Builds a dialogue scene, generates it with the shipped model, writes
an MP4 and scores it against the world's ground truth.

The shipped model is the distilled 1-step `toon-s` student (realtime/model/default_model.py), generating
through the same streaming session the live engine runs; `--model` takes any other generator checkpoint
(e.g. the teacher at 8 steps). `--world` writes the ground-truth render instead (what the model is judged on).
A rig model (output="rig") moves pictures: with one, the cartoon cast is drawn as a picture at
WORLD_CANVAS px and moved. Whatever the model, a shipped photo (`duo`, or `astronaut` for one character)
is moved by a dialogue of the same kind into photo.mp4 beside it, by the picture model (rig-s) when the
demo's own model is a latent one. demo.png and photo.png hold one frame of each, for the README.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from distill.data.shards import ensure_writable_dir, save_clip
from distill.world.clip import check_character_count, make_clip, truncate
from realtime.errors import BYAError
from realtime.media import SAMPLES_PER_FRAME, SUPPORTED_FRAME_SIZES
from realtime.model.default_model import AUTOENCODER
from realtime.outputs.video_file import write_mp4
from realtime.stream.options import SamplingOptions

DEFAULT_MODEL = None  # the shipped model (realtime/model/default_model.py)
DEFAULT_AUTOENCODER = str(AUTOENCODER)


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="out/demo", help="output folder")
    p.add_argument("--characters", type=int, default=2, help="characters in the scene (1-4)")
    p.add_argument("--seconds", type=float, default=12.0, help="length of the dialogue")
    p.add_argument("--seed", type=int, default=7, help="scene and dialogue seed")
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help=f"frame size, one of {SUPPORTED_FRAME_SIZES} (default: the model's)",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="generator checkpoint (default: the shipped model)")
    p.add_argument("--autoencoder", default=DEFAULT_AUTOENCODER, help="frame autoencoder checkpoint")
    p.add_argument("--steps", type=int, default=None, help="sampling steps per chunk (default: the model's)")
    p.add_argument("--world", action="store_true", help="write the ground-truth render instead of generating")


def demo_command(args: argparse.Namespace) -> int:
    check_character_count(args.characters)
    if not 0 < args.seconds <= 600:
        raise BYAError(f"--seconds must be in (0, 600], got {args.seconds}")
    SamplingOptions.from_args(args)  # the sampling flags, checked before anything loads
    model = ae = None
    if not args.world:
        from realtime.model.default_model import load_model

        loaded = load_model(args.model, args.autoencoder)
        model, ae = loaded.generator, loaded.autoencoder
        options = SamplingOptions.from_args(args, loaded)
        steps = options.steps
        if args.size not in (None, model.cfg.frame_size):
            raise BYAError(
                f"--size {args.size}: the model {loaded.path} generates {model.cfg.frame_size} px frames"
            )
        size = model.cfg.frame_size
    else:
        size = 256 if args.size is None else args.size
    if size not in SUPPORTED_FRAME_SIZES:
        raise BYAError(f"--size must be one of {SUPPORTED_FRAME_SIZES}, got {size}")
    out = Path(args.out)
    ensure_writable_dir(out)
    start = time.perf_counter()
    clip = make_clip(args.seed, n_characters=args.characters, size=size, seconds=args.seconds)
    made = time.perf_counter() - start
    names = [c.get("name", f"character {i}") for i, c in enumerate(clip.scene["characters"])]
    print(
        f"scene: {len(names)} characters ({', '.join(names)}), {clip.n_frames} frames at {clip.size} px, made in {made:.1f} s"
    )
    for seg in clip.dialogue.segments:
        print(f"  {seg.start_s:6.2f}-{seg.end_s:6.2f} s  {names[seg.character]:>12} ({seg.kind}): {seg.text}")

    frames, masks = clip.render.frames, clip.render.masks
    scored = frames  # what is scored against the world: the clip's size
    rig = model is not None and model.cfg.output == "rig"
    if model is not None:
        from realtime.stream.sampler import generate, upsample_masks

        start = time.perf_counter()
        if rig:  # the cast drawn once as a picture and moved, at the canvas size
            gen, _ = generate_scene(loaded, world_scene_of(clip), clip.dialogue.audio, options)
        else:
            gen = generate(
                model,
                ae,
                clip.render.frames[0],
                clip.render.masks[0],
                clip.dialogue.audio,
                options=options,
            )
        took = time.perf_counter() - start
        print(
            f"generated {len(gen.frames)} frames with {loaded.path.name} ({steps} steps, {loaded.window} context chunks) in {took:.1f} s "
            f"({len(gen.frames) / took:.1f} frames/s on this machine)"
        )
        clip = truncate(clip, len(gen.frames))
        frames, masks = gen.frames, upsample_masks(gen.masks, clip.size)
        scored = shrink(frames, clip.size) if rig else frames
        write_mp4(out / "truth.mp4", clip.render.frames, clip.dialogue.mix)
    video = write_mp4(out / "demo.mp4", frames, clip.dialogue.mix)
    still = save_still(out / "demo.png", frames, clip.dialogue.audio)
    save_clip(clip, out / "clip.npz")

    from distill.eval.harness import evaluate, save_plot

    # a generated video is read where its faces are; the world render at the world's mouth boxes
    report = evaluate(scored, clip, masks=masks, mouths="truth" if model is None else "tracked")
    (out / "report.json").write_text(json.dumps(report, indent=1))
    save_plot(report, clip, out / "report.png")
    print(
        f"wrote {video} (video + mixed audio), {still}, {out / 'clip.npz'} (ground truth), {out / 'report.json'}, "
        f"{out / 'report.png'}"
    )
    ls, b, m = report["lip_sync"], report["binding"], report["masks"] or {}
    print(
        f"scores: lip-sync r {_f(ls['r_mean'])} (offset {ls['offset_frames']} frames, mouth motion "
        f"{_f(ls.get('mouth_motion_mean'))} of the truth's), binding AUC own {_f(b['auc_own_mean'])} "
        f"/ other {_f(b['auc_other_mean'])}, mask IoU {_f(m.get('iou_mean'))}, background PSNR {_f(report['background']['psnr_db'])} dB"
    )
    from realtime.model.spec import PICTURES

    if rig or PICTURES.generator_path.is_file():  # a picture is always moved by a rig model
        photo, photo_still = photo_demo(loaded, options, args, out)
        print(f"wrote {photo} (a shipped photo moved by a dialogue) and {photo_still}")
    return 0


def _f(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{v:.3f}"  # None or NaN: nothing to score


PHOTO_SCENES = {1: "astronaut", 2: "duo"}  # the shipped photo the demo moves, by its number of voices


def world_scene_of(clip):
    """The clip's world scene as the engine takes it (its cast at rest, the model's frame size)."""
    from realtime.scene.scenes import scene_from_description

    return scene_from_description(clip.scene, seed=clip.seed, size=clip.size, source="world")


def generate_scene(loaded, scene, audio: np.ndarray, options: SamplingOptions):
    """(Generated, the scene as shown): a scene through a streaming session of a rig model, frames at its
    canvas size (a world scene shown as its picture)."""
    from realtime.stream.rig_codec import scene_for_model, session_codec
    from realtime.stream.sampler import generate

    shown = scene_for_model(scene, loaded, seed=options.seed)
    codec = session_codec(loaded, shown, seed=options.seed)
    gen = generate(loaded.generator, codec, shown.reference, shown.masks, audio, options=options)
    return gen, shown


def photo_demo(loaded, options: SamplingOptions, args: argparse.Namespace, out: Path) -> tuple[Path, Path]:
    """photo.mp4 and photo.png: a shipped photo's faces moved by a world dialogue of as many voices."""
    from distill.world.dialogue import synthesize_dialogue
    from realtime.scene.scenes import load_scene

    voices = 2 if args.characters >= 2 else 1
    scene = load_scene(PHOTO_SCENES[voices], voices, args.seed, loaded.generator.cfg.frame_size)
    for note in scene.notes:
        print(f"note: {note}")
    from realtime.model.default_model import model_for_scene

    picture_model = model_for_scene(loaded, scene, chosen=False)  # the rig model (PICTURES) for a latent one
    if picture_model is not loaded:
        loaded, options = picture_model, SamplingOptions.defaults(picture_model).replace(seed=options.seed)
        print(f"photo: moved by {loaded.path.name} (pictures are always moved by a rig model)")
    dialogue = synthesize_dialogue(scene.n_characters, seconds=args.seconds, seed=args.seed)
    start = time.perf_counter()
    gen, shown = generate_scene(loaded, scene, dialogue.audio, options)
    took = time.perf_counter() - start
    h, w = shown.background.shape[:2]
    print(
        f"photo: {PHOTO_SCENES[voices]} ({w}x{h}, {scene.n_characters} faces), {len(gen.frames)} frames in "
        f"{took:.1f} s ({len(gen.frames) / took:.1f} frames/s on this machine)"
    )
    video = write_mp4(out / "photo.mp4", gen.frames, dialogue.mix[: len(gen.frames) * SAMPLES_PER_FRAME])
    return video, save_still(out / "photo.png", gen.frames, dialogue.audio)


def shrink(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, size, size, 3): square canvas frames scaled down to the world's size, to be scored against it."""
    import cv2

    if frames.shape[1:3] == (size, size):
        return frames
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def save_still(path: Path, frames: np.ndarray, audio: np.ndarray) -> Path:
    """One frame as a PNG: the one whose audio is loudest (a mouth is open in it)."""
    from PIL import Image

    n = min(len(frames), audio.shape[1] // SAMPLES_PER_FRAME)
    per_frame = audio[:, : n * SAMPLES_PER_FRAME].reshape(audio.shape[0], n, SAMPLES_PER_FRAME)
    loudness = np.sqrt((per_frame.astype(np.float64) ** 2).mean(-1)).sum(0)
    Image.fromarray(frames[int(np.argmax(loudness)) if n else 0]).save(path)
    return path
