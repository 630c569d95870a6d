"""Benchmark of world generation: how fast dialogues, renders and shards are made on this machine.

Prints a table and writes JSON. The baseline in the same run is real time (25 frames of video per
second): a ratio above 1 means the world can feed training faster than a live stream would.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from distill.data.shards import SynthSpec, clip_seed, save_clip
from distill.data.synth import synthesize_dataset
from distill.world.clip import Clip
from distill.world.dialogue import synthesize_dialogue
from realtime.media import VIDEO_FPS
from realtime.scene.cartoon.characters import sample_scene
from realtime.scene.cartoon.render import render_scene


def _time(fn, repeat: int) -> tuple[float, object]:
    out, start = None, time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - start) / repeat, out


def bench(
    sizes: tuple[int, ...], characters: tuple[int, ...], seconds: float, clips: int, workers: int
) -> dict:
    rows = []
    for size in sizes:
        for n in characters:
            seed = clip_seed(1234, size * 10 + n)
            t_scene, scene = _time(partial(sample_scene, n, seed=seed), 1)
            t_cold, dialogue = _time(partial(synthesize_dialogue, n, seconds=seconds, seed=seed), 1)
            t_warm, dialogue = _time(partial(synthesize_dialogue, n, seconds=seconds, seed=seed), 2)
            t_render, render = _time(partial(render_scene, scene, dialogue, size=size, seed=seed), 2)
            clip = Clip(seed=seed, dialogue=dialogue, render=render, scene=scene)
            with tempfile.TemporaryDirectory() as tmp:
                t_save, _ = _time(partial(save_clip, clip, Path(tmp) / "c.npz"), 1)
            frames = dialogue.n_frames
            rows.append(
                {
                    "size": size,
                    "characters": n,
                    "frames": frames,
                    "dialogue_cold_ms": 1e3 * t_cold,
                    "dialogue_cached_ms": 1e3 * t_warm,
                    "render_fps": frames / t_render,
                    "save_fps": frames / t_save,
                    "clip_fps": frames / (t_scene + t_cold + t_render + t_save),
                }
            )
    pipeline = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            s = synthesize_dataset(
                tmp,
                SynthSpec(clips=clips, seed=7, size=size, seconds=seconds),
                workers=workers,
                progress=False,
            )
        pipeline.append(
            {
                "size": size,
                "workers": workers,
                "clips": clips,
                **{k: s[k] for k in ("frames_per_s", "clips_per_s", "realtime_factor", "bytes")},
            }
        )
    return {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "seconds_per_clip": seconds,
        "baseline": f"real time = {VIDEO_FPS} frames/s",
        "per_stage": rows,
        "pipeline": pipeline,
    }


def print_table(result: dict) -> None:
    print(
        f"world generation on {result['machine']} ({result['seconds_per_clip']} s clips; baseline {result['baseline']})"
    )
    print(
        f"{'size':>5} {'chars':>5} {'dialogue cold ms':>16} {'cached ms':>9} {'render fps':>10} {'save fps':>9} {'clip fps':>9} {'x real time':>11}"
    )
    for r in result["per_stage"]:
        print(
            f"{r['size']:>5} {r['characters']:>5} {r['dialogue_cold_ms']:>16.0f} {r['dialogue_cached_ms']:>9.0f} "
            f"{r['render_fps']:>10.0f} {r['save_fps']:>9.0f} {r['clip_fps']:>9.0f} {r['clip_fps'] / VIDEO_FPS:>11.1f}"
        )
    print("\n`bya data synth` end to end (random 1-4 characters, compressed shards):")
    print(f"{'size':>5} {'workers':>7} {'clips':>5} {'frames/s':>9} {'x real time':>11} {'MB/clip':>8}")
    for p in result["pipeline"]:
        print(
            f"{p['size']:>5} {p['workers']:>7} {p['clips']:>5} {p['frames_per_s']:>9.0f} {p['realtime_factor']:>11.1f} {p['bytes'] / 1e6 / p['clips']:>8.2f}"
        )


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--characters", type=int, nargs="+", default=[2, 4])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--clips", type=int, default=8, help="clips for the end-to-end `data synth` measurement")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", default="docs/bench/data_synth.json", help="where to write the JSON result")


def bench_command(args: argparse.Namespace) -> int:
    from realtime.bench.machine import command_line, provenance

    result = bench(tuple(args.sizes), tuple(args.characters), args.seconds, args.clips, args.workers)
    result["provenance"] = provenance([], command_line(args, "bench data"))  # model-independent
    print_table(result)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.json}")
    return 0
