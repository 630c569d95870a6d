"""`bya bench all`: regenerate every figure README.md quotes, with the shipped model, in one run.

Each benchmark runs in its own process (`python -m realtime.cli ...`: a fresh thread pool, nothing left
over from the one before) with the shipped default model at its own settings: no step count or context
window is ever passed, so every command takes the checkpoint's. Each writes its JSON into --out under a
fixed name (the names docs/bench/figures.json indexes), carrying a provenance record
(realtime.bench.machine.provenance) that tests/test_figures.py checks against the shipped weights. A
summary table ends the run: benchmark, JSON, seconds taken, headline figure, and whose weights made it.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from realtime.errors import BYAError
from realtime.model.spec import PICTURES, SHIPPED, SPECS, TEACHER, file_sha256

DEFAULT_OUT = "docs/bench"  # where the published figures live
QUICK_OUT = "out/bench-quick"  # a --quick run's default: its shorter runs must not replace the published ones


@dataclass(frozen=True)
class Step:
    """One benchmark of the run: its command without --out, in full and --quick, and its headline."""

    name: str
    json: str  # file name inside --out (fixed: docs/bench/figures.json names these)
    full: tuple[str, ...]  # `bya` argv, the lengths the published figures use
    quick: tuple[str, ...] | None  # shorter lengths, same model settings; None: skipped by --quick
    headline: tuple[str, str]  # (label, key path into the JSON: see `lookup`)
    out_flag: str = "--out"  # the option that names the command's JSON file


_TEACHER = str(TEACHER.generator_path)
_RIG = str(PICTURES.generator_path)
_EVAL_QUICK = ("--clips", "3", "--seconds", "4")  # 3 held-out dialogues (2, 3, 4 characters) of 4 s

STEPS: tuple[Step, ...] = (
    Step(
        "eval",
        "eval_student.json",
        ("model", "eval", "--extended"),
        ("model", "eval", *_EVAL_QUICK),
        ("lip-sync r", "summary.lip_sync_r_mean"),
    ),
    Step(
        "eval --track",
        "eval_student_track.json",
        ("model", "eval", "--extended", "--track"),
        ("model", "eval", *_EVAL_QUICK, "--track"),
        ("lip-sync r", "summary.lip_sync_r_mean"),
    ),
    Step(  # README's baseline row: the teacher at its own 8 steps (the checkpoint's, not passed)
        "eval teacher",
        "eval_teacher.json",
        ("model", "eval", "--extended", "--checkpoint", _TEACHER),
        None,
        ("lip-sync r", "summary.lip_sync_r_mean"),
    ),
    Step(
        "binding",
        "binding_cpu.json",
        ("bench", "binding"),
        ("bench", "binding", "--characters", "2", "--onsets", "3"),
        ("leak, isolation on", "summary.on.leak_mean"),
    ),
    Step(
        "stream",
        "stream_cpu.json",
        ("bench", "stream"),
        ("bench", "stream", "--seconds", "10", "--teacher-seconds", "2"),
        ("fps, 2 characters paced", "student[0].frames_per_second"),
    ),
    Step(
        "latency",
        "latency_cpu.json",
        ("bench", "latency", "--characters", "2", "--backends", "onnx", "torch"),
        ("bench", "latency", "--characters", "2", "--backends", "onnx", "torch", "--onsets", "5"),
        ("glass-to-glass p50 ms, torch", "runs[characters=2,backend=torch].glass_to_glass_ms.p50"),
    ),
    Step(
        "load",
        "load_cpu.json",
        ("bench", "load"),
        # --window here is the measurement window in seconds, not the model's context window
        ("bench", "load", "--window", "5", "--settle", "2", "--max-tries", "2"),
        ("rooms held at 24 fps", "rooms_held_at_target"),
    ),
    Step(
        "batching",
        "batching_cpu.json",
        ("bench", "batching"),
        ("bench", "batching", "--trials", "5"),
        ("batched vs best unbatched", "gain_vs_best_unbatched"),
    ),
    Step(
        "contention",
        "contention_cpu.json",
        ("bench", "contention"),
        ("bench", "contention", "--seconds", "2", "--repeats", "1"),
        ("render fps beside 2 busy processes / alone", "runs[wait=passive,competitors=2].ratio_to_alone"),
    ),
    Step(
        "drift",
        "drift_10min.json",
        ("bench", "drift"),
        None,
        ("bg PSNR change dB, first->last minute", "psnr_change_db"),
    ),
    # pictures: the rig model (PICTURES), which animates them whatever the default is
    Step(
        "pictures",
        "pictures_cpu.json",
        ("bench", "pictures", "--model", _RIG),
        ("bench", "pictures", "--model", _RIG, "--only", "1,4"),
        ("AUC own, duo photo face 0", "cases[0].faces[0].auc_own"),
    ),
    Step(
        "eval rig",
        "eval_rig.json",
        ("model", "eval", "--extended", "--checkpoint", _RIG),
        ("model", "eval", *_EVAL_QUICK, "--checkpoint", _RIG),
        ("lip-sync r", "summary.lip_sync_r_mean"),
    ),
    Step(
        "stream pictures",
        "stream_cpu_pictures.json",
        ("bench", "stream", "--model", _RIG, "--scene", "photo-512", "--scene", "photo-720p"),
        (
            "bench",
            "stream",
            "--model",
            _RIG,
            "--scene",
            "photo-512",
            "--seconds",
            "10",
            "--teacher-seconds",
            "2",
        ),
        ("photo-512 fps", "scenes[scene=photo-512].frames_per_second"),
    ),
    Step(
        "latency pictures",
        "latency_cpu_pictures.json",
        (
            "bench",
            "latency",
            "--model",
            _RIG,
            "--characters",
            "--scene",
            "photo-512",
            "--scene",
            "photo-720p",
        ),
        ("bench", "latency", "--model", _RIG, "--characters", "--scene", "photo-512", "--onsets", "5"),
        (
            "photo-512 glass-to-glass p50 ms, ONNX",
            "scene_runs[scene=photo-512,backend=onnx].glass_to_glass_ms.p50",
        ),
    ),
    Step(
        "drift photo",
        "drift_10min_photo512.json",
        ("bench", "drift", "--model", _RIG, "--scene", "photo-512"),
        None,
        ("PSNR change outside the faces, first->last minute", "psnr_change_db"),
    ),
)


def commands(quick: bool, out: Path, only: list[str] | None = None) -> list[tuple[Step, list[str]]]:
    """(step, `bya` argv) for every step this run makes, each writing its fixed JSON into `out`."""
    chosen = []
    for step in STEPS:
        argv = step.quick if quick else step.full
        if argv is None or (only and step.name not in only):
            continue
        chosen.append((step, [*argv, step.out_flag, str(out / step.json)]))
    return chosen


_PART = re.compile(r"([^.\[]+)((?:\[[^\]]*\])*)")


def lookup(doc, key: str):
    """The value at a key path: dots between dict keys, `[0]` a list index, `[k=v,k2=v2]` the one list
    item whose fields match (compared as text), e.g. "runs[characters=2,backend=torch].glass_to_glass_ms.p50".
    Raises KeyError naming the part that is not there."""
    value = doc
    for part in key.split("."):
        m = _PART.fullmatch(part)
        if m is None:
            raise KeyError(f"{key}: bad part {part!r}")
        value = value[m.group(1)]
        for sel in re.findall(r"\[([^\]]*)\]", m.group(2)):
            if sel.lstrip("-").isdigit():
                value = value[int(sel)]
                continue
            want = dict(kv.split("=", 1) for kv in sel.split(","))
            hits = [x for x in value if all(str(x.get(k)) == v for k, v in want.items())]
            if len(hits) != 1:
                raise KeyError(f"{key}: {len(hits)} items match [{sel}]")
            value = hits[0]
    return value


def whose_weights(doc: dict) -> str:
    """Which spec's generator a JSON's provenance names ("toon-s-student", ...), else what it names."""
    weights = (doc.get("provenance") or {}).get("weights")
    if weights is None:
        return "no provenance"
    for spec in SPECS.values():
        if weights.get(spec.generator) == file_sha256(spec.generator_path):
            return spec.name
    return ", ".join(f"{name} {digest[:10]}" for name, digest in weights.items()) or "no weights"


def _headline(step: Step, path: Path) -> tuple[str, str]:
    try:
        doc = json.loads(path.read_text())
        value = lookup(doc, step.headline[1])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        return f"{step.headline[0]}: unreadable ({exc})", "-"
    shown = f"{value:.3f}" if isinstance(value, float) else str(value)
    return f"{step.headline[0]} = {shown}", whose_weights(doc)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quick",
        action="store_true",
        help="shorter runs of each (fewer clips, onsets, seconds; no drift, no teacher eval): "
        "under ~20 minutes on a 2-core CPU",
    )
    p.add_argument(
        "--out", help=f"folder for the JSON files (default {DEFAULT_OUT}; with --quick, {QUICK_OUT})"
    )
    p.add_argument("--only", nargs="+", choices=[s.name for s in STEPS], help="run only these benchmarks")
    p.add_argument("--dry-run", action="store_true", help="print the commands it would run, run nothing")


def bench_command(args: argparse.Namespace) -> int:
    out = Path(args.out or (QUICK_OUT if args.quick else DEFAULT_OUT))
    if out.exists() and not out.is_dir():
        raise BYAError(f"--out must be a folder, got the file {out}")
    plan = commands(args.quick, out, args.only)
    if not plan:
        raise BYAError(f"--only {' '.join(args.only)}: none of these runs with --quick")
    mode = "--quick" if args.quick else "in full"
    if args.dry_run:
        print(f"dry run of bya bench all {mode}: {len(plan)} benchmarks of {SHIPPED.name}, JSON into {out}")
        for _, argv in plan:
            print(shlex.join(["bya", *argv]))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (step, argv) in enumerate(plan, 1):
        print(f"\n[{i}/{len(plan)}] {shlex.join(['bya', *argv])}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", "realtime.cli", *argv])
        seconds = time.perf_counter() - start
        headline, weights = _headline(step, out / step.json) if rc == 0 else (f"FAILED (exit {rc})", "-")
        rows.append((step.name, str(out / step.json), seconds, headline, weights, rc))
    print(f"\nbya bench all {mode}:")
    print(f"{'benchmark':14} {'JSON':36} {'seconds':>8}  {'weights':16} headline")
    for name, path, seconds, headline, weights, _ in rows:
        print(f"{name:14} {path:36} {seconds:8.0f}  {weights:16} {headline}")
    failed = [r[0] for r in rows if r[5] != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
