"""Benchmark of the generator's denoiser step and the frame decoder on this machine: `bya bench model`.

Times one denoiser call (one chunk, one sampling step) for 1-4 characters with an empty and a full
context window, in fp32 and bf16 autocast, and the autoencoder's decode per frame. The baseline in the
same run is the real-time budget: a chunk of C frames must be ready every C x 40 ms. Prints a table and
writes JSON naming the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from realtime.bench.machine import command_line, provenance
from realtime.media import FRAME_MS, MAX_CHARACTERS
from realtime.model.autoencoder import load_autoencoder
from realtime.model.checkpoint import load_generator
from realtime.model.spec import TEACHER


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def run(checkpoint: str, autoencoder: str, repeat: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    model, ae = load_generator(checkpoint), load_autoencoder(autoencoder)
    cfg = model.cfg
    c, m = cfg.chunk_frames, cfg.mask_size
    lat = (cfg.latent_channels, cfg.latent_size, cfg.latent_size)
    budget = c * FRAME_MS
    rows = []
    for n in (1, 2, 3, 4):
        for ctx in (0, cfg.window_chunks):
            rm = torch.zeros(1, MAX_CHARACTERS, m, m)
            rm[:, :n, 8:24, 4:12] = 1.0
            bind = torch.zeros(1, MAX_CHARACTERS, MAX_CHARACTERS)
            bind[:, range(n), range(n)] = 1.0
            args = (
                torch.randn(1, c, *lat),
                torch.full((1,), 0.5),
                torch.randn(1, *lat),
                torch.randn(1, ctx * c, *lat),
                torch.randn(1, MAX_CHARACTERS, c, cfg.audio_window, cfg.n_mels),
                bind,
                rm,
            )
            for dtype in ("fp32", "bf16"):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                    ms = _median_ms(lambda a=args: model(*a), repeat)
                rows.append(
                    {
                        "op": "denoiser step",
                        "characters": n,
                        "context_chunks": ctx,
                        "dtype": dtype,
                        "ms": ms,
                        "budget_ms": budget,
                        "steps_in_budget": budget / ms,
                    }
                )
    z = torch.randn(c, *lat)
    ms = _median_ms(lambda: ae.decode(z), repeat)
    rows.append(
        {
            "op": "decode chunk",
            "characters": None,
            "context_chunks": None,
            "dtype": "fp32",
            "ms": ms,
            "budget_ms": budget,
            "steps_in_budget": budget / ms,
        }
    )
    return {
        "machine": f"{platform.machine()}, {threads} torch threads, {platform.processor() or 'cpu'}",
        "torch": torch.__version__,
        "checkpoint": checkpoint,
        "chunk_frames": c,
        "rows": rows,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=str(TEACHER.generator_path))
    p.add_argument("--autoencoder", default=str(TEACHER.autoencoder_path))
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="docs/bench/generator_cpu.json")


def bench_command(args: argparse.Namespace) -> int:
    from realtime.errors import BYAError

    if args.repeat < 1 or args.threads < 1:
        raise BYAError("--repeat and --threads must be at least 1")
    rep = run(args.checkpoint, args.autoencoder, args.repeat, args.threads)
    rep["provenance"] = provenance(
        [args.checkpoint, args.autoencoder], command_line(args, "bench model"), args.threads
    )
    print(f"{'op':<14} {'N':>2} {'ctx':>3} {'dtype':>5} {'ms':>8} {'budget':>7} {'x budget':>8}")
    for r in rep["rows"]:
        print(
            f"{r['op']:<14} {r['characters'] or '-':>2} {r['context_chunks'] if r['context_chunks'] is not None else '-':>3} "
            f"{r['dtype']:>5} {r['ms']:>8.2f} {r['budget_ms']:>7.0f} {r['steps_in_budget']:>8.2f}"
        )
    print(f"machine: {rep['machine']}; 'x budget' = how many such calls fit in one chunk's real-time budget")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rep, indent=1))
    print(f"wrote {args.json}")
    return 0
