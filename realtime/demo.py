"""`bya demo`: the first five minutes. Builds a dialogue scene, renders it, writes an MP4 and scores it.

Until the distilled generator ships, the video is the world's ground-truth render: it shows what the
engine will generate and proves the whole data and evaluation path on a fresh machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from distill.clip import check_character_count, make_clip
from distill.shards import ensure_writable_dir, save_clip
from realtime.errors import BYAError
from realtime.media import SUPPORTED_FRAME_SIZES
from realtime.video_file import write_mp4


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="out/demo", help="output folder")
    p.add_argument("--characters", type=int, default=2, help="characters in the scene (1-4)")
    p.add_argument("--seconds", type=float, default=12.0, help="length of the dialogue")
    p.add_argument("--seed", type=int, default=7, help="scene and dialogue seed")
    p.add_argument("--size", type=int, default=256, help=f"frame size, one of {SUPPORTED_FRAME_SIZES}")


def demo_command(args: argparse.Namespace) -> int:
    check_character_count(args.characters)
    if args.size not in SUPPORTED_FRAME_SIZES:
        raise BYAError(f"--size must be one of {SUPPORTED_FRAME_SIZES}, got {args.size}")
    if not 0 < args.seconds <= 600:
        raise BYAError(f"--seconds must be in (0, 600], got {args.seconds}")
    out = Path(args.out)
    ensure_writable_dir(out)
    start = time.perf_counter()
    clip = make_clip(args.seed, n_characters=args.characters, size=args.size, seconds=args.seconds)
    made = time.perf_counter() - start
    video = write_mp4(out / "demo.mp4", clip.render.frames, clip.dialogue.mix)
    save_clip(clip, out / "clip.npz")
    names = [c.get("name", f"character {i}") for i, c in enumerate(clip.scene["characters"])]
    print(
        f"scene: {len(names)} characters ({', '.join(names)}), {clip.n_frames} frames at {clip.size} px, made in {made:.1f} s"
    )
    for seg in clip.dialogue.segments:
        print(f"  {seg.start_s:6.2f}-{seg.end_s:6.2f} s  {names[seg.character]:>12} ({seg.kind}): {seg.text}")

    from distill.harness import evaluate, save_plot

    report = evaluate(clip.render.frames, clip, masks=clip.render.masks)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    save_plot(report, clip, out / "report.png")
    print(
        f"wrote {video} (video + mixed audio), {out / 'clip.npz'} (ground truth), {out / 'report.json'}, {out / 'report.png'}"
    )
    summary = report.get("summary", {})
    if summary:
        print(
            "scores: "
            + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())
        )
    return 0
