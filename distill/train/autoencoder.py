"""Train the frame autoencoder on world frames: resumable, on CPU or GPU, with a held-out PSNR report.

Frames come from a rolling pool of world clips generated on the fly (or from shards), so no dataset has
to exist first. The loss weights mouth regions up: a blurred mouth would cap every lip-sync figure.
Run: python -m distill.train.autoencoder --out runs/ae --minutes 30 [--resume] [--device cuda]
Decoder fine-tune: --init realtime/weights/ae-s.safetensors --decoder-only keeps the encoder (and so the
latent space every generator checkpoint was trained on) bit-identical and trains only the decoder.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from distill.data.shards import clip_seed
from distill.data.worker_pool import process_pool
from distill.world.clip import Clip, make_clip
from realtime.errors import BYAError
from realtime.media import SUPPORTED_FRAME_SIZES
from realtime.model.autoencoder import (
    AUTOENCODER_CONFIGS,
    FrameAutoencoder,
    load_autoencoder,
    save_autoencoder,
)

TRAIN_SEED = 5_000_000  # dataset seed of training clips; evaluation uses EVAL_SEED, so they never overlap
EVAL_SEED = 17
MOUTH_WEIGHT = 8.0  # mouth boxes are ~1% of the pixels but carry the whole lip-sync signal


class FramePool:
    """A rolling pool of world clips; batches are random frames (with their mouth boxes) from the pool."""

    def __init__(self, size: int, pool: int, seconds: float, seed: int, workers: int = 1) -> None:
        self.size, self.seconds, self.seed = size, seconds, seed
        self.next_index = pool
        seeds = [clip_seed(seed, i) for i in range(pool)]
        if workers > 1:  # the world is CPU work: a GPU run renders its first pool on every core
            with process_pool(workers) as procs:
                self.clips: list[Clip] = procs.starmap(make_clip, [(s, None, size, seconds) for s in seeds])
        else:
            self.clips = [make_clip(s, size=size, seconds=seconds) for s in seeds]
        self.rng = np.random.default_rng(seed)

    def _new(self) -> Clip:
        clip = make_clip(clip_seed(self.seed, self.next_index), size=self.size, seconds=self.seconds)
        self.next_index += 1
        return clip

    def refresh(self) -> None:
        self.clips[int(self.rng.integers(len(self.clips)))] = self._new()

    def batch(self, n: int, mouth_weight: float = MOUTH_WEIGHT) -> tuple[torch.Tensor, torch.Tensor]:
        frames, weights = [], []
        for _ in range(n):
            clip = self.clips[int(self.rng.integers(len(self.clips)))]
            t = int(self.rng.integers(clip.n_frames))
            frames.append(clip.render.frames[t])
            weights.append(mouth_weight_map(clip.render.mouth_boxes[t], self.size, mouth_weight))
        x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return x, torch.from_numpy(np.stack(weights))[:, None]


def mouth_weight_map(mouth_boxes: np.ndarray, size: int, weight: float = MOUTH_WEIGHT) -> np.ndarray:
    """(N, 4) pixel boxes -> (size, size) float32 weights: 1 everywhere, `weight` inside mouths."""
    w = np.ones((size, size), np.float32)
    for x0, y0, x1, y1 in mouth_boxes:
        xa, ya = max(math.floor(x0), 0), max(math.floor(y0), 0)
        xb, yb = min(math.ceil(x1), size), min(math.ceil(y1), size)
        if xb > xa and yb > ya:
            w[ya:yb, xa:xb] = weight
    return w


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = F.mse_loss(a.clamp(-1, 1), b.clamp(-1, 1)).item()
    return float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)


@torch.no_grad()
def evaluate(model: FrameAutoencoder, size: int, clips: int = 6, device: str = "cpu") -> dict:
    """PSNR over whole frames and over mouth boxes on held-out clips (seeds never used in training)."""
    model.eval()
    whole, mouth = [], []
    for i in range(clips):
        clip = make_clip(clip_seed(EVAL_SEED, i), size=size, seconds=2.0)
        x = torch.from_numpy(clip.render.frames[::5]).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1.0
        y = model(x)
        whole.append(psnr(y, x))
        for t, boxes in zip(range(0, clip.n_frames, 5), clip.render.mouth_boxes[::5], strict=False):
            for x0, y0, x1, y1 in boxes.astype(int):
                sl = (slice(None), slice(max(y0, 0), y1), slice(max(x0, 0), x1))
                k = t // 5
                if y1 > y0 and x1 > x0:
                    mouth.append(psnr(y[k][sl], x[k][sl]))
    model.train()
    return {"psnr_db": float(np.mean(whole)), "mouth_psnr_db": float(np.mean(mouth)), "eval_clips": clips}


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    if args.init:  # start from a trained checkpoint (its config wins over --preset)
        model = load_autoencoder(args.init).train().to(args.device)
        cfg = model.cfg
        meta = json.loads(Path(args.init).with_suffix(".json").read_text())
        old = meta.get("training", {})
        history = old.get("stages", [{k: v for k, v in old.items() if k != "stages"}] if old else [])
    else:
        if args.decoder_only:
            raise ValueError("--decoder-only needs --init: a decoder is trained for an encoder that exists")
        cfg = AUTOENCODER_CONFIGS[args.preset]
        model = FrameAutoencoder(cfg).to(args.device)
    if args.decoder_only:  # the latent space stays exactly the one the generators were trained on
        model.encoder.requires_grad_(False)
    params = model.decoder.parameters() if args.decoder_only else model.parameters()
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    step, spent = 0, 0.0
    state_path = out / "state.pt"
    if args.resume and state_path.is_file():
        state = torch.load(state_path, map_location=args.device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, spent = state["step"], state["seconds"]
        print(f"resumed at step {step} ({spent / 60:.1f} min spent)")
    pool = FramePool(
        args.size, args.pool, seconds=4.0, seed=TRAIN_SEED + step, workers=args.workers
    )  # new clips after a resume
    start, last_save, log = time.perf_counter(), time.perf_counter(), []
    while spent + time.perf_counter() - start < args.minutes * 60:
        x, w = pool.batch(args.batch, args.mouth_weight)
        x, w = x.to(args.device), w.to(args.device)
        # cosine decay over the planned time keeps the end of training stable for the card's numbers
        frac = min((spent + time.perf_counter() - start) / (args.minutes * 60), 1.0)
        for g in opt.param_groups:
            g["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        if args.decoder_only:
            with torch.no_grad():
                z = model.encode(x)
            y = model.decode(z)
        else:
            y = model(x)
        loss = (w * (y - x).abs()).mean() / w.mean() + 0.5 * F.mse_loss(y, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % args.refresh_every == 0:
            pool.refresh()
        if step % 50 == 0:
            log.append({"step": step, "loss": loss.item()})
            print(
                f"step {step} loss {loss.item():.4f} ({(spent + time.perf_counter() - start) / 60:.1f} min)",
                flush=True,
            )
        if time.perf_counter() - last_save > 120:
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "step": step,
                    "seconds": spent + time.perf_counter() - start,
                },
                state_path,
            )
            last_save = time.perf_counter()
    spent += time.perf_counter() - start
    torch.save(
        {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "seconds": spent}, state_path
    )
    if not args.decoder_only:  # a fine-tuned decoder keeps the scale its encoder's latents were given
        with torch.no_grad():  # latent scale: unit std latents for the diffusion model
            x, _ = pool.batch(64)
            model.latent_scale.fill_(model.encoder(x.to(args.device)).std().item())
    metrics = {f"{s}px": evaluate(model, s, clips=args.eval_clips, device=args.device) for s in (128, 256)}
    facts = {
        "preset": args.preset if not args.init else Path(args.init).stem,
        "init": args.init,
        "decoder_only": bool(args.decoder_only),
        "mouth_weight": args.mouth_weight,
        "lr": args.lr,
        "config": asdict(cfg),
        "steps": step,
        "batch": args.batch,
        "train_minutes": spent / 60,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "train_size": args.size,
        "metrics": metrics,
        "latent_scale": model.latent_scale.item(),
        "command": "python -m distill.train.autoencoder " + " ".join(sys.argv[1:]),
    }
    if history:  # a fine-tune keeps the facts of what it started from
        facts["stages"] = [*history, {k: v for k, v in facts.items() if k != "stages"}]
    save_autoencoder(model.cpu(), out / f"{args.preset}.safetensors", extra={"training": facts})
    (out / "train_log.json").write_text(json.dumps(log))
    print(json.dumps(facts, indent=1))
    return facts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/ae")
    p.add_argument("--preset", default="ae-s", choices=sorted(AUTOENCODER_CONFIGS))
    p.add_argument("--minutes", type=float, default=30.0, help="total training time, counting resumed runs")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--pool", type=int, default=24, help="clips held in the rolling pool")
    p.add_argument("--refresh-every", type=int, default=10, help="steps between replacing one pool clip")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1, help="processes rendering the first pool")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--eval-clips", type=int, default=6, help="held-out clips the final PSNR is measured on")
    p.add_argument("--init", default=None, help="start from this autoencoder checkpoint (.safetensors)")
    p.add_argument("--decoder-only", action="store_true", help="freeze the encoder (needs --init)")
    p.add_argument("--mouth-weight", type=float, default=MOUTH_WEIGHT, help="loss weight of mouth pixels")


def train_command(args: argparse.Namespace) -> int:
    """`bya train autoencoder`: check the arguments, then train (resumable with --resume)."""
    for name in ("minutes", "lr", "mouth_weight"):
        if not getattr(args, name) > 0:
            raise BYAError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for name in ("batch", "pool", "refresh_every", "workers", "eval_clips"):
        if getattr(args, name) < 1:
            raise BYAError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.size not in SUPPORTED_FRAME_SIZES:
        raise BYAError(f"--size must be one of {SUPPORTED_FRAME_SIZES}, got {args.size}")
    if args.decoder_only and args.init is None:
        raise BYAError("--decoder-only needs --init (the encoder it keeps)")
    train(args)
    return 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m distill.train.autoencoder", description=__doc__)
    add_arguments(p)
    train_command(p.parse_args(argv))


if __name__ == "__main__":
    main()
