"""How much the evaluation harness itself loses: `bya bench harness`.

Every generated clip is scored by reading mouths where the mouth tracker finds them (distill.eval.mouth_tracker)
with the mouth reader (distill.eval.mouth_reader), and every generator works through the autoencoder. This
measures both losses on the held-out dialogues, against the ground truth itself: lip sync and binding of
the true frames read at the world's own mouth boxes (the reader alone), read where the tracker puts them
(reader + tracker), and the same for the true frames through the autoencoder (the ceiling a generator on
those latents can reach), plus the tracker's position error on frames where a mouth is visible.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from distill.eval.generator import EVAL_SEEDS, EXTENDED_CHARACTERS, EXTENDED_SEEDS
from distill.eval.harness import evaluate, jsonable, write_json
from distill.eval.mouth_reader import VISIBLE_MIN, load_reader, mouth_visibility
from distill.eval.mouth_tracker import track_mouths
from distill.world.clip import make_clip
from realtime.bench.machine import command_line, provenance
from realtime.errors import BYAError
from realtime.model.autoencoder import load_autoencoder, roundtrip
from realtime.model.spec import SHIPPED

OFF_PX = 3.0  # a tracked mouth centre this far from the truth reads a different part of the face
ROWS = (
    ("truth, truth boxes", False, "truth"),
    ("truth, tracked", False, "tracked"),
    ("truth via AE, truth boxes", True, "truth"),
    ("truth via AE, tracked", True, "tracked"),
)


def _centres(b: np.ndarray) -> np.ndarray:
    return np.stack(((b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2), -1)


def measure(autoencoder: str, seeds, characters, seconds: float) -> dict:
    ae, reader = load_autoencoder(autoencoder), load_reader()
    per = {name: [] for name, _, _ in ROWS}
    errors, off = [], []
    for seed, n in zip(seeds, characters, strict=True):
        clip = make_clip(seed, n_characters=n, size=128, seconds=seconds)
        r = clip.render
        recon = roundtrip(ae, r.frames)
        for name, through_ae, boxes in ROWS:
            rep = evaluate(recon if through_ae else r.frames, clip, reader=reader, mouths=boxes)
            per[name].append(
                {
                    "seed": seed,
                    "lip_sync_r": rep["lip_sync"]["r_mean"],
                    "mouth_motion": rep["lip_sync"]["mouth_motion_mean"],
                    "auc_own": rep["binding"]["auc_own_mean"],
                    "auc_other": rep["binding"]["auc_other_mean"],
                }
            )
        tracked = track_mouths(r.frames, r.frames[0], r.mouth_boxes[0], r.masks[0])
        err = np.linalg.norm(_centres(tracked) - _centres(r.mouth_boxes), axis=-1)  # (T, N) px
        visible = mouth_visibility(r.masks, r.mouth_boxes).T >= VISIBLE_MIN  # (T, N)
        errors.append(err[visible])
        off.append(float((err[visible] > OFF_PX).mean()))
    summary = {
        name: {
            k: float(np.nanmean([row[k] for row in rows], dtype=np.float64))
            for k in ("lip_sync_r", "mouth_motion", "auc_own", "auc_other")
        }
        for name, rows in per.items()
    }
    every = np.concatenate(errors)
    return {
        "autoencoder": autoencoder,
        "seeds": list(seeds),
        "clip_seconds": seconds,
        "summary": summary,
        "clips": per,
        "tracker": {
            "median_error_px": float(np.median(every)),
            "p95_error_px": float(np.percentile(every, 95)),
            "visible_frames_off_share": float(np.mean(off)),
            "off_px": OFF_PX,
        },
        "machine": f"{torch.get_num_threads()} torch threads, CPU",
    }


def table(rep: dict) -> str:
    lines = [
        "| frames, mouths read at | lip-sync r | mouth motion | AUC own | AUC other |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in rep["summary"].items():
        lines.append(
            f"| {name} | {s['lip_sync_r']:.3f} | {s['mouth_motion']:.3f} | {s['auc_own']:.3f} | {s['auc_other']:.3f} |"
        )
    t = rep["tracker"]
    lines.append(
        f"\ntracker error on visible mouths: median {t['median_error_px']:.2f} px, p95 {t['p95_error_px']:.2f} px;"
        f" share of clips' visible frames off by > {t['off_px']:.0f} px: {t['visible_frames_off_share']:.3f}"
    )
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--autoencoder", default=str(SHIPPED.autoencoder_path))
    p.add_argument("--extended", action="store_true", help="the 18 held-out dialogues (default: the six)")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--out", default="runs/bench/harness.json")


def bench_command(args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        raise BYAError(f"--seconds must be positive, got {args.seconds}")
    seeds = EXTENDED_SEEDS if args.extended else EVAL_SEEDS
    start = time.perf_counter()
    rep = measure(args.autoencoder, seeds, EXTENDED_CHARACTERS[: len(seeds)], args.seconds)
    rep["wall_seconds"] = time.perf_counter() - start
    rep["provenance"] = provenance([args.autoencoder], command_line(args, "bench harness"))
    print(table(rep))
    print(f"wrote {write_json(jsonable(rep), args.out)}")
    return 0
