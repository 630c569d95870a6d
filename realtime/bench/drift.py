"""Long-stream drift benchmark: does a 10-minute session stay where it started? `bya bench drift`.

One session of the shipped student generates a world dialogue of `--minutes` minutes chunk after chunk
through its rolling cache (the live path, not the offline sampler). Once per second a frame is kept and
scored against the world's ground truth at that frame: background PSNR against the reference background
and each character's identity colour drift (distill.eval.metrics.colour_drift). The per-minute curve is
printed, saved as JSON and plotted; the verdict compares the last minute with the first.
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
from realtime.media import SAMPLES_PER_FRAME, VIDEO_FPS
from realtime.model.default_model import load_model
from realtime.stream.options import SamplingOptions
from realtime.stream.session import StreamingGenerator


@torch.no_grad()
def run(
    model_path: str | None,
    minutes: float,
    characters: int,
    seed: int,
    threads: int,
    command: str = "bya bench drift",
) -> dict:
    torch.set_num_threads(threads)
    loaded = load_model(model_path)
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
    keep_every = VIDEO_FPS  # one scored frame per second
    kept_idx, kept = [], []
    piece = cfg.chunk_frames * SAMPLES_PER_FRAME * 25  # 2 s of audio per push
    t0 = time.perf_counter()
    for pos in range(0, audio.shape[1], piece):
        for ch in s.push(audio[:, pos : pos + piece]):
            for i, f in enumerate(ch.frames):
                idx = ch.first_frame + i
                if idx % keep_every == 0:
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


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = [r["minute"] for r in res["curve"]]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(m, [r["background_psnr_db"] for r in res["curve"]], "o-")
    ax[0].set_title("background PSNR vs reference (dB)")
    ax[1].plot(m, [r["colour_drift"] for r in res["curve"]], "o-", label="mean")
    ax[1].plot(m, [r["colour_drift_max"] for r in res["curve"]], "x--", label="max")
    ax[1].set_title("identity colour drift (RGB/255 L2)")
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
    p.add_argument("--seed", type=int, default=121, help="world dialogue seed (held out from training)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="docs/bench/drift_10min.json")


def bench_command(args: argparse.Namespace) -> int:
    if not 1 <= args.minutes <= 10:
        raise BYAError(f"--minutes must be in [1, 10] (the world's longest dialogue), got {args.minutes}")
    res = run(
        args.model,
        args.minutes,
        args.characters,
        args.seed,
        args.threads,
        command_line(args, "bench drift"),
    )
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
