"""Train the rig generator: the shipped MM-DiT and Embedding Router, taught to generate rig fields.

`bya train rig` starts from the 1-step toon-s student (its audio encoder, blocks and router already know
speech, binding and where each character is) and fine-tunes it, 1-step and reference-only as it streams,
to generate a rig field (realtime.model.rig_field) per chunk instead of image latents.

The data is the world's dialogues with their mouth truth, heard through drawn listening conditions
(distill.world.conditions: speed, level, reverberation, noise, music, Opus), on head layouts drawn fresh
for every sample: rows of 1-4 heads like the default scenes, and heads anywhere at any size like faces in
pictures. The field holds no pixels, so what is learnt holds for any picture the renderer moves.

Resumable: the state (weights, optimiser, step, log, rng) is saved every --save-every steps; run the same
command again to go on.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from distill.data.shards import clip_seed
from distill.world.conditions import degrade, draw_condition, stretch_frames
from distill.world.dialogue import synthesize_dialogue
from distill.world.visemes import SHAPES, Viseme
from realtime.media import MAX_CHARACTERS, VIDEO_FPS
from realtime.model.audio_features import SILENCE_DB, log_mel
from realtime.model.checkpoint import load_generator, save_generator
from realtime.model.generator import Generator
from realtime.model.rig_field import RIG_CHANNELS, ellipse_masks, paint, read_rig
from realtime.model.spec import SHIPPED, WEIGHTS
from realtime.scene.cartoon.motion import ENERGY_WINDOW_S, smooth

TRAIN_SEED = 8_100_000  # dataset seed of the training dialogues
HELDOUT_SEED = 8_900_000  # evaluation dialogues: never trained on
WIDTHS = np.array([SHAPES[Viseme(v)].width if Viseme(v) in SHAPES else 0.5 for v in range(len(Viseme))])
HEAD_WEIGHT = 4.0  # loss weight of cells inside heads (most cells are background, trivially zero)
OUT = WEIGHTS / "rig-s.safetensors"


def rig_values(
    openness: np.ndarray, viseme: np.ndarray, active: np.ndarray, fps: int = VIDEO_FPS
) -> np.ndarray:
    """(N, T) mouth truth -> (T, N, 5) rig values: openness, width, energy, brow, active."""
    width = smooth(WIDTHS[np.clip(viseme, 0, len(WIDTHS) - 1)], 3)
    width = np.where(openness > 0.02, width, 0.5)
    energy = np.clip(smooth(active.astype(np.float64), max(1, round(ENERGY_WINDOW_S * fps))), 0, 1)
    emphasis = openness - smooth(openness, max(1, round(0.6 * fps)))
    brow = np.clip(smooth(np.clip(emphasis, 0.0, None) * 3.0, 3), 0.0, 1.0)
    v = np.stack([openness, width, energy, brow, active.astype(np.float64)], -1)  # (N, T, 5)
    return np.clip(v, 0, 1).transpose(1, 0, 2).astype(np.float32)


def sample_layout(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 4) head boxes in unit-square coordinates: a row like the default scenes, or heads anywhere."""
    if rng.random() < 0.5:  # a row: equal slots, heads of similar size, small vertical jitter
        slot = 1.0 / n
        w = np.clip(rng.uniform(0.55, 0.9) * slot, 0.12, 0.5) * np.ones(n)
        xs = (np.arange(n) + 0.5) * slot + rng.uniform(-0.1, 0.1, n) * slot
        ys = rng.uniform(0.3, 0.6) + rng.uniform(-0.05, 0.05, n)
    else:  # anywhere: sizes from small to large, left to right
        w = rng.uniform(0.12, 0.7 if n == 1 else 0.45, n)
        xs = np.sort(rng.uniform(0, 1, n))
        xs = np.clip(xs, w / 2, 1 - w / 2)
        ys = rng.uniform(0.25, 0.75, n)
    h = w * rng.uniform(1.1, 1.4, n)
    boxes = np.stack([xs - w / 2, ys - h / 2, xs + w / 2, ys + h / 2], 1)
    return np.clip(boxes, -0.1, 1.1).astype(np.float32)


class RigPool:
    """Training dialogues heard through drawn conditions: per item, every character's log-mel and rig truth."""

    def __init__(self, n_mels: int, mel_per_frame: int) -> None:
        self.n_mels, self.mel_per_frame = n_mels, mel_per_frame
        self.mel: list[torch.Tensor] = []  # (K, T*4, n_mels) float16, padded with silence
        self.values: list[np.ndarray] = []  # (T, K, 5)
        self.n: list[int] = []

    def add(self, seed: int, seconds: float, n: int | None = None, clean: bool = False) -> None:
        rng = np.random.default_rng([seed, 0xC0D])
        n = int(rng.integers(1, MAX_CHARACTERS + 1)) if n is None else n
        d = synthesize_dialogue(n, seconds=seconds, seed=seed)
        cond = draw_condition(rng, clean_share=1.0 if clean else 0.2)
        audio = degrade(d.audio, cond, rng)
        frames = int(d.n_frames / cond.speed)
        opn = stretch_frames(d.openness, cond.speed, frames)
        vis = np.round(stretch_frames(d.viseme.astype(np.float32), cond.speed, frames)).astype(int)
        act = stretch_frames(d.active.astype(np.float32), cond.speed, frames) > 0.5
        full = np.zeros((MAX_CHARACTERS, audio.shape[1]), np.float32)
        full[:n] = audio
        mel = log_mel(full, self.n_mels)[:, : frames * self.mel_per_frame]
        mel[n:] = SILENCE_DB
        values = np.zeros((frames, MAX_CHARACTERS, 5), np.float32)
        values[:, :, 1] = 0.5
        values[:, :n] = rig_values(opn, vis, act)
        self.mel.append(mel.to(torch.float16))
        self.values.append(values)
        self.n.append(n)

    def batch(self, model: Generator, size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        cfg = model.cfg
        c, k = cfg.chunk_frames, MAX_CHARACTERS
        past = cfg.audio_past_ms // 10
        x0, ref, mel, ref_m, lat_m = [], [], [], [], []
        binds = []
        for _ in range(size):
            i = int(rng.integers(len(self.n)))
            n, values, m = self.n[i], self.values[i], self.mel[i]
            t = values.shape[0]
            start = int(rng.integers(0, t - c + 1))
            boxes = sample_layout(n, rng)
            masks_hi = ellipse_masks(boxes, cfg.mask_size)  # (n, M, M)
            masks = np.zeros((k, cfg.mask_size, cfg.mask_size), np.float32)
            masks[:n] = masks_hi
            lat = F.adaptive_avg_pool2d(torch.from_numpy(masks), cfg.latent_size)
            x0.append(paint(values[start : start + c], lat))
            ref.append(paint(np.tile(np.array([0, 0.5, 0, 0, 0], np.float32), (1, k, 1)), lat)[0])
            # stream s carries character perm[s]'s voice and drives character perm[s]
            perm = rng.permutation(k)
            binds.append(F.one_hot(torch.from_numpy(perm), k).float())
            first = start * self.mel_per_frame - past
            idx = first + np.arange(c)[:, None] * self.mel_per_frame + np.arange(cfg.audio_window)[None]
            padded = F.pad(m.float(), (0, 0, past, cfg.audio_window), value=SILENCE_DB)
            win = padded[:, torch.from_numpy(idx + past)]  # (K, c, window, mels)
            mel.append(win[torch.from_numpy(perm)])
            ref_m.append(torch.from_numpy(masks))
            lat_m.append(lat)
        return {
            "x0": torch.stack(x0),
            "ref": torch.stack(ref),
            "mel": torch.stack(mel),
            "bind": torch.stack(binds),
            "ref_masks": torch.stack(ref_m),
            "lat_masks": torch.stack(lat_m),
        }


def rig_model(start: str | Path) -> Generator:
    """The generator to fine-tune: `start`'s weights with output="rig" and absolute (not residual) targets."""
    base = load_generator(start)
    cfg = replace(base.cfg, output="rig", residual_scale=0.0, latent_channels=RIG_CHANNELS)
    model = Generator(cfg)
    model.load_state_dict(base.state_dict())
    return model


def training_step(model: Generator, batch: dict, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    from distill.train.teacher import router_losses

    x0 = batch["x0"]
    b = x0.shape[0]
    noise = torch.randn_like(x0)
    t = torch.ones(b)
    ctx = x0[:, :0]
    out = model(noise, t, batch["ref"], ctx, batch["mel"], batch["bind"], batch["ref_masks"])
    pred = noise - out.velocity
    head = batch["lat_masks"].sum(1).clamp(0, 1)[:, None, None]  # (B, 1, 1, h, w)
    weight = 1.0 + (HEAD_WEIGHT - 1.0) * head
    losses = {"field": ((pred - x0).pow(2) * weight).mean()}
    truth = batch["ref_masks"][:, None].expand(-1, x0.shape[1], -1, -1, -1)
    r = router_losses(out, truth, batch["ref_masks"])
    losses["mask"] = r["mask"]
    losses["exclusive"] = r["exclusive"]
    losses["total"] = losses["field"] + 0.5 * losses["mask"] + 0.25 * losses["exclusive"]
    return losses


@torch.no_grad()
def evaluate(model: Generator, pool: RigPool, rng: np.random.Generator) -> dict:
    """Per held-out dialogue, generated openness against truth: r, activity AUC own/other, rest leak."""
    from distill.eval.metrics import roc_auc

    cfg = model.cfg
    rs, own, other = [], [], []
    for i in range(len(pool.n)):
        n, values = pool.n[i], pool.values[i]
        t = values.shape[0] // cfg.chunk_frames * cfg.chunk_frames
        boxes = sample_layout(n, rng)
        masks = np.zeros((MAX_CHARACTERS, cfg.mask_size, cfg.mask_size), np.float32)
        masks[:n] = ellipse_masks(boxes, cfg.mask_size)
        lat = F.adaptive_avg_pool2d(torch.from_numpy(masks), cfg.latent_size)
        ref = paint(np.tile(np.array([0, 0.5, 0, 0, 0], np.float32), (1, MAX_CHARACTERS, 1)), lat)
        past = cfg.audio_past_ms // 10
        padded = F.pad(pool.mel[i].float(), (0, 0, past, cfg.audio_window), value=SILENCE_DB)
        chunks = t // cfg.chunk_frames
        idx = (
            np.arange(chunks)[:, None, None] * cfg.chunk_frames * pool.mel_per_frame
            + np.arange(cfg.chunk_frames)[None, :, None] * pool.mel_per_frame
            + np.arange(cfg.audio_window)[None, None]
        )
        win = padded[:, torch.from_numpy(idx)].permute(1, 0, 2, 3, 4)  # (chunks, K, c, window, mels)
        bind = torch.eye(MAX_CHARACTERS)[None].expand(chunks, -1, -1)
        noise = torch.randn(chunks, cfg.chunk_frames, RIG_CHANNELS, cfg.latent_size, cfg.latent_size)
        out = model(
            noise,
            torch.ones(chunks),
            ref.expand(chunks, -1, -1, -1),
            noise[:, :0],
            win,
            bind,
            torch.from_numpy(masks)[None].expand(chunks, -1, -1, -1),
        )
        field = (noise - out.velocity).flatten(0, 1)  # (T, C, h, w)
        got = read_rig(field, lat[:n])  # (T, n, 5)
        truth = values[:t, :n]
        for j in range(n):
            g, tr = got[:, j, 0], truth[:, j, 0]
            if tr.std() > 1e-3 and g.std() > 1e-6:
                rs.append(float(np.corrcoef(g, tr)[0, 1]))
            act = truth[:, j, 4] > 0.5
            if 0 < act.sum() < t:
                own.append(roc_auc(g, act)[0])
            for o in range(n):
                if o == j:
                    continue
                other_act = (truth[:, o, 4] > 0.5) & ~act
                quiet = ~act
                if 0 < other_act[quiet].sum() < quiet.sum():
                    other.append(roc_auc(g[quiet], other_act[quiet])[0])
    return {
        "r": float(np.mean(rs)) if rs else float("nan"),
        "r_min": float(np.min(rs)) if rs else float("nan"),
        "auc_own": float(np.mean(own)) if own else float("nan"),
        "auc_other": float(np.mean(other)) if other else float("nan"),
        "dialogues": len(pool.n),
    }


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    state_path = Path(args.state)
    rng = np.random.default_rng(args.seed)
    model = rig_model(args.start)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    step, seconds, log = 0, 0.0, []
    if state_path.is_file():
        st = torch.load(state_path, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, seconds, log = st["step"], st["seconds"], st["log"]
        rng = np.random.default_rng([args.seed, step])
        print(f"resumed at step {step} ({seconds / 60:.1f} min)", flush=True)

    cfg = model.cfg
    t0 = time.perf_counter()
    pool = RigPool(cfg.n_mels, cfg.mel_per_frame)
    for j in range(args.dialogues):
        pool.add(clip_seed(TRAIN_SEED, j), args.seconds)
    held = RigPool(cfg.n_mels, cfg.mel_per_frame)
    for j in range(args.heldout):
        held.add(clip_seed(HELDOUT_SEED, j), args.seconds, clean=True)
    print(f"data: {args.dialogues} dialogues in {time.perf_counter() - t0:.0f} s", flush=True)

    model.train()
    start = time.perf_counter() - seconds
    while step < args.steps and (time.perf_counter() - start) / 60 < args.minutes:
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        batch = pool.batch(model, args.batch, rng)
        losses = training_step(model, batch, rng)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            row = {"step": step, "lr": lr, **{k: float(v) for k, v in losses.items()}}
            row["minutes"] = (time.perf_counter() - start) / 60
            log.append(row)
            print(json.dumps(row), flush=True)
        if step % args.save_every == 0:
            _save_state(state_path, model, opt, step, time.perf_counter() - start, log)
        if step % args.eval_every == 0:
            model.eval()
            print("eval", json.dumps(evaluate(model, held, np.random.default_rng(0))), flush=True)
            model.train()
    seconds = time.perf_counter() - start
    _save_state(state_path, model, opt, step, seconds, log)
    model.eval()
    metrics = evaluate(model, held, np.random.default_rng(0))
    print("final eval", json.dumps(metrics), flush=True)
    facts = {
        "training": {
            "kind": "rig",
            "start": Path(args.start).name,
            "steps": step,
            "batch": args.batch,
            "train_minutes": seconds / 60,
            "dialogues": args.dialogues,
            "dialogue_seconds": args.seconds,
            "train_seeds": f"clip_seed({TRAIN_SEED}, 0..{args.dialogues - 1})",
            "heldout_seeds": f"clip_seed({HELDOUT_SEED}, 0..{args.heldout - 1})",
            "conditions": "distill.world.conditions.draw_condition (20% clean)",
            "sampling_steps": 1,
            "stream_window_chunks": 0,
            "device": "cpu",
            "threads": args.threads,
            "torch": torch.__version__,
            "final_losses": log[-1] if log else {},
            "heldout": metrics,
        }
    }
    # it never decodes with an autoencoder; the student's it started from is named, as every spec's is
    save_generator(model, args.out, extra=facts, autoencoder=SHIPPED.autoencoder_path)
    print(f"wrote {args.out}", flush=True)
    return metrics


def _save_state(path: Path, model, opt, step: int, seconds: float, log: list) -> None:
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "seconds": seconds, "log": log},
        tmp,
    )
    tmp.replace(path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", default=str(SHIPPED.generator_path), help="checkpoint to start from")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--state", default="runs/rig/state.pt", help="resumable training state")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--minutes", type=float, default=60.0, help="stop after this much training time")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--dialogues", type=int, default=600)
    p.add_argument("--heldout", type=int, default=24)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--eval-every", type=int, default=1000)


def train_command(args: argparse.Namespace) -> int:
    for name in ("steps", "batch", "dialogues", "heldout", "threads", "save_every", "eval_every"):
        if getattr(args, name) < 1:
            raise SystemExit(f"bya train rig: --{name.replace('_', '-')} must be >= 1")
    if not (args.lr > 0 and args.minutes > 0 and args.seconds >= 2):
        raise SystemExit("bya train rig: --lr and --minutes must be > 0 and --seconds >= 2")
    train(args)
    return 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="bya train rig", description=__doc__.splitlines()[0])
    add_arguments(p)
    raise SystemExit(train_command(p.parse_args(argv)))


if __name__ == "__main__":
    main()
