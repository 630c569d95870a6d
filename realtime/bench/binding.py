"""Binding benchmark: does a listening character stay still while another character speaks? `bya bench binding`.

For each cast size, a world scene whose mouths are apart (clients.mouth_motion.separated_world_scene)
is rendered through the engine's file mode (realtime.outputs.render.render_audio: the live pipeline without its
clock) while ONE character speaks bursts of speech and the others' streams are silent; every character
takes the speaking turn in its own run. Per character and run, the mouth region's departure from its idle
look is averaged over speech frames and over silent frames (grey levels, clients.mouth_motion):

- own ratio: the speaker's speech / silence activity (how much its mouth follows its voice, > 1);
- leak: how much more a listener's mouth moves during the other's speech than in silence, as a share of
  how much more the speaker's own mouth does: (listener speech - listener silence) / (speaker speech -
  speaker silence), floored at 0. 0: the voice does not reach the listener (its blinks, nods and sway go
  on in both, as the ground truth's listeners' do); 1: the listener mouths the words as much as the
  speaker.

Listener isolation on (the default) and off (one pass, the baseline) run on the same scenes, audio and
noise. Prints a table and writes JSON naming the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from realtime.bench.machine import command_line, provenance
from realtime.errors import BYAError
from realtime.media import SAMPLES_PER_FRAME, WEBRTC_AUDIO_RATE

PAD_PX = 2  # mouth boxes grown by this much (clients.mouth_motion)


def leak(listener: dict, speaker: dict) -> float:
    """The listener's voice-driven motion as a share of the speaker's (activity_contrast dicts)."""
    return max(0.0, listener["speech"] - listener["silence"]) / max(
        speaker["speech"] - speaker["silence"], 1e-6
    )


def bursts_16k(onsets: int, seed: int) -> np.ndarray:
    """(n,) float32 16 kHz speech bursts (one voice) with silences between them."""
    from clients.speech_bursts import speech_bursts
    from realtime.audio.resampler import PolyphaseResampler

    track, _ = speech_bursts(1, onsets, gap_s=1.2, lead_s=1.0, tail_s=0.4)
    return PolyphaseResampler(WEBRTC_AUDIO_RATE, 16_000).push(track[0].astype(np.float32))


def measure_case(loaded, n: int, speaker: int, scene_seed: int, onsets: int, isolate: bool) -> dict:
    """Render one scene with character `speaker` speaking; mouth activity of every character."""
    from clients.mouth_motion import (
        activity_contrast,
        crop,
        scene_mouth_boxes,
        separated_world_scene,
        speech_labels,
    )
    from realtime.outputs.render import render_audio
    from realtime.stream.options import SamplingOptions

    scene, seed = separated_world_scene(n, scene_seed, loaded.generator.cfg.frame_size, PAD_PX)
    boxes = scene_mouth_boxes(scene, seed)
    voice = bursts_16k(onsets, seed)
    tracks = np.zeros((n, len(voice)), np.float32)
    tracks[speaker] = voice
    options = SamplingOptions.defaults(loaded, seed=seed, isolation="on" if isolate else "off")
    start = time.perf_counter()
    out = render_audio(loaded, scene, tracks, options)
    wall = time.perf_counter() - start
    label = speech_labels(voice, SAMPLES_PER_FRAME, 0, len(out.frames))
    keep = label >= 0
    speech = label[keep] == 1
    frames = out.frames[keep]
    act = [activity_contrast(crop(frames, boxes[k], PAD_PX), speech) for k in range(n)]
    own = act[speaker]
    listeners = [k for k in range(n) if k != speaker]
    leaks = [leak(act[k], own) for k in listeners]
    return {
        "characters": n,
        "speaker": speaker,
        "scene_seed": seed,
        "isolation": "on" if isolate else "off",
        "own_ratio": own["ratio"],
        "own_speech": own["speech"],
        "listener_ratio_max": max(act[k]["ratio"] for k in listeners),
        "leak_max": float(max(leaks)),
        "leak_mean": float(np.mean(leaks)),
        "activity": act,
        "chunk_ms": float(np.mean([t["total_ms"] for t in out.timings_ms])),
        "wall_s": wall,
    }


def summarize(rows: list[dict]) -> dict:
    out = {}
    for mode in ("on", "off"):
        sel = [r for r in rows if r["isolation"] == mode]
        if sel:
            out[mode] = {
                "own_ratio_mean": float(np.mean([r["own_ratio"] for r in sel])),
                "own_speech_mean": float(np.mean([r["own_speech"] for r in sel])),
                "leak_mean": float(np.mean([r["leak_mean"] for r in sel])),
                "leak_max": float(max(r["leak_max"] for r in sel)),
                "listener_ratio_max": float(max(r["listener_ratio_max"] for r in sel)),
                "chunk_ms_mean": float(np.mean([r["chunk_ms"] for r in sel])),
            }
    if "on" in out and "off" in out:
        out["leak_ratio_on_vs_off"] = out["on"]["leak_mean"] / max(out["off"]["leak_mean"], 1e-9)
        out["chunk_cost_on_vs_off"] = out["on"]["chunk_ms_mean"] / max(out["off"]["chunk_ms_mean"], 1e-9)
    return out


def run(args: argparse.Namespace) -> dict:
    from realtime.model.default_model import load_model

    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    rows = []
    for n in args.characters:
        for speaker in range(n):
            for isolate in (True, False):
                row = measure_case(loaded, n, speaker, args.seed, args.onsets, isolate)
                rows.append(row)
                print(
                    f"{n:>2} {speaker:>7} {row['isolation']:>9} {row['own_ratio']:>9.2f} {row['own_speech']:>9.2f} "
                    f"{row['leak_mean']:>9.3f} {row['leak_max']:>8.3f} {row['listener_ratio_max']:>12.2f} "
                    f"{row['chunk_ms']:>8.1f}",
                    flush=True,
                )
    return {
        "model": loaded.path.name,
        "steps": loaded.steps,
        "window_chunks": loaded.window,
        "onsets": args.onsets,
        "rows": rows,
        "summary": summarize(rows),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "command": "bya bench binding " + " ".join(args.argv),
        "provenance": provenance(
            [loaded.path, loaded.autoencoder_path], command_line(args, "bench binding"), args.threads
        ),
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="generator checkpoint (default: the shipped model)")
    p.add_argument("--characters", type=int, nargs="+", default=[2, 3, 4], help="cast sizes (each 2-4)")
    p.add_argument("--onsets", type=int, default=6, help="speech bursts per run")
    p.add_argument("--seed", type=int, default=0, help="first world seed searched for a separated scene")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="out/bench_binding.json")


def bench_command(args: argparse.Namespace) -> int:
    if any(not 2 <= n <= 4 for n in args.characters):
        raise BYAError(
            f"--characters must each be 2-4 (one speaks, the others listen), got {args.characters}"
        )
    if not 2 <= args.onsets <= 40:
        raise BYAError(f"--onsets must be in [2, 40], got {args.onsets}")
    if args.threads < 1:
        raise BYAError(f"--threads must be >= 1, got {args.threads}")
    args.argv = [f"--characters {' '.join(map(str, args.characters))}", f"--onsets {args.onsets}"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"{'N':>2} {'speaker':>7} {'isolation':>9} {'own ratio':>9} {'own act':>9} {'leak':>9} {'leak max':>8} "
        f"{'listener max':>12} {'chunk ms':>8}"
    )
    rep = run(args)
    s = rep["summary"]
    for mode in ("on", "off"):
        if mode in s:
            m = s[mode]
            print(
                f"isolation {mode:>3}: own ratio {m['own_ratio_mean']:.2f}, leak {m['leak_mean']:.3f} "
                f"(max {m['leak_max']:.3f}), chunk {m['chunk_ms_mean']:.1f} ms"
            )
    if "leak_ratio_on_vs_off" in s:
        print(
            f"leak on/off: {s['leak_ratio_on_vs_off']:.3f}; chunk cost on/off: {s['chunk_cost_on_vs_off']:.2f}x"
        )
    out.write_text(json.dumps(rep, indent=1))
    print(f"wrote {out}")
    return 0
