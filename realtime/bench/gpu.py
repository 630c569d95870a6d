"""The generator's per-chunk streaming step on a GPU, through each kernel backend: `bya bench gpu`.

For each preset and each number of sessions batched together, times the work one chunk costs once the
rolling window is full: encode the newest clean chunk into the cache, rotate the window's keys, encode
every character's audio, and one denoiser call (the 1-step student's whole step). It runs once with the
Triton kernels (`BYA_KERNELS=triton`) and once with the PyTorch reference (`BYA_KERNELS=torch`), in fp32
and under bf16 autocast, and reports:

- ms per step (median of `--repeat` synchronised calls) and frames per second over the batch;
- how many times the step fits the real-time budget of a chunk (C frames x 40 ms) and so how many
  sessions one GPU keeps in real time at that batch;
- the Triton path's speed-up over the PyTorch path (the baseline, same run, same inputs);
- the largest difference between the two paths' outputs, absolute and relative to the output's scale:
  the engine must run the same either way.

`toon-s` uses the shipped student's weights; `base` and `large` use their configs with random weights
(timing does not depend on training; zero-initialised gates are given small random values so every
layer's attention reaches the output and the comparison sees it). On a machine without CUDA it runs the
requested presets on the CPU (Triton then only under TRITON_INTERPRET=1): a smoke test, not a figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from kernels.dispatch import ENV_VAR, backend_for
from realtime.bench.machine import command_line, provenance
from realtime.media import FRAME_MS, MAX_CHARACTERS
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.generator import ChunkCache, Generator
from realtime.model.spec import SHIPPED

PRESETS = ("toon-s", "base", "large")
DTYPES = ("fp32", "bf16")
BACKENDS = ("triton", "torch")


@contextlib.contextmanager
def kernel_backend(name: str) -> Iterator[None]:
    """Run the block with BYA_KERNELS=name, restoring the previous value after."""
    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old


def build_model(preset: str, device: torch.device, student: str | None) -> Generator:
    """The shipped student for toon-s (when `student` is given), else the preset with random weights."""
    if preset == "toon-s" and student:
        from realtime.model.checkpoint import load_generator

        return load_generator(student, device=device).eval()
    if preset not in GENERATOR_CONFIGS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(GENERATOR_CONFIGS)}")
    torch.manual_seed(0)
    with torch.device(device):
        model = Generator(GENERATOR_CONFIGS[preset])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 1 and "bias" not in name and not p.abs().sum():
                p.normal_(std=0.02)
    return model.eval()


def step_inputs(model: Generator, sessions: int, characters: int, device: torch.device) -> dict:
    """Random latents and audio for `sessions` sessions at a full window, `characters` each."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(1)
    c, w, m = cfg.chunk_frames, cfg.window_chunks, cfg.mask_size
    lat = (cfg.latent_channels, cfg.latent_size, cfg.latent_size)
    ref_masks = torch.zeros(sessions, MAX_CHARACTERS, m, m)
    width = max(1, m // (characters + 1))
    for k in range(characters):  # side by side, one column band each
        ref_masks[:, k, m // 4 : 3 * m // 4, k * width + width // 2 : (k + 1) * width + width // 2] = 1.0
    bind = torch.zeros(sessions, MAX_CHARACTERS, MAX_CHARACTERS)
    bind[:, range(characters), range(characters)] = 1.0
    cpu = {
        "reference": torch.randn(sessions, *lat, generator=g),
        "window": torch.randn(sessions, w, c, *lat, generator=g) * 0.5,
        "newest": torch.randn(sessions, 1, c, *lat, generator=g) * 0.5,
        "noisy": torch.randn(sessions, c, *lat, generator=g),
        "mel": torch.randn(sessions, MAX_CHARACTERS, c, cfg.audio_window, cfg.n_mels, generator=g) * 3 - 6,
        "bind": bind,
        "ref_masks": ref_masks,
    }
    return {k: v.to(device) for k, v in cpu.items()}


def make_step(model: Generator, x: dict) -> Callable[[], torch.Tensor]:
    """One chunk's steady-state work for the batch; returns the velocity (B, C, c, h, w)."""
    sink = model.encode_reference(x["reference"])
    window = model.encode_chunks(x["window"], sink)  # the full window, already cached
    t = torch.ones(x["noisy"].shape[0], device=x["noisy"].device)

    def step() -> torch.Tensor:
        newest = model.encode_chunks(x["newest"], sink)  # the chunk that just finished enters the cache
        cache = ChunkCache(
            [torch.cat((k[:, 1:], n), 1) for k, n in zip(window.keys, newest.keys, strict=True)],
            [torch.cat((v[:, 1:], n), 1) for v, n in zip(window.values, newest.values, strict=True)],
        )
        keys, values = model.window_keys(cache, sink)
        audio = model.encode_audio(x["mel"], x["bind"])
        base = x["window"][:, -1, -1]
        return model.denoise(x["noisy"], t, base, sink, keys, values, audio, x["ref_masks"]).velocity

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], torch.Tensor], device: torch.device, repeat: int) -> tuple[float, torch.Tensor]:
    """Median wall time of `repeat` synchronised calls after two warm-ups (autotuning, compiling)."""
    out = fn()
    fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), out


@torch.no_grad()
def run(
    presets: list[str],
    sessions: list[int],
    dtypes: list[str],
    characters: int,
    repeat: int,
    device: torch.device,
    student: str | None,
    on_row: Callable[[dict], None] | None = None,
    profile: bool = False,
) -> list[dict]:
    backends = [b for b in BACKENDS if b == "torch" or _triton_runs(device)]
    rows: list[dict] = []
    for preset in presets:
        model = build_model(preset, device, student)
        cfg = model.cfg
        budget = cfg.chunk_frames * FRAME_MS
        for b in sessions:
            x = step_inputs(model, b, characters, device)
            for dtype in dtypes:
                results: dict[str, tuple[float, torch.Tensor]] = {}
                for backend in backends:
                    with (
                        kernel_backend(backend),
                        torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"),
                    ):
                        step = make_step(model, x)
                        results[backend] = time_ms(step, device, repeat)
                        if profile:
                            print(f"-- {preset} B={b} {dtype} {backend}: the step's most expensive ops")
                            print(profile_table(step, device))
                base_ms, base_out = results["torch"]
                scale = base_out.float().abs().max().item()
                for backend, (ms, out) in results.items():
                    diff = (out.float() - base_out.float()).abs().max().item()
                    row = {
                        "preset": preset,
                        "weights": "shipped student" if preset == "toon-s" and student else "random",
                        "frame_px": cfg.frame_size,
                        "tokens_per_frame": cfg.frame_tokens,
                        "keys_full_window": cfg.frame_tokens
                        * (1 + (cfg.window_chunks + 1) * cfg.chunk_frames),
                        "sessions": b,
                        "characters": characters,
                        "dtype": dtype,
                        "backend": backend,
                        "ms": ms,
                        "frames_per_s": b * cfg.chunk_frames / ms * 1e3,
                        "budget_ms": budget,
                        "x_budget": budget / ms,
                        "realtime_sessions": b * budget / ms,
                        "speedup_vs_torch": base_ms / ms,
                        "max_abs_diff_vs_torch": diff,
                        "rel_diff_vs_torch": diff / scale if scale else 0.0,
                    }
                    rows.append(row)
                    if on_row is not None:
                        on_row(row)
            del x
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def profile_table(step: Callable[[], torch.Tensor], device: torch.device, rows: int = 14) -> str:
    """torch.profiler's table of one step's ops, most device (or CPU) time first."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        _sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    try:
        return prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60)
    except Exception:  # newer torch names the device columns "device" rather than "cuda"
        key = key.replace("cuda", "device")
        return prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60)


def _triton_runs(device: torch.device) -> bool:
    """Whether BYA_KERNELS=triton can run here (CUDA, or the interpreter on CPU)."""
    with kernel_backend("triton"):
        try:
            return backend_for(device) == "triton"
        except ValueError:
            return False


def format_row(r: dict) -> str:
    return (
        f"{r['preset']:<7} {r['sessions']:>3} {r['dtype']:>5} {r['backend']:>6} {r['ms']:>9.2f} "
        f"{r['frames_per_s']:>9.0f} {r['x_budget']:>8.2f} {r['realtime_sessions']:>8.1f} "
        f"{r['speedup_vs_torch']:>7.2f}x {r['rel_diff_vs_torch']:>9.2e}"
    )


HEADER = (
    f"{'preset':<7} {'B':>3} {'dtype':>5} {'kernel':>6} {'ms/step':>9} {'frames/s':>9} {'x budget':>8} "
    f"{'RT sess':>8} {'vs torch':>8} {'rel diff':>9}"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--presets",
        default=None,
        help="comma-separated: toon-s, base, large, tiny (default: toon-s,base,large on CUDA; toon-s on a CPU, "
        "where large alone would take minutes per step)",
    )
    p.add_argument(
        "--sessions", default="1,8", help="comma-separated batch sizes (sessions stepped together)"
    )
    p.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated: fp32, bf16")
    p.add_argument("--characters", type=int, default=2, help="characters per session, 1-4")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument(
        "--student",
        default=str(SHIPPED.generator_path),
        help="weights for the toon-s rows ('' for random weights)",
    )
    p.add_argument("--profile", action="store_true", help="print each step's most expensive ops")
    p.add_argument("--json", default="docs/bench/gpu_model.json")


def _csv(text: str, name: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise ValueError(f"--{name} needs at least one value")
    return items


def bench_command(args: argparse.Namespace) -> int:
    from realtime.errors import BYAError

    name = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        presets = _csv(args.presets or (",".join(PRESETS) if name == "cuda" else "toon-s"), "presets")
        sessions = [int(s) for s in _csv(args.sessions, "sessions")]
        dtypes = _csv(args.dtypes, "dtypes")
    except ValueError as exc:
        raise BYAError(f"bad list: {exc}") from exc
    unknown = [p for p in presets if p not in GENERATOR_CONFIGS]
    if unknown:
        raise BYAError(f"unknown preset(s) {', '.join(unknown)}; known: {', '.join(GENERATOR_CONFIGS)}")
    if not all(1 <= s <= 64 for s in sessions):
        raise BYAError(f"--sessions must each be in 1..64, got {sessions}")
    if not set(dtypes) <= set(DTYPES):
        raise BYAError(f"--dtypes takes {', '.join(DTYPES)}, got {args.dtypes!r}")
    if not 1 <= args.characters <= MAX_CHARACTERS:
        raise BYAError(f"--characters must be in 1..{MAX_CHARACTERS}, got {args.characters}")
    if args.repeat < 1:
        raise BYAError("--repeat must be at least 1")
    if name not in ("cuda", "cpu") or (name == "cuda" and not torch.cuda.is_available()):
        raise BYAError(f"--device must be cuda (when CUDA is available) or cpu, got {name!r}")
    if args.student and not Path(args.student).is_file():
        raise BYAError(f"--student {args.student}: no such file")
    device = torch.device(name)
    env = {
        "device": torch.cuda.get_device_name(device) if name == "cuda" else f"cpu ({platform.processor()})",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton_runs": _triton_runs(device),
        "command": " ".join(["bya", *sys.argv[1:]]),
        # the toon-s rows' weights ('' --student: random weights, nothing loaded)
        "provenance": provenance([args.student or None], command_line(args, "bench gpu")),
    }
    print(f"device: {env['device']}  torch {env['torch']}  triton path: {env['triton_runs']}")
    print(HEADER)
    rows: list[dict] = []
    out = Path(args.json)

    def save(row: dict) -> None:  # after every row: a run cut off by a time limit keeps what it measured
        rows.append(row)
        print(format_row(row), flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**env, "rows": rows}, indent=1))

    run(
        presets,
        sessions,
        dtypes,
        args.characters,
        args.repeat,
        device,
        args.student or None,
        save,
        profile=getattr(args, "profile", False),
    )
    print(
        "x budget: step time against one chunk's real-time budget (C x 40 ms); RT sess: sessions this "
        "batch keeps in real time; vs torch: the PyTorch path's time over this row's"
    )
    print(f"wrote {out}")
    return 0
