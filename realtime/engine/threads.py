"""How many threads the engine's pools get (torch, ONNX Runtime, OpenCV), sized in this one place.

Sized from the cores this process may run on (`os.sched_getaffinity`), not the machine's: under a
container's or `taskset`'s limit, more threads than cores only take turns. With other CPU-bound
processes on these 2 cores, spinning pool threads slowed `bya render` 20x (41.6 -> 2.1 frames/s), so
pools also wait passively (`PASSIVE_WAIT`). Kept free of torch so command lines can show the default
without loading it.
"""

from __future__ import annotations

import os
import sys

# OpenMP (torch's intra-op pool) spins at every barrier by default; a spinning thread burns the core a
# descheduled sibling needs. Read once when torch loads, so the `bya` entry point sets it before then.
PASSIVE_WAIT = {"OMP_WAIT_POLICY": "PASSIVE"}


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def live_threads() -> int:
    """Every available core but one, which the event loop needs (WebRTC encode and decode, RTP, the room's clock).

    On the 2-core CPU one model thread beat two: glass-to-glass p50 268 vs 294 ms at the same 25 fps
    (`bya bench latency --threads 1` / `--threads 2`, docs/benchmarks.md); two threads fight the loop.
    """
    return max(1, available_cores() - 1)


def wait_passively() -> None:
    """Make OpenMP pools sleep rather than spin when idle: call before torch is imported (a user's own
    OMP_WAIT_POLICY wins)."""
    for key, value in PASSIVE_WAIT.items():
        os.environ.setdefault(key, value)


def set_threads(n: int) -> None:
    """Size torch's intra-op pool and OpenCV's (only if something already imported it) to n threads."""
    import torch

    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    torch.set_num_threads(n)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setNumThreads(n)


def onnx_session_options(threads: int | None):
    """ONNX Runtime session options with `threads` intra-op threads (None: available_cores()), one
    inter-op thread (the step graph is one chain), and pool threads that do not spin between runs."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or available_cores()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning idle threads steal the core a busy sibling (or another process) needs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts
