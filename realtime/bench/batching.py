"""Is batching two rooms' model work together faster than running it per room? `bya bench batching`.

Two streaming sessions of the shipped model (two 2-character scenes, caches warmed) each have one
chunk to generate. The model work of a chunk (audio encoding, window keys, the denoiser steps, the
decode and the cache update) is timed three ways on the same inputs: one room after the other in one
thread, the two rooms in their own threads at once (what several Rooms in one process do today, each
with its worker thread), and both rooms as one batch of 2. Trials interleave the three, medians are
reported; the verdict and the numbers go to JSON. docs/server.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import numpy as np
import torch

from realtime.bench.machine import command_line, describe_machine, provenance
from realtime.errors import BYAError
from realtime.media import FRAME_MS

DEFAULT_OUT = "docs/bench/batching_cpu.json"
ROOMS = 2  # the question is whether a second room rides along for less than its own cost
WARM_CHUNKS = 4  # chunks pushed before timing: the rolling cache is full, torch's lazy set-up is done


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="generator checkpoint (default: the shipped model)")
    p.add_argument("--trials", type=int, default=30, help="interleaved trials per way (default 30)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"JSON file (default {DEFAULT_OUT})")


class ChunkWork:
    """One session's model inputs for its next chunk, and the model work on a batch of such inputs."""

    def __init__(self, loaded, seed: int) -> None:
        from realtime.scene.scenes import world_scene
        from realtime.stream.options import SamplingOptions
        from realtime.stream.session import StreamingGenerator

        cfg = loaded.generator.cfg
        scene = world_scene(2, seed, cfg.frame_size)
        self.loaded, self.steps = loaded, loaded.steps
        s = StreamingGenerator(
            loaded.generator,
            loaded.autoencoder,
            scene.reference,
            scene.masks,
            options=SamplingOptions.defaults(loaded, seed=seed),  # the model's settings
        )
        s.push(np.zeros((2, s.samples_needed(WARM_CHUNKS)), np.float32))
        self.session = s
        k = s.tail.shape[0]  # every stream slot the model takes (MAX_CHARACTERS)
        self.mel = torch.randn(1, k, cfg.chunk_frames, cfg.audio_window, cfg.n_mels)  # values: cost-neutral

    def inputs(self) -> dict:
        from realtime.model.generator import ChunkCache

        s, depth = self.session, self.loaded.generator.cfg.depth
        cache = ChunkCache(
            [torch.cat([e.keys[i] for e in s.cache], 1) for i in range(depth)] if s.cache else [],
            [torch.cat([e.values[i] for e in s.cache], 1) for i in range(depth)] if s.cache else [],
        )
        return {"mel": self.mel, "bind": s.bind, "cache": cache, "sink": s.sink, "last": s.last[None]}


def _cat(parts: list[dict]) -> dict:
    """Batch the inputs of several sessions along dim 0 (sinks and caches per block)."""
    from realtime.model.generator import ChunkCache, SinkCache

    if len(parts) == 1:
        return parts[0]
    cat = lambda xs: torch.cat(xs, 0)  # noqa: E731
    blocks = range(len(parts[0]["sink"].keys))
    sink = SinkCache(
        [cat([p["sink"].keys[i] for p in parts]) for i in blocks],
        [cat([p["sink"].values[i] for p in parts]) for i in blocks],
        [cat([p["sink"].mids[i] for p in parts]) for i in blocks],
    )
    has_cache = bool(parts[0]["cache"].keys)
    cache = ChunkCache(
        [cat([p["cache"].keys[i] for p in parts]) for i in blocks] if has_cache else [],
        [cat([p["cache"].values[i] for p in parts]) for i in blocks] if has_cache else [],
    )
    return {
        "mel": cat([p["mel"] for p in parts]),
        "bind": cat([p["bind"] for p in parts]),
        "cache": cache,
        "sink": sink,
        "last": cat([p["last"] for p in parts]),
    }


@torch.no_grad()
def model_work(loaded, steps: int, x: dict, ref_masks: torch.Tensor) -> torch.Tensor:
    """A chunk's model work for a batch of B sessions, as StreamingGenerator does it for one."""
    model = loaded.generator
    b, c = x["mel"].shape[0], model.cfg.chunk_frames
    audio = model.encode_audio(x["mel"], x["bind"])
    keys, values = model.window_keys(x["cache"], x["sink"])
    z = torch.randn((b, c, *x["last"].shape[1:]))
    ts = torch.linspace(1.0, 0.0, steps + 1)
    for i in range(steps):
        out = model.denoise(z, ts[i].expand(b), x["last"], x["sink"], keys, values, audio, ref_masks)
        z = z + (ts[i + 1] - ts[i]).item() * out.velocity
    latents = model.from_target(z, x["last"])  # (B, C, c, h, w)
    loaded.autoencoder.decode(latents.flatten(0, 1))
    model.encode_chunks(latents[:, None], x["sink"])
    return latents


def measure(loaded, trials: int) -> dict:
    works = [ChunkWork(loaded, seed) for seed in range(ROOMS)]
    single = [w.inputs() for w in works]
    masks = [w.session.ref_masks for w in works]
    batch, batch_masks = _cat(single), torch.cat(masks, 0)
    steps = loaded.steps

    def sequential() -> None:
        for x, m in zip(single, masks, strict=True):
            model_work(loaded, steps, x, m)

    def concurrent() -> None:
        threads = [
            threading.Thread(target=model_work, args=(loaded, steps, x, m))
            for x, m in zip(single, masks, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def batched() -> None:
        model_work(loaded, steps, batch, batch_masks)

    def one_room() -> None:
        model_work(loaded, steps, single[0], masks[0])

    ways = {"sequential": sequential, "concurrent_threads": concurrent, "batched": batched}
    times: dict[str, list[float]] = {k: [] for k in (*ways, "one_room")}
    for fn in ways.values():  # warm-up: the batch-2 shapes pay their own lazy set-up
        fn()
    for _ in range(trials):  # interleaved, so a busy moment of a shared machine hits every way alike
        for name, fn in (*ways.items(), ("one_room", one_room)):
            start = time.perf_counter()
            fn()
            times[name].append(1e3 * (time.perf_counter() - start))
    med = {k: round(float(np.median(v)), 2) for k, v in times.items()}
    return {
        "median_ms_for_two_rooms": {k: med[k] for k in ways},
        "median_ms_one_room": med["one_room"],
        "p90_ms_for_two_rooms": {k: round(float(np.percentile(times[k], 90)), 2) for k in ways},
        "speedup_batched_vs_sequential": round(med["sequential"] / med["batched"], 3),
        "speedup_batched_vs_concurrent": round(med["concurrent_threads"] / med["batched"], 3),
    }


BATCH_WORTH = 1.10  # batching must save at least 10% to pay for a cross-room scheduler's coupling


def run(args: argparse.Namespace) -> dict:
    from realtime.model.default_model import load_model

    if not 1 <= args.trials <= 1000:
        raise BYAError(f"--trials must be in [1, 1000], got {args.trials}")
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    cfg = loaded.generator.cfg
    result = measure(loaded, args.trials)
    best_unbatched = min(result["median_ms_for_two_rooms"][k] for k in ("sequential", "concurrent_threads"))
    gain = best_unbatched / result["median_ms_for_two_rooms"]["batched"]
    result["verdict"] = (
        "batch rooms together" if gain >= BATCH_WORTH else "keep one worker per room (batching does not pay)"
    )
    result["gain_vs_best_unbatched"] = round(gain, 3)
    return {
        "machine": describe_machine(args.threads),
        "provenance": provenance(
            [loaded.path, loaded.autoencoder_path], command_line(args, "bench batching"), args.threads
        ),
        "model": {"path": str(loaded.path), "steps": loaded.steps, "window": loaded.window},
        "chunk_ms": cfg.chunk_frames * FRAME_MS,
        "rooms": ROOMS,
        "trials": args.trials,
        **result,
    }


def bench_command(args: argparse.Namespace) -> int:
    result = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    med = result["median_ms_for_two_rooms"]
    print(f"model work of one chunk, one room: {result['median_ms_one_room']} ms (median)")
    print(f"two rooms' chunks (median of {result['trials']}, budget {result['chunk_ms']} ms):")
    for name, ms in med.items():
        print(f"  {name:20} {ms:7.1f} ms")
    print(f"batched vs best unbatched: x{result['gain_vs_best_unbatched']} -> {result['verdict']}")
    print(f"wrote {out}")
    return 0
