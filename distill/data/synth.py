"""`bya data synth`: generate world clips into shards, in parallel, with a progress bar and throughput.

Each clip is a pure function of (dataset seed, clip index), so generation parallelises across worker
processes without coordination and any clip can be regenerated on its own.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

from distill.data.shards import ShardWriter, SynthSpec, clip_seed
from distill.data.worker_pool import process_executor
from distill.world.clip import Clip, check_character_count, make_clip
from realtime.errors import BYAError
from realtime.media import SUPPORTED_FRAME_SIZES, VIDEO_FPS

MAX_SECONDS = 600.0  # a clip longer than a 10-minute stream is never needed and would not fit a shard sanely


class ProgressBar:
    """A one-line progress bar on stderr with clips/s and video frames/s (x real time)."""

    def __init__(self, total: int, frames_per_item: int, stream=sys.stderr, width: int = 30) -> None:
        self.total, self.frames_per_item, self.stream, self.width = total, frames_per_item, stream, width
        self.start = time.perf_counter()
        self.done = 0

    def update(self, n: int = 1) -> None:
        self.done += n
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        filled = int(self.width * self.done / max(self.total, 1))
        fps = self.done * self.frames_per_item / elapsed
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} clips"
            f"  {self.done / elapsed:.2f} clips/s  {fps:.0f} frames/s ({fps / VIDEO_FPS:.1f}x real time)"
        )
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)  # one process per core beats two processes fighting over two threads


def _make(args: tuple[int, int | None, int, float]) -> Clip:
    seed, characters, size, seconds = args
    return make_clip(seed, n_characters=characters, size=size, seconds=seconds)


def validate_spec(spec: SynthSpec) -> SynthSpec:
    """Raise a BYAError subclass naming the first bad field of a synthesis request."""
    if spec.clips < 1:
        raise BYAError(f"--clips must be at least 1, got {spec.clips}")
    if spec.size not in SUPPORTED_FRAME_SIZES:
        raise BYAError(f"--size must be one of {SUPPORTED_FRAME_SIZES}, got {spec.size}")
    if not 0.0 < spec.seconds <= MAX_SECONDS:
        raise BYAError(f"--seconds must be in (0, {MAX_SECONDS:g}], got {spec.seconds}")
    if spec.characters is not None:
        check_character_count(spec.characters)
    if spec.clips_per_shard < 1:
        raise BYAError(f"--clips-per-shard must be at least 1, got {spec.clips_per_shard}")
    return spec


def synthesize_dataset(
    out: str | os.PathLike, spec: SynthSpec, workers: int = 1, overwrite: bool = False, progress: bool = True
) -> dict:
    """Generate `spec.clips` clips into shards under `out`; return a summary with the measured throughput."""
    validate_spec(spec)
    writer = ShardWriter(out, spec, overwrite=overwrite)
    jobs = [(clip_seed(spec.seed, i), spec.characters, spec.size, spec.seconds) for i in range(spec.clips)]
    frames_per_clip = round(spec.seconds * VIDEO_FPS)
    bar = ProgressBar(spec.clips, frames_per_clip, stream=sys.stderr if progress else io.StringIO())
    try:
        if workers <= 1:
            for job in jobs:
                writer.add(_make(job))
                bar.update()
        else:
            with process_executor(workers, _worker_init) as pool:
                # map keeps clip order, so shard contents do not depend on the number of workers
                for clip in pool.map(_make, jobs, chunksize=1):
                    writer.add(clip)
                    bar.update()
        manifest = writer.close()
    except BaseException:
        writer.abort()
        raise
    elapsed = bar.elapsed
    return {
        "manifest": str(manifest),
        "clips": spec.clips,
        "frames": spec.clips * frames_per_clip,
        "seconds": elapsed,
        "clips_per_s": spec.clips / elapsed,
        "frames_per_s": spec.clips * frames_per_clip / elapsed,
        "realtime_factor": spec.clips * frames_per_clip / elapsed / VIDEO_FPS,
        "bytes": sum(p.stat().st_size for p in Path(out).glob("shard-*.npz")),
    }


def add_synth_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (created; must not already hold a dataset)")
    p.add_argument("--clips", type=int, required=True, help="number of clips")
    p.add_argument("--seed", type=int, default=0, help="dataset seed; clip i uses an independent stream")
    p.add_argument("--size", type=int, default=128, help=f"frame size in px, one of {SUPPORTED_FRAME_SIZES}")
    p.add_argument("--seconds", type=float, default=8.0, help="clip length in seconds")
    p.add_argument(
        "--characters", type=int, default=None, help="characters per clip (default: 1-4 at random)"
    )
    p.add_argument("--clips-per-shard", type=int, default=16)
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    p.add_argument(
        "--no-compress", action="store_true", help="store shards uncompressed (faster, ~5x larger)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")


def synth_command(args: argparse.Namespace) -> int:
    spec = SynthSpec(
        clips=args.clips,
        seed=args.seed,
        size=args.size,
        seconds=args.seconds,
        characters=args.characters,
        clips_per_shard=args.clips_per_shard,
        compress=not args.no_compress,
    )
    if args.workers < 1:
        raise BYAError(f"--workers must be at least 1, got {args.workers}")
    summary = synthesize_dataset(args.out, spec, workers=args.workers, overwrite=args.overwrite)
    print(
        f"wrote {summary['clips']} clips ({summary['frames']} frames, {summary['bytes'] / 1e6:.1f} MB) to "
        f"{args.out} in {summary['seconds']:.1f} s: {summary['clips_per_s']:.2f} clips/s, "
        f"{summary['frames_per_s']:.0f} frames/s ({summary['realtime_factor']:.1f}x real time)"
    )
    return 0
