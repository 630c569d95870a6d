"""Streaming benchmark: sustained real-time generation with the rolling cache: `bya bench stream`.

A session is fed a world dialogue's per-character audio at the media clock (paced: audio "arrives" as
wall time passes) and generates chunk after chunk with the shipped student for `--seconds` of video. It
reports frames per second, the real-time factor, and per chunk the latency from the moment the chunk's
audio was complete (its own 80 ms, and separately including the lookahead it waits for) to its frames
being decoded, with the per-stage breakdown. The teacher at its step count runs unpaced in the same run
as the baseline (ratio). A 256 px variant of the same architecture gives the speed at 256x256. Each
`--scene` (default with a rig model: the 2-face 512x512 photo and the 1-face 1280x720 one of
realtime.bench.picture_scenes) adds a paced row at its canvas size ("scenes" in the JSON).
Prints a table, writes JSON naming the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from distill.world.clip import make_clip
from realtime.audio.binding import add_isolation_argument
from realtime.bench.machine import command_line, provenance
from realtime.bench.picture_scenes import add_scene_argument, bench_scenes, scene_session
from realtime.errors import BYAError
from realtime.media import AUDIO_SAMPLE_RATE, FRAME_MS, SAMPLES_PER_FRAME
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.default_model import TEACHER, load_model
from realtime.model.generator import Generator
from realtime.scene.scenes import Scene, default_scene
from realtime.stream.options import SamplingOptions
from realtime.stream.session import StreamingGenerator

SEED = 11  # the dialogue and noise of every run (one fixed clip, so runs compare)

BLOCK_MS = 20  # audio arrives in 20 ms blocks, as WebRTC delivers it


def _session(
    model,
    ae,
    seconds: float,
    characters: int,
    options: SamplingOptions,
    scene: Scene | None = None,  # None: the world dialogue's own scene of `characters`
) -> tuple[StreamingGenerator, np.ndarray, tuple[int, int]]:
    """The session, its (N, samples) audio and the (W, H) of the frames it makes."""
    if scene is None and model.cfg.output != "rig":
        clip = make_clip(options.seed, n_characters=characters, size=model.cfg.frame_size, seconds=seconds)
        s = StreamingGenerator(model, ae, clip.render.frames[0], clip.render.masks[0], options=options)
        return s, clip.dialogue.audio.astype(np.float32), (clip.size, clip.size)
    from distill.world.dialogue import synthesize_dialogue

    if scene is None:  # a rig model: the engine's default scene of that cast, shown as its picture
        scene = default_scene(characters, options.seed, model.cfg.frame_size)
    s, shown = scene_session(model, ae, scene, options)
    audio = synthesize_dialogue(shown.n_characters, seconds=seconds, seed=options.seed).audio
    h, w = shown.background.shape[:2] if shown.faces else (model.cfg.frame_size,) * 2
    return s, audio.astype(np.float32), (w, h)


def run_paced(
    model,
    ae,
    seconds: float,
    characters: int,
    options: SamplingOptions,  # steps, window, isolation, guidance; its seed picks the dialogue too
    scene: Scene | None = None,  # a scene to stream (its faces are the characters); None: the world's
) -> dict:
    """Feed audio at the wall clock; measure whether frames keep up and how late each chunk is."""
    s, audio, canvas = _session(model, ae, seconds, characters, options, scene)
    steps = options.steps
    block = AUDIO_SAMPLE_RATE * BLOCK_MS // 1000
    c = model.cfg.chunk_frames
    chunk_samples = c * SAMPLES_PER_FRAME
    lat_own, lat_all, stages = [], [], []
    start = time.perf_counter()
    sent = 0
    frames = 0
    while sent < audio.shape[1]:
        due = start + (sent + block) / AUDIO_SAMPLE_RATE  # when this block has fully "arrived"
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        out = s.push(audio[:, sent : sent + block])
        sent += block
        now = time.perf_counter() - start
        for ch in out:
            frames += len(ch.frames)
            own_end = (ch.index + 1) * chunk_samples / AUDIO_SAMPLE_RATE
            needed = s.samples_needed(ch.index) / AUDIO_SAMPLE_RATE
            lat_own.append(1e3 * (now - own_end))
            lat_all.append(1e3 * (now - needed))
            stages.append(ch.timings_ms)
    wall = time.perf_counter() - start
    video_s = frames * FRAME_MS / 1000
    return {
        "mode": "paced",
        "characters": s.characters,
        "canvas": f"{canvas[0]}x{canvas[1]}",
        "steps": steps,
        "video_seconds": video_s,
        "wall_seconds": wall,
        "frames_per_second": frames / wall,
        "real_time_factor": video_s / wall,
        "latency_from_chunk_audio_ms": _pcts(lat_own),
        "latency_after_lookahead_ms": _pcts(lat_all),
        "stages_ms": {k: float(np.mean([st[k] for st in stages])) for k in stages[0]},
        "lookahead_wait_ms": 1e3 * (s.samples_needed(0) - chunk_samples) / AUDIO_SAMPLE_RATE,
    }


def run_unpaced(
    model,
    ae,
    seconds: float,
    characters: int,
    options: SamplingOptions,  # steps, window, isolation, guidance; its seed picks the dialogue too
    scene: Scene | None = None,  # a scene to stream (its faces are the characters); None: the world's
) -> dict:
    """All audio at once: how fast chunks can be made back to back (throughput)."""
    s, audio, canvas = _session(model, ae, seconds, characters, options, scene)
    steps = options.steps
    start = time.perf_counter()
    chunks = s.push(audio) + s.flush()
    wall = time.perf_counter() - start
    frames = sum(len(ch.frames) for ch in chunks)
    return {
        "mode": "unpaced",
        "characters": s.characters,
        "canvas": f"{canvas[0]}x{canvas[1]}",
        "steps": steps,
        "video_seconds": frames * FRAME_MS / 1000,
        "wall_seconds": wall,
        "frames_per_second": frames / wall,
        "real_time_factor": frames * FRAME_MS / 1000 / wall,
        "stages_ms": {k: float(np.mean([ch.timings_ms[k] for ch in chunks])) for k in chunks[0].timings_ms},
    }


def _pcts(xs: list[float]) -> dict:
    a = np.asarray(xs)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "max": float(a.max())}


@torch.no_grad()
def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    student = load_model(args.model)  # default: the shipped model and its stream settings
    student_path = student.path
    teacher = load_model(args.teacher or TEACHER)  # its own setting: 8 steps, full window
    shipped = SamplingOptions.from_args(args, student).replace(seed=SEED)
    scenes = bench_scenes(student.generator, args.scene, SEED)
    iso = shipped.isolate_listeners
    # the unpaced baselines and the 256 px run measure speed without audio guidance
    plain = shipped.replace(audio_guidance=1.0)
    rows = [
        {
            "model": student_path.name,
            **run_paced(
                student.generator,
                student.autoencoder,
                args.seconds,
                2,
                shipped,
            ),
        }
    ]
    for n in (1, 3, 4):  # shorter runs for the other cast sizes
        rows.append(
            {
                "model": student_path.name,
                **run_paced(
                    student.generator,
                    student.autoencoder,
                    min(args.seconds, 20),
                    n,
                    shipped,
                ),
            }
        )
    base = {
        "model": Path(teacher.path).name,
        **run_unpaced(
            teacher.generator,
            teacher.autoencoder,
            args.teacher_seconds,
            2,
            plain.replace(steps=teacher.steps, window=teacher.window),
        ),
    }
    fast = {
        "model": student_path.name,
        **run_unpaced(
            student.generator,
            student.autoencoder,
            args.teacher_seconds,
            2,
            plain,
        ),
    }
    # 256 px: the same architecture at 256 tokens per frame (speed only: no 256 px weights ship). A rig
    # model draws at the canvas's own size whatever its frame size: its sizes are the scene rows.
    r256 = None
    if student.generator.cfg.output != "rig":
        cfg256 = student.generator.cfg.__class__(**{**student.generator.cfg.to_json(), "frame_size": 256})
        g256 = Generator(cfg256).eval()
        ae256 = FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval()
        ae256.load_state_dict(student.autoencoder.state_dict())
        r256 = {
            "model": "toon-s @256 (speed only)",
            **run_paced(g256, ae256, min(args.seconds, 20), 2, plain.replace(steps=1)),
        }
    scenes = run_scenes(student, scenes, min(args.seconds, 20), shipped)
    return {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, no GPU",
        "torch": torch.__version__,
        "shipped_steps": student.steps,
        "shipped_window_chunks": student.window,
        "listener_isolation": "on" if iso else "off",
        "student": rows,
        "student_unpaced": fast,
        "teacher_baseline": base,
        "speedup_vs_teacher": fast["frames_per_second"] / base["frames_per_second"],
        "size_256": r256,
        "scenes": scenes,
        "command": "bya bench stream "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items() if k in ("seconds", "threads"))
        + "".join(f" --scene {spec}" for spec in args.scene or ()),
        "provenance": provenance(
            [student.path, student.autoencoder_path, teacher.path, teacher.autoencoder_path],
            command_line(args, "bench stream"),
            args.threads,
        ),
    }


def run_scenes(
    loaded,
    scenes: list[tuple[str, Scene]],  # (its --scene value, the scene), from picture_scenes.bench_scenes
    seconds: float,
    options: SamplingOptions,
    paced: bool = True,  # False: unpaced rows (throughput only, no latency)
) -> list[dict]:
    """One row per scene: its canvas, faces, frames per second and (paced) latency."""
    rows = []
    runner = run_paced if paced else run_unpaced
    for spec, scene in scenes:
        row = runner(loaded.generator, loaded.autoencoder, seconds, scene.n_characters, options, scene)
        rows.append({"model": loaded.path.name, "scene": spec, "faces": scene.n_characters, **row})
    return rows


def print_table(res: dict) -> None:
    print(f"machine: {res['machine']}")
    print(
        f"{'model':32} {'scene':12} {'canvas':>9} {'mode':8} {'N':>2} {'steps':>5} {'fps':>6} {'RTF':>5} "
        f"{'lat p50':>8} {'lat p95':>8} {'+look p95':>9}"
    )
    rows = [*res["student"], res["student_unpaced"], res["teacher_baseline"], res["size_256"]]
    for r in [*rows, *res.get("scenes", [])]:
        if r is None:
            continue
        lo = r.get("latency_from_chunk_audio_ms", {})
        la = r.get("latency_after_lookahead_ms", {})
        print(
            f"{r['model'][:32]:32} {r.get('scene', '-')[:12]:12} {r.get('canvas', '-'):>9} {r['mode']:8} "
            f"{r['characters']:>2} {r['steps']:>5} {r['frames_per_second']:6.1f} {r['real_time_factor']:5.2f} "
            f"{lo.get('p50', float('nan')):8.1f} {lo.get('p95', float('nan')):8.1f} {la.get('p95', float('nan')):9.1f}"
        )
    print(f"student / teacher throughput: {res['speedup_vs_teacher']:.1f}x")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_isolation_argument(p)
    add_scene_argument(p)
    p.add_argument("--model", default=None, help="student checkpoint (default: the shipped one)")
    p.add_argument("--teacher", default=None, help="baseline checkpoint (default: the shipped teacher)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the sustained 2-character run")
    p.add_argument("--teacher-seconds", type=float, default=8.0, help="length of the unpaced baseline runs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="docs/bench/stream_cpu.json")


def bench_command(args: argparse.Namespace) -> int:
    if not 2 <= args.seconds <= 3600 or not 1 <= args.teacher_seconds <= 600:
        raise BYAError("--seconds must be in [2, 3600] and --teacher-seconds in [1, 600]")
    res = run(args)
    print_table(res)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out}")
    return 0
