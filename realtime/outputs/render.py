"""`bya render`: audio files in, an MP4 of the scene with the mixed audio and a JSON of where everyone is out.

The k-th `--audio` drives character k. The same pipeline as the live room (per-character audio -> chunk
scheduler -> compositor), without its clock: every chunk runs at full steps. OUT.json holds the frame
geometry, each character's box per frame (from the router's refined masks), the binding and the
timings of every chunk (format: docs/engine.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.audio.binding import add_guidance_argument, add_isolation_argument, add_motion_argument
from realtime.engine.threads import available_cores, set_threads
from realtime.errors import (
    AudioInputError,
    BYAError,
    CharacterCountError,
    CheckpointError,
    OutputPathError,
    SceneError,
)
from realtime.media import AUDIO_SAMPLE_RATE, MAX_CHARACTERS, SAMPLES_PER_FRAME, VIDEO_FPS
from realtime.model.default_model import model_for_scene
from realtime.scene.picture.args import add_picture_arguments, check_picture_arguments
from realtime.scene.scenes import PHOTO_ONLY_NOTE, Scene
from realtime.stream.options import SamplingOptions
from realtime.stream.rig_codec import scene_for_model

MAX_SECONDS = 600.0  # per audio file: ten minutes of dialogue
MAX_FRAME_BYTES = 4 << 30  # frames are held in memory until the MP4 is written


@dataclass
class Rendered:
    """A scene generated from per-character audio, offline."""

    frames: np.ndarray  # (T, H, W, 3) uint8 composited frames
    boxes: np.ndarray  # (T, N, 4) float32 canvas-pixel boxes of each character's refined mask; NaN: none
    steps: int
    timings_ms: list[dict[str, float]]  # per chunk


def render_audio(
    loaded, scene: Scene, tracks: np.ndarray, options: SamplingOptions | None = None
) -> Rendered:
    """File mode of the engine: (N, n) 16 kHz audio per character -> frames covering it in whole chunks.
    `options`: None samples as the model's defaults (SamplingOptions.defaults(loaded))."""
    from realtime.engine.scheduler import ChunkScheduler

    if tracks.ndim != 2 or tracks.shape[0] != scene.n_characters:
        raise ValueError(f"tracks must be ({scene.n_characters} characters, samples), got {tracks.shape}")
    options = SamplingOptions.defaults(loaded) if options is None else options
    steps = options.steps
    scene = scene_for_model(scene, loaded, seed=options.seed)  # a rig model shows a world scene as a picture
    scheduler = ChunkScheduler(loaded, scene, options)
    chunks = scheduler.feed(tracks.astype(np.float32)) + scheduler.flush()
    frames = np.stack([im for ch in chunks for im in ch.images])
    boxes = np.concatenate([ch.boxes for ch in chunks])
    return Rendered(frames, boxes, steps, [ch.timings_ms for ch in chunks])


def diarize(mix: np.ndarray, enroll: list[np.ndarray], speakers: int) -> np.ndarray:
    """(K, n) one track per character from a mixed stream: enrolled voices (character k = the k-th
    enrollment), else `speakers` voices clustered in order of appearance (realtime.audio.diarization)."""
    from realtime.audio.diarization import Diarizer

    diarizer = Diarizer(mode="enroll" if enroll else "online", max_speakers=len(enroll) or speakers)
    for k, audio in enumerate(enroll):
        diarizer.enroll(k, audio)
    return diarizer.split(mix)


def read_audio(path: str | Path) -> np.ndarray:
    """Any audio file PyAV decodes -> (n,) float32 mono at 16 kHz."""
    import av

    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"audio file {path} not found")
    parts = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioInputError(f"{path}: has no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_SAMPLE_RATE)
            for frame in container.decode(container.streams.audio[0]):
                parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
                if sum(map(len, parts)) > MAX_SECONDS * AUDIO_SAMPLE_RATE:
                    raise AudioInputError(f"{path}: longer than {MAX_SECONDS:.0f} s")
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise AudioInputError(f"{path}: cannot decode audio ({exc})") from exc
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if len(audio) < SAMPLES_PER_FRAME:
        raise AudioInputError(f"{path}: holds {len(audio)} samples, less than one video frame (40 ms)")
    if not np.isfinite(audio).all():
        raise AudioInputError(f"{path}: holds NaN or infinite samples")
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--audio",
        action="append",
        default=[],
        metavar="FILE",
        help="audio of character k (repeat; k-th drives k)",
    )
    p.add_argument(
        "--mix", metavar="FILE", help="one mixed stream, diarized to the characters, instead of --audio"
    )
    p.add_argument(
        "--enroll",
        action="append",
        default=[],
        metavar="FILE",
        help="with --mix: a few seconds of character k's voice",
    )
    p.add_argument("--characters", type=int, help="with --mix and no --enroll: speakers to find (default 2)")
    p.add_argument("--out", required=True, help="output MP4; OUT.json is written beside it")
    p.add_argument(
        "--scene",
        help="scene: a .json file, a bundled scene name, or a picture (.png/.jpg photo or drawing; default: "
        "a world scene)",
    )
    add_picture_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the built-in scene and the sampler")
    p.add_argument(
        "--model", help="generator checkpoint (default: the shipped model, realtime/model/default_model.py)"
    )
    p.add_argument("--steps", type=int, help="sampling steps per chunk (default: the checkpoint's)")
    p.add_argument(
        "--threads",
        type=int,
        default=available_cores(),
        help=f"model threads (default: the cores this process may use = {available_cores()})",
    )
    add_isolation_argument(p)
    add_guidance_argument(p)
    add_motion_argument(p)


def _load_model(path: str | None):
    from realtime.model.default_model import load_model

    if path is not None and not Path(path).is_file():
        raise CheckpointError(f"--model {path}: file not found")
    return load_model(path)


def render_command(args: argparse.Namespace) -> int:
    from realtime.outputs.video_file import write_mp4
    from realtime.scene.scenes import load_scene

    SamplingOptions.from_args(args)  # the sampling flags, checked before anything loads
    faces = check_picture_arguments(args)
    if args.mix is not None and args.audio:
        raise BYAError("give either --audio files (one per character) or one --mix, not both")
    if args.mix is None and (args.enroll or args.characters is not None):
        raise BYAError("--enroll and --characters go with --mix")
    if args.mix is None and not 1 <= len(args.audio) <= MAX_CHARACTERS:
        raise BYAError(
            f"give 1 to {MAX_CHARACTERS} --audio files (the k-th drives character k), got {len(args.audio)}"
        )
    speakers = len(args.enroll) or (2 if args.characters is None else args.characters)
    if args.mix is not None and not 1 <= speakers <= MAX_CHARACTERS:
        raise BYAError(
            f"--mix binds 1 to {MAX_CHARACTERS} characters (--enroll files or --characters), got {speakers}"
        )
    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise BYAError(f"--out must name an .mp4 file, got {args.out}")
    if out.exists() and out.is_dir():
        raise BYAError(f"--out {out} is a folder")
    mix = None
    if args.mix is not None:
        mix = read_audio(args.mix)
        streams = list(diarize(mix, [read_audio(e) for e in args.enroll], speakers))
    else:
        streams = [read_audio(a) for a in args.audio]
    if args.threads < 1:
        raise BYAError(f"--threads must be >= 1, got {args.threads}")
    set_threads(args.threads)
    loaded = _load_model(args.model)
    options = SamplingOptions.from_args(args, loaded)
    k = loaded.generator.cfg.max_characters
    if len(streams) > k:
        raise CharacterCountError(
            f"{len(streams)} characters, but {loaded.path.name} has {k} character slots (max_characters)"
        )
    size = loaded.generator.cfg.frame_size
    scene = load_scene(args.scene, len(streams), args.seed, size, boxes=faces, avatars=args.avatar)
    loaded = model_for_scene(loaded, scene, chosen=args.model is not None)  # pictures: the rig model
    if scene.source == "photo" and loaded.generator.cfg.output != "rig":
        raise SceneError(f"{PHOTO_ONLY_NOTE}; pass --model with a rig model (bya train rig)")
    options = SamplingOptions.from_args(args, loaded)
    scene = scene_for_model(scene, loaded, seed=options.seed)
    for note in scene.notes:
        print(f"bya render: {note}", file=sys.stderr)
    if len(streams) > scene.n_characters:
        raise BYAError(f"{len(streams)} --audio files for a scene of {scene.n_characters} characters")
    n = max(map(len, streams))
    tracks = np.zeros((scene.n_characters, n), np.float32)
    for k, s in enumerate(streams):
        tracks[k, : len(s)] = s
    h, w = scene.background.shape[:2]
    if n / SAMPLES_PER_FRAME * h * w * 3 > MAX_FRAME_BYTES:
        raise BYAError(
            f"{n / AUDIO_SAMPLE_RATE:.0f} s at {w}x{h} px is too long to hold in memory; shorten the audio"
        )

    start = time.perf_counter()
    result = render_audio(loaded, scene, tracks, options)
    took = time.perf_counter() - start
    t = len(result.frames)
    mix = np.clip(tracks.sum(0), -1.0, 1.0) if mix is None else mix
    mix = np.pad(mix, (0, max(0, t * SAMPLES_PER_FRAME - n)))[: t * SAMPLES_PER_FRAME]
    video = write_mp4(out, result.frames, mix)
    report = {
        "fps": VIDEO_FPS,
        "width": w,
        "height": h,
        "frames": t,
        "characters": [
            {"index": k, "name": name, "boxes": [_box(b) for b in result.boxes[:, k]]}
            for k, name in enumerate(scene.names)
        ],
        "binding": [{"audio": str(a), "character": k} for k, a in enumerate(args.audio)]
        or [{"mix": str(args.mix), "speaker": k, "character": k} for k in range(len(streams))],
        "scene": {"source": scene.source, "region": list(scene.region), "spec": args.scene},
        "model": str(loaded.path),
        "steps": result.steps,
        "seed": args.seed,
        "motion": args.motion,
        "render_seconds": round(took, 3),
        "timings_ms": [{k: round(v, 3) for k, v in tm.items()} for tm in result.timings_ms],
    }
    meta = out.with_suffix(".json")
    try:
        meta.write_text(json.dumps(report, indent=1))
    except OSError as exc:
        raise OutputPathError(f"cannot write {meta}: {exc.strerror or exc}") from exc
    seconds = t / VIDEO_FPS
    print(
        f"wrote {video} ({t} frames, {w}x{h}, {seconds:.2f} s with the mixed audio) and {meta}; generated with "
        f"{loaded.path.name} at {result.steps} steps in {took:.1f} s ({t / took:.1f} frames/s, {seconds / took:.2f}x real time)"
    )
    return 0


def _box(b: np.ndarray) -> list[float] | None:
    return None if np.isnan(b).any() else [round(float(v), 2) for v in b]
