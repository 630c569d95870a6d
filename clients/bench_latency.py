"""Glass-to-glass latency of `bya serve`: `bya bench latency` (or `python -m clients.bench_latency`).

An in-process `bya serve` (the real LiveServer and Room, 127.0.0.1 only) serves a world scene of 1-4
characters whose mouths are apart. One aiortc WHIP speaker per character speaks short bursts with
silent gaps, characters taking turns; an aiortc WHEP viewer records every frame with its receive time.
Per onset: the time from the sound to the first received frame in which the bound mouth moves, the
stages it went through, and the A/V offset at the viewer (clients.latency_analysis says how). Per run:
frames delivered, their regularity and losses. Repeated per cast size and per denoiser backend (torch;
ONNX Runtime). Each `--scene` (default with a rig model: the 2-face 512x512 photo and the 1-face
1280x720 one of realtime.bench.picture_scenes) adds a run per backend at its canvas size ("scene_runs";
its mouths read where its landmarks put them). Prints a table, writes JSON (machine and load average
included) and PNG plots.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import fractions
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from realtime.bench.machine import command_line as ran_command
from realtime.bench.machine import describe_machine, provenance
from realtime.bench.picture_scenes import add_scene_argument, bench_scenes
from realtime.engine.threads import live_threads
from realtime.errors import BYAError
from realtime.media import MAX_CHARACTERS, MIN_CHARACTERS

BACKENDS = ("torch", "onnx")
DEFAULT_OUT = "docs/bench/latency_cpu.json"
TARGETS = {"p50_ms": 250, "p95_ms": 350, "fps": 24, "av_ms": 40}  # issue 7, 2 characters, this CPU


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        help="generator checkpoint (default: the shipped student; the teacher at 1 step before it ships)",
    )
    p.add_argument(
        "--steps", type=int, help="sampling steps (default: the checkpoint's; 1 for the teacher stand-in)"
    )
    p.add_argument(
        "--characters",
        type=int,
        nargs="*",
        default=[1, 2, 3, 4],
        help="world-scene cast sizes to run (default 1 2 3 4; none: only the --scene runs)",
    )
    p.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), help=f"denoiser backends: {', '.join(BACKENDS)}"
    )
    p.add_argument("--onsets", type=int, default=20, help="speech onsets per run (default 20)")
    p.add_argument("--gap", type=float, default=1.4, help="silence between bursts, seconds (default 1.4)")
    p.add_argument("--seed", type=int, default=0, help="first world-scene seed tried (default 0)")
    p.add_argument(
        "--threads",
        type=int,
        default=live_threads(),
        help="torch / ONNX Runtime threads (default: cores - 1)",
    )
    p.add_argument(
        "--out", default=DEFAULT_OUT, help=f"JSON file; plots go beside it (default {DEFAULT_OUT})"
    )
    add_scene_argument(p)


def check_args(args: argparse.Namespace) -> None:
    bad = [n for n in args.characters if not MIN_CHARACTERS <= n <= MAX_CHARACTERS]
    if bad:
        raise BYAError(f"--characters must be in {MIN_CHARACTERS}-{MAX_CHARACTERS}, got {bad}")
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        raise BYAError(f"--backends must be among {', '.join(BACKENDS)}, got {unknown}")
    if not 1 <= args.onsets <= 500:
        raise BYAError(f"--onsets must be in [1, 500], got {args.onsets}")
    if not 0.8 <= args.gap <= 10:
        raise BYAError(
            f"--gap must be in [0.8, 10] seconds (the mouths must settle between bursts), got {args.gap}"
        )
    if not 1 <= args.threads <= 256:
        raise BYAError(f"--threads must be in [1, 256], got {args.threads}")
    if args.steps is not None and not 1 <= args.steps <= 100:
        raise BYAError(f"--steps must be in [1, 100], got {args.steps}")
    if Path(args.out).suffix != ".json" or (
        Path(args.out).parent.exists() and not Path(args.out).parent.is_dir()
    ):
        raise BYAError(f"--out must be a .json file path, got {args.out!r}")


def shipped_model(path: str | None, steps: int | None):
    """(LoadedModel, steps, note): what `bya serve` would run (realtime/model/default_model.py decides)."""
    from realtime.model.default_model import load_model

    loaded = load_model(path)
    note = f"{loaded.path.name} at {steps or loaded.steps} step(s), {loaded.window} context chunk(s)"
    return loaded, steps or loaded.steps, note


def with_denoiser(loaded, denoiser):
    """The same model whose per-chunk step runs on another backend (LoadedModel.denoiser)."""
    return dataclasses.replace(loaded, denoiser=denoiser)


def vad_cost_ms(repeat: int = 200) -> float:
    """Mean ms of the engine's default VAD (webrtcvad) on one 20 ms frame of speech-like noise."""
    from realtime.audio.vad import VoiceActivity
    from realtime.media import AUDIO_SAMPLE_RATE

    vad = VoiceActivity("webrtc", 2)
    x = (np.random.default_rng(0).standard_normal(AUDIO_SAMPLE_RATE // 50 * repeat) * 0.1).astype(np.float32)
    start = time.perf_counter()
    vad.process(x)
    return 1000.0 * (time.perf_counter() - start) / repeat


def vp8_encode_ms(images: list[np.ndarray]) -> float:
    """Mean ms aiortc's VP8 encoder (what WHEP negotiates with aiortc) takes per frame of these images."""
    import av
    from aiortc.codecs import get_encoder
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    encoder = get_encoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96))
    times = []
    for i, image in enumerate(images):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = i * 3600, fractions.Fraction(1, 90000)
        start = time.perf_counter()
        encoder.encode(frame)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.mean(times[5:] or times))


def run_one(
    loaded,
    steps: int,
    n: int,
    backend: str,
    denoiser,
    args: argparse.Namespace,
    scene=None,  # a Scene to serve (its faces are the characters); None: a world scene of n, mouths apart
    label: str | None = None,  # the scene's name in the results (its --scene value)
) -> dict:
    """One cast size (or one scene) on one backend: a live session, analysed."""
    from clients.latency_analysis import analyze_onsets, summarize
    from clients.latency_session import record_session
    from clients.mouth_motion import PICTURE_MOTION, MotionConfig, mouth_boxes, separated_world_scene
    from clients.speech_bursts import speech_bursts
    from realtime.bench.picture_scenes import canvas_label
    from realtime.engine.room import Room

    motion = MotionConfig()
    if scene is None:
        scene, seed = separated_world_scene(n, args.seed, loaded.generator.cfg.frame_size, motion.pad_px)
    else:
        n, seed = scene.n_characters, args.seed
    tracks, bursts = speech_bursts(n, args.onsets, gap_s=args.gap)
    model = loaded if denoiser is None else with_denoiser(loaded, denoiser)
    room = Room(model, scene, steps=steps, seed=seed)
    boxes = mouth_boxes(room.scene, seed)  # where the room draws them (a rig model: on its picture)
    if room.scene.faces:  # a picture's faces sway while idle: read its mouths blurred
        motion = PICTURE_MOTION
    load_before = os.getloadavg()
    record = asyncio.run(record_session(room, tracks, bursts, boxes))
    onsets = analyze_onsets(record, motion)
    where = {} if label is None else {"scene": label, "faces": n}
    result = {
        **where,
        "characters": n,
        "backend": backend,
        "canvas": canvas_label(room.scene),
        "scene_seed": seed,
        "names": list(room.scene.names),
        "mouth_boxes": np.round(boxes, 1).tolist(),
        "motion": dataclasses.asdict(motion),
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        **summarize(record, onsets),
        "video_encode_ms": round(vp8_encode_ms([v.image for v in record.video[:60]]), 2),
        "per_onset": onsets,
    }
    return result


def run(args: argparse.Namespace) -> dict:
    import torch

    from clients.latency_analysis import STAGE_NOTES

    torch.set_num_threads(args.threads)
    loaded, steps, note = shipped_model(args.model, args.steps)
    scenes = bench_scenes(loaded.generator, args.scene, args.seed)  # built and checked before any run
    if not args.characters and not scenes:
        raise BYAError("nothing to run: give --characters, or --scene (pictures need a rig model)")
    results, scene_results = [], []
    with tempfile.TemporaryDirectory(prefix="bya-latency-") as tmp:
        for backend in args.backends:
            denoiser = None
            if backend == "onnx":
                from realtime.model.onnx_step import OnnxDenoiser, export_step

                denoiser = OnnxDenoiser(
                    export_step(loaded.generator, Path(tmp) / "step.onnx"), threads=args.threads
                )
            for n in args.characters:
                print(f"bench latency: {n} character(s), {backend} ...", flush=True)
                results.append(run_one(loaded, steps, n, backend, denoiser, args))
                print_row(results[-1])
            for spec, scene in scenes:
                print(f"bench latency: scene {spec}, {backend} ...", flush=True)
                scene_results.append(run_one(loaded, steps, 0, backend, denoiser, args, scene, spec))
                print_row(scene_results[-1])
    return {
        "machine": {
            **describe_machine(args.threads),
            "note": "the CPU is shared: see each run's load_average (a training run may be using it)",
        },
        "model": {"path": str(loaded.path), "steps": steps, "note": note},
        "vad_ms_per_20ms": round(vad_cost_ms(), 3),
        "vad_note": "the engine's VAD flags speech for stats and binding; the generator hears the raw audio, "
        "so the VAD is off the latency path (its cost is paid on the room's clock tick)",
        "targets": TARGETS,
        "stage_notes": STAGE_NOTES,
        "command": command_line(args),
        "provenance": provenance(
            [loaded.path, loaded.autoencoder_path], ran_command(args, "bench latency"), args.threads
        ),
        "runs": results,
        "scene_runs": scene_results,
    }


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run."""
    words = ["bya bench latency"]
    for key in ("model", "steps", "characters", "backends", "onsets", "gap", "seed", "threads", "out"):
        value = getattr(args, key)
        if value is not None:
            words.append(f"--{key} {' '.join(map(str, value)) if isinstance(value, list) else value}")
    words += [f"--scene {spec}" for spec in getattr(args, "scene", None) or ()]
    return " ".join(words)


def print_row(r: dict) -> None:
    g, p, d = r["glass_to_glass_ms"], r["pipeline_ms"], r["delivery"]
    av = r["av_offset_ms"]["same_instant"]
    valid = {True: "", False: " (mouth not valid)", None: " (no control mouth)"}[r["mouth"]["valid"]]
    where = f"{r['scene']} ({r['canvas']}) " if "scene" in r else ""
    print(
        f"  {where}N={r['characters']} {r['backend']:6} glass p50 {g.get('p50')} p95 {g.get('p95')} max {g.get('max')}{valid} | "
        f"pipeline p50 {p.get('p50')} p95 {p.get('p95')} | fps {d['fps_delivered']} fresh {d['fps_fresh']} | "
        f"A/V {av.get('mean')} ms | detected {r['mouth']['detected_rate']:.0%} controls {r['mouth']['controls_moved_rate']}",
        flush=True,
    )


def bench_command(args: argparse.Namespace) -> int:
    from clients.latency_report import print_table, write_plots

    check_args(args)
    result = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    plots = write_plots(result, out.with_suffix(""))
    print_table(result)
    print(f"wrote {out} and {', '.join(str(p) for p in plots)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m clients.bench_latency", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return bench_command(args)
    except BYAError as exc:
        print(f"bench latency: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
