"""The model as `bya serve` runs it, for the benchmarks that drive a live server (load, soak)."""

from __future__ import annotations

import argparse

BACKENDS = ("torch", "onnx", "auto")  # realtime.model.default_model.BACKENDS, without importing torch here


def add_served_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="generator checkpoint (default: the shipped model)")
    p.add_argument("--threads", type=int, help="torch threads (default: what bya serve uses)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="the model step's backend, as `bya serve --backend` (default auto, as bya serve)",
    )


def load_served_model(args: argparse.Namespace):
    """Set the model threads (default: bya serve's), load the checkpoint, pick its backend."""
    import torch

    from realtime.engine.threads import live_threads
    from realtime.model.default_model import load_model, use_backend

    if args.threads is None:
        args.threads = live_threads()
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    use_backend(loaded, args.backend)
    return loaded
