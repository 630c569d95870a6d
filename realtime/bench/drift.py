"""Long-stream drift benchmark: does a 10-minute session stay where it started? `bya bench drift`.

One session of the shipped student generates a world dialogue of `--minutes` minutes chunk after chunk
through its rolling cache (the live path, not the offline sampler). Once per second a frame is kept and
scored against the world's ground truth at that frame: background PSNR against the reference background
and each character's identity colour drift (distill.eval.metrics.colour_drift). The per-minute curve is
printed, saved as JSON and plotted; the verdict compares the last minute with the first.

On a picture (`--scene`: a bench photo such as photo-512, a bundled picture, a file; and every scene of a
rig model) there is no ground truth to follow, but there is the picture: each kept frame's pixels outside
the face regions (PictureRenderer.face_regions) are scored by PSNR against it, and each face's mean colour
inside its region against the picture's (its drift from the first kept frame), frames scored as they come.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from distill.eval.metrics import background_fidelity, colour_drift
from distill.world.clip import make_clip
from realtime.bench.machine import command_line, provenance
from realtime.errors import BYAError
from realtime.media import AUDIO_SAMPLE_RATE, VIDEO_FPS
from realtime.model.default_model import load_model
from realtime.scene.scene import Scene
from realtime.stream.options import SamplingOptions
from realtime.stream.session import StreamingGenerator

IDENTICAL_DB = 99.0  # the PSNR reported for bit-identical pixels (JSON has no infinity)
FACE_MARGIN = 0.3  # a latent model's face region: its head box grown by this share of its size per side
PIECE_S = 2  # seconds of audio pushed at a time


@torch.no_grad()
def run(
    loaded,  # a LoadedModel (realtime.model.default_model.load_model)
    minutes: float,
    characters: int,
    seed: int,
    threads: int,
    command: str = "bya bench drift",
    scene: Scene
    | None = None,  # a scene to stream; None: the world dialogue's own (a rig model: its picture)
    scene_name: str | None = None,  # its --scene value, for the report
) -> dict:
    torch.set_num_threads(threads)
    if scene is not None or loaded.generator.cfg.output == "rig":
        return run_picture(loaded, minutes, characters, seed, threads, command, scene, scene_name)
    cfg = loaded.generator.cfg
    t0 = time.perf_counter()
    clip = make_clip(seed, n_characters=characters, size=cfg.frame_size, seconds=minutes * 60)
    made = time.perf_counter() - t0
    s = StreamingGenerator(
        loaded.generator,
        loaded.autoencoder,
        clip.render.frames[0],
        clip.render.masks[0],
        options=SamplingOptions.defaults(loaded, seed=seed),  # the model's settings
    )
    audio = clip.dialogue.audio.astype(np.float32)
    kept_idx, kept = [], []
    t0 = time.perf_counter()
    for idx, f in every_second(s, audio):
        kept_idx.append(idx)
        kept.append(f)
    wall = time.perf_counter() - t0
    idx = np.array(kept_idx)
    frames = np.stack(kept)
    truth = clip.render.frames[idx]
    masks = clip.render.masks[idx]
    bg = background_fidelity(frames, clip.render.background, masks)
    _, drift = colour_drift(frames, truth, masks)
    minute = idx // (60 * VIDEO_FPS)
    curve = []
    for m in range(int(np.ceil(minutes))):
        sel = minute == m
        if not sel.any():
            continue
        psnr = np.asarray(bg["psnr_db_per_frame"])[sel]
        curve.append(
            {
                "minute": m + 1,
                "background_psnr_db": float(np.nanmean(psnr)),
                "colour_drift": float(np.nanmean(drift[sel])),
                "colour_drift_max": float(np.nanmax(drift[sel])),
            }
        )
    first, last = curve[0], curve[-1]
    return {
        "model": str(loaded.path),
        "steps": loaded.steps,
        "window_chunks": loaded.window,
        "machine": f"{platform.processor() or platform.machine()}, {threads} threads",
        "minutes": minutes,
        "characters": characters,
        "seed": seed,
        "world_seconds_to_make": made,
        "generation_wall_seconds": wall,
        "frames_generated": int(s.chunk_index * cfg.chunk_frames),
        "real_time_factor": s.chunk_index * cfg.chunk_frames / VIDEO_FPS / wall,
        "curve": curve,
        "psnr_change_db": last["background_psnr_db"] - first["background_psnr_db"],
        "drift_change": last["colour_drift"] - first["colour_drift"],
        "psnr_within_1db": abs(last["background_psnr_db"] - first["background_psnr_db"]) <= 1.0,
        "cache_bytes_end": s.cache_bytes(),
        "provenance": provenance([loaded.path, loaded.autoencoder_path], command, threads),
    }


def every_second(session, audio: np.ndarray):
    """(frame index, frame) of one frame per second as `session` streams `audio`, PIECE_S s at a time."""
    piece = PIECE_S * AUDIO_SAMPLE_RATE
    for pos in range(0, audio.shape[1], piece):
        for ch in session.push(audio[:, pos : pos + piece]):
            for i, f in enumerate(ch.frames):
                if (ch.first_frame + i) % VIDEO_FPS == 0:
                    yield ch.first_frame + i, f


def outside_mask(shape: tuple[int, int], regions: np.ndarray) -> np.ndarray:
    """(H, W) bool: the canvas pixels outside every (x0, y0, x1, y1) region (end exclusive)."""
    keep = np.ones(shape, bool)
    for x0, y0, x1, y1 in np.round(np.asarray(regions)).astype(int):
        keep[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = False
    return keep


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB, 8-bit) of two equally shaped pixel arrays; IDENTICAL_DB where they are equal."""
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2)) if a.size else 0.0
    return IDENTICAL_DB if mse == 0 else min(IDENTICAL_DB, float(10 * np.log10(255**2 / mse)))


def face_colours(frame: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(N, 3) mean RGB/255 of a frame inside each face region."""
    out = []
    for x0, y0, x1, y1 in np.round(np.asarray(regions)).astype(int):
        patch = frame[max(0, y0) : y1, max(0, x0) : x1].reshape(-1, 3)
        out.append(patch.mean(0) / 255 if len(patch) else np.full(3, np.nan))
    return np.array(out)


def face_regions(codec, scene: Scene) -> np.ndarray:
    """(N, 4) where the faces may change: the picture renderer's regions, else the scene's head boxes
    grown by FACE_MARGIN (a latent model's characters on their canvas)."""
    renderer = getattr(codec, "renderer", None)
    if renderer is not None:
        return renderer.face_regions()
    boxes = scene.canvas_boxes()
    grow = (boxes[:, 2:] - boxes[:, :2]) * FACE_MARGIN
    return np.concatenate([boxes[:, :2] - grow, boxes[:, 2:] + grow], 1)


@torch.no_grad()
def run_picture(
    loaded,
    minutes: float,
    characters: int,
    seed: int,
    threads: int,
    command: str,
    scene: Scene | None,
    scene_name: str | None,
) -> dict:
    """The picture measures: one frame a second scored against the picture as it is generated."""
    from distill.world.dialogue import synthesize_dialogue
    from realtime.bench.picture_scenes import canvas_label, scene_session
    from realtime.scene.scenes import default_scene

    cfg = loaded.generator.cfg
    if scene is None:
        scene = default_scene(characters, seed, cfg.frame_size)
    options = SamplingOptions.defaults(loaded, seed=seed)  # the model's settings
    s, shown = scene_session(loaded.generator, loaded.autoencoder, scene, options)
    t0 = time.perf_counter()
    audio = synthesize_dialogue(shown.n_characters, seconds=minutes * 60, seed=seed).audio.astype(np.float32)
    made = time.perf_counter() - t0
    picture = shown.background if shown.faces else shown.reference  # a latent model's world: its frame 0
    regions = face_regions(s.ae, shown)
    keep = outside_mask(picture.shape[:2], regions)
    outside = picture[keep]
    rest = face_colours(picture, regions)
    kept_idx, psnrs, colours = [], [], []
    t0 = time.perf_counter()
    for idx, f in every_second(s, audio):
        if f.shape != picture.shape:
            raise ValueError(f"frames are {f.shape}, the canvas {picture.shape}")
        kept_idx.append(idx)
        psnrs.append(psnr_db(f[keep], outside))
        colours.append(face_colours(f, regions) - rest)
    wall = time.perf_counter() - t0
    idx, psnr, diff = np.array(kept_idx), np.array(psnrs), np.stack(colours)  # diff: (T, N, 3)
    drift = np.linalg.norm(diff - diff[:1], axis=-1)  # (T, N): how far each face's colour has wandered
    minute = idx // (60 * VIDEO_FPS)
    curve = []
    for m in range(int(np.ceil(minutes))):
        sel = minute == m
        if not sel.any():
            continue
        curve.append(
            {
                "minute": m + 1,
                "background_psnr_db": float(psnr[sel].mean()),
                "background_psnr_min_db": float(psnr[sel].min()),
                "colour_drift": float(np.nanmean(drift[sel])),
                "colour_drift_max": float(np.nanmax(drift[sel])),
            }
        )
    first, last = curve[0], curve[-1]
    frames = s.chunk_index * cfg.chunk_frames
    return {
        "model": str(loaded.path),
        "steps": loaded.steps,
        "window_chunks": loaded.window,
        "machine": f"{platform.processor() or platform.machine()}, {threads} threads",
        "measure": "picture: PSNR outside the face regions and face colour, both against the picture",
        "scene": scene_name or "default",
        "canvas": canvas_label(shown),
        "faces": shown.n_characters,
        "face_regions": np.asarray(regions).round(1).tolist(),
        "identical_db": IDENTICAL_DB,
        "minutes": minutes,
        "characters": shown.n_characters,
        "seed": seed,
        "world_seconds_to_make": made,
        "generation_wall_seconds": wall,
        "frames_generated": int(frames),
        "real_time_factor": frames / VIDEO_FPS / wall,
        "curve": curve,
        "psnr_change_db": last["background_psnr_db"] - first["background_psnr_db"],
        "drift_change": last["colour_drift"] - first["colour_drift"],
        "psnr_within_1db": abs(last["background_psnr_db"] - first["background_psnr_db"]) <= 1.0,
        "cache_bytes_end": s.cache_bytes(),
        "provenance": provenance([loaded.path, loaded.autoencoder_path], command, threads),
    }


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = [r["minute"] for r in res["curve"]]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(m, [r["background_psnr_db"] for r in res["curve"]], "o-")
    ax[0].set_title(
        "PSNR outside the faces vs the picture (dB)"
        if "scene" in res
        else "background PSNR vs reference (dB)"
    )
    ax[1].plot(m, [r["colour_drift"] for r in res["curve"]], "o-", label="mean")
    ax[1].plot(m, [r["colour_drift_max"] for r in res["curve"]], "x--", label="max")
    ax[1].set_title(("face" if "scene" in res else "identity") + " colour drift (RGB/255 L2)")
    ax[1].legend(fontsize=7)
    for a in ax:
        a.set_xlabel("minute of the stream")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped student)")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--characters", type=int, default=2)
    p.add_argument(
        "--scene",
        default=None,
        metavar="NAME_OR_PICTURE",
        help="stream a picture instead of the world dialogue's scene: photo-512, photo-720p "
        "(realtime.bench.picture_scenes), a bundled picture, a .jpg/.png or a scene .json; scored against "
        "the picture outside its faces (a picture needs a rig model)",
    )
    p.add_argument("--seed", type=int, default=121, help="world dialogue seed (held out from training)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="docs/bench/drift_10min.json")


def bench_command(args: argparse.Namespace) -> int:
    if not 1 <= args.minutes <= 10:
        raise BYAError(f"--minutes must be in [1, 10] (the world's longest dialogue), got {args.minutes}")
    loaded = load_model(args.model)
    scene = None
    if args.scene is not None:
        from realtime.bench.picture_scenes import bench_scenes

        [(_, scene)] = bench_scenes(loaded.generator, [args.scene], args.seed)
    res = run(
        loaded,
        args.minutes,
        args.characters,
        args.seed,
        args.threads,
        command_line(args, "bench drift"),
        scene,
        args.scene,
    )
    if "scene" in res:
        print(f"scene {res['scene']}: {res['canvas']}, {res['faces']} face(s); {res['measure']}")
    print(f"{'minute':>6} {'bg PSNR dB':>10} {'drift':>7} {'drift max':>9}")
    for r in res["curve"]:
        print(
            f"{r['minute']:>6} {r['background_psnr_db']:10.2f} {r['colour_drift']:7.4f} {r['colour_drift_max']:9.4f}"
        )
    print(
        f"PSNR change first->last minute {res['psnr_change_db']:+.2f} dB, drift change {res['drift_change']:+.4f}; "
        f"{res['frames_generated']} frames at {res['real_time_factor']:.2f}x real time"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    plot(res, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0
