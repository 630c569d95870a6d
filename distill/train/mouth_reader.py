"""Training of the mouth reader on world clips, on CPU, in a fixed wall-clock budget.

A pool of clips (train seeds from TRAIN_SEED_BASE up) is rendered once; each becomes wide "context
crops" around every visible mouth, clean and degraded like generated video (blur, down-up sampling,
JPEG blocks). Training samples jittered crops from the pool; held-out seeds (< EVAL_SEED_LIMIT)
measure r and MAE through the exact path the harness uses (`MouthReader.read` on full frames).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from scipy.fft import dctn, idctn
from scipy.ndimage import gaussian_filter

from distill.eval.mouth_reader import (
    VISIBLE_MIN,
    WEIGHTS_DIR,
    MouthReader,
    MouthReaderConfig,
    crop_mouths,
    mouth_visibility,
    save_reader,
)
from realtime.errors import BYAError
from realtime.media import VIDEO_FPS

TRAIN_SEED_BASE = 1_000_000  # training clips use seeds >= this; evaluation seeds stay below
EVAL_SEED_LIMIT = 1_000  # held-out seeds are 0..999; never drawn for training
CONTEXT_SCALE = 1.5  # pool crops see 1.5x the reader's field so jitter can move the crop inside them
CLIP_SECONDS = 4.0  # s per dialogue clip: short, so the pool holds more scenes for the same render time
BABBLE_SECONDS = 4.0  # s per babble clip
FRAME_STRIDE = 2  # keep every 2nd frame of a pool clip: neighbours are near-duplicates
POOL_FRACTION = 0.4  # share of the wall-clock budget spent rendering the pool
BATCH = 128


# ----------------------------------------------------------------------------- degradations


def _jpeg_like(frames: np.ndarray, step: float) -> np.ndarray:
    """Quantise 8x8 block DCT coefficients (frequency-weighted step): JPEG's blocking and ringing."""
    T, H, W, C = frames.shape
    h, w = H // 8 * 8, W // 8 * 8
    x = frames[:, :h, :w].astype(np.float32).reshape(T, h // 8, 8, w // 8, 8, C)
    coef = dctn(x, axes=(2, 4), norm="ortho")
    u = np.arange(8)
    q = step * (1 + (u[:, None] + u[None, :]) / 4.0)  # coarser at high frequency, as JPEG tables are
    coef = np.round(coef / q[None, None, :, None, :, None]) * q[None, None, :, None, :, None]
    out = frames.astype(np.float32).copy()
    out[:, :h, :w] = idctn(coef, axes=(2, 4), norm="ortho").reshape(T, h, w, C)
    return np.clip(out, 0, 255).astype(np.uint8)


def degrade(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random mix of blur, down-up sampling and JPEG blocks, at the frames' native pixel scale."""
    x = frames
    if rng.random() < 0.7:
        sigma = rng.uniform(0.3, 1.5)  # px
        x = gaussian_filter(x.astype(np.float32), sigma=(0, sigma, sigma, 0)).clip(0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        factor = rng.uniform(1.5, 3.0)
        t = torch.from_numpy(x).permute(0, 3, 1, 2).float()
        H, W = t.shape[-2:]
        small = F.interpolate(t, size=(max(8, int(H / factor)), max(8, int(W / factor))), mode="area")
        t = F.interpolate(small, size=(H, W), mode="bilinear", align_corners=False)
        x = t.permute(0, 2, 3, 1).clamp(0, 255).round().byte().numpy()
    if rng.random() < 0.5:
        x = _jpeg_like(x, step=rng.uniform(4.0, 20.0))
    return x


# ----------------------------------------------------------------------------- pool


def context_config(cfg: MouthReaderConfig) -> MouthReaderConfig:
    """Crop geometry of the pool: same centre, CONTEXT_SCALE x the side, as many px per unit length."""
    margin = (CONTEXT_SCALE * (1 + 2 * cfg.margin) - 1) / 2
    return replace(
        cfg, margin=margin, crop=round(cfg.crop * CONTEXT_SCALE), min_side=cfg.min_side * CONTEXT_SCALE
    )


def pool_from_clip(clip, cfg: MouthReaderConfig, rng: np.random.Generator, variants: int = 2):
    """(crops uint8 (M, C, P, P), openness float32 (M,)) of a clip's visible mouths, clean + degraded."""
    r, d = clip.render, clip.dialogue
    ctx = context_config(cfg)
    vis = mouth_visibility(r.masks, r.mouth_boxes)  # (N, T)
    keep = np.zeros_like(vis, dtype=bool)
    keep[:, ::FRAME_STRIDE] = True
    keep &= vis >= VISIBLE_MIN
    t_idx, n_idx = np.nonzero(keep.T)
    crops, targets = [], []
    for v in range(variants):
        frames = r.frames if v == 0 else degrade(r.frames, rng)
        c = crop_mouths(frames, r.mouth_boxes, ctx)[t_idx, n_idx]  # (M, C, P, P)
        crops.append((c * 255).round().byte())
        targets.append(torch.from_numpy(d.openness[n_idx, t_idx].astype(np.float32)))
    return torch.cat(crops), torch.cat(targets)


def babble_dialogue(n: int, n_frames: int, rng: np.random.Generator):
    """A DialogueTrack of random syllables: turns, pauses, openness spread evenly over [0, 1], any viseme.

    Real dialogue is mostly closed mouths and a few visemes; babble covers every (openness, viseme)
    pair the renderer can draw, so the reader learns openness, not the statistics of speech.
    """
    from distill.world.clip import DialogueTrack
    from realtime.media import SAMPLES_PER_FRAME

    openness = np.zeros((n, n_frames), np.float32)
    viseme = np.zeros((n, n_frames), np.int8)
    active = np.zeros((n, n_frames), bool)
    for i in range(n):
        t = int(rng.integers(0, 20))
        while t < n_frames:
            turn = int(rng.integers(10, 60))
            end = min(n_frames, t + turn)
            active[i, t:end] = True
            while t < end:  # syllables of 2-7 frames (80-280 ms): a bump of random height and viseme
                k = int(rng.integers(2, 8))
                bump = np.sin(np.linspace(0, np.pi, k + 2)[1:-1]) ** rng.uniform(0.3, 1.5)
                seg = slice(t, min(end, t + k))
                openness[i, seg] = (rng.uniform(0, 1) * bump)[: seg.stop - t]
                viseme[i, seg] = rng.integers(0, 8)
                t += k
            t = end + int(rng.integers(5, 60))
    return DialogueTrack(
        audio=np.zeros((n, n_frames * SAMPLES_PER_FRAME), np.float32),
        openness=openness,
        viseme=viseme,
        active=active,
    )


def random_clip(seed: int, size: int, babble: bool = False):
    """A world clip from `seed`: 1-4 characters; with babble, its scene rendered with babble_dialogue."""
    from distill.world.clip import Clip, make_clip
    from realtime.scene.cartoon.characters import sample_scene
    from realtime.scene.cartoon.render import render_scene

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5))
    if not babble:
        return make_clip(seed, n_characters=n, size=size, seconds=CLIP_SECONDS)
    scene = sample_scene(n, seed=seed)
    dialogue = babble_dialogue(n, int(BABBLE_SECONDS * VIDEO_FPS), rng)
    return Clip(seed=seed, dialogue=dialogue, render=render_scene(scene, dialogue, size, seed), scene=scene)


def make_clip_available() -> bool:
    try:
        random_clip(EVAL_SEED_LIMIT - 1, 128)
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- training


def augment_batch(ctx_crops: torch.Tensor, cfg: MouthReaderConfig, gen: torch.Generator) -> torch.Tensor:
    """Jittered reader crops (B, C, S, S) from pool crops: box shift/scale, colour, noise."""
    B = ctx_crops.shape[0]
    x = ctx_crops.float() / 255.0

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=gen)

    nominal = 1.0 / CONTEXT_SCALE  # the reader's field, in units of the pool crop's half-width
    scale = nominal * u(0.85, 1.15, B)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = scale * u(0.95, 1.05, B)
    theta[:, 1, 1] = scale * u(0.95, 1.05, B)
    # Shift up to 15% of the crop side: a few px of box error at 128 px, like a misplaced character.
    theta[:, :, 2] = u(-0.15, 0.15, B, 2) * 2 * nominal
    grid = F.affine_grid(theta, [B, 1, cfg.crop, cfg.crop], align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    y = y.view(B, -1, 3, cfg.crop, cfg.crop)
    gain = u(0.85, 1.15, B, 1, 3, 1, 1) * u(0.9, 1.1, B, 1, 1, 1, 1)
    y = y * gain + u(-0.06, 0.06, B, 1, 3, 1, 1)
    y = y + torch.randn(y.shape, generator=gen) * u(0.0, 0.04, B, 1, 1, 1, 1)
    return y.clamp(0, 1).view(B, -1, cfg.crop, cfg.crop)


def evaluate_heldout(
    model: MouthReader, seeds: list[int], sizes: tuple[int, ...], babble: bool = False
) -> dict:
    """r (pooled over visible mouths and mean per speaking character) and MAE on held-out seeds."""
    from distill.eval.metrics import pearson

    preds, trues, per_char = [], [], []
    for seed in seeds:
        for size in sizes:
            clip = random_clip(seed, size, babble=babble)
            read = model.read(clip.render.frames, clip.render.mouth_boxes)
            vis = mouth_visibility(clip.render.masks, clip.render.mouth_boxes) >= VISIBLE_MIN
            for i in range(clip.n_characters):
                p, t = read[i, vis[i]], clip.dialogue.openness[i, vis[i]]
                preds.append(p)
                trues.append(t)
                r = pearson(p, t)
                if not math.isnan(r):
                    per_char.append(r)
    p, t = np.concatenate(preds), np.concatenate(trues)
    return {
        "seeds": seeds,
        "data": "babble" if babble else "make_clip dialogue",
        "sizes": list(sizes),
        "r_pooled": pearson(p, t),
        "r_mean_per_character": float(np.mean(per_char)),
        "r_min_per_character": float(np.min(per_char)),
        "mae": float(np.abs(p - t).mean()),
        "frames": int(p.size),
    }


def train(
    out: str, minutes: float, seed: int = 0, preset: str = "tiny", eval_seeds: int = 8, log=print
) -> dict:
    """Train a reader for `minutes` of wall clock (pool + steps; held-out eval after) and save it."""
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)  # denormal weights/grads late in training slow CPU matmuls ~10x
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    cfg = MouthReaderConfig() if preset == "tiny" else None
    if cfg is None:
        raise ValueError(f"unknown preset {preset!r}; known: tiny")
    t0 = time.monotonic()
    budget = minutes * 60.0
    dialogue = make_clip_available()
    if not dialogue:
        log("make_clip unavailable (distill.world.dialogue missing): pool and held-out use babble only")
    crops, targets, used = [], [], []
    k = 0
    while time.monotonic() - t0 < POOL_FRACTION * budget or k < 4:
        s = TRAIN_SEED_BASE + seed * 100_000 + k
        size = 256 if k % 4 == 3 else 128  # a quarter at 256 px: 4x the render cost, same mouths sharper
        babble = not dialogue or k % 2 == 0  # half babble (every openness x viseme), half real dialogue
        c, y = pool_from_clip(random_clip(s, size, babble=babble), cfg, rng)
        crops.append(c)
        targets.append(y)
        used.append([s, size, "babble" if babble else "dialogue"])
        k += 1
    pool_x, pool_y = torch.cat(crops), torch.cat(targets)
    t_pool = time.monotonic() - t0
    log(f"pool: {k} clips, {len(pool_y)} crops in {t_pool:.0f} s")

    model = MouthReader(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    train_budget = budget - t_pool
    t1, step, ema = time.monotonic(), 0, None
    model.train()
    while True:
        frac = (time.monotonic() - t1) / train_budget
        if frac >= 1.0:
            break
        lr = 2e-3 * (min(1.0, step / 200) * 0.5 * (1 + math.cos(math.pi * frac)))  # warm-up, cosine
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(len(pool_y), (BATCH,), generator=gen)
        x = augment_batch(pool_x[idx], cfg, gen)
        loss = F.mse_loss(model(x), pool_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        if step % 500 == 0:
            log(f"step {step}  loss {ema:.5f}  lr {lr:.2e}  {time.monotonic() - t0:.0f} s")
    wall = time.monotonic() - t0
    log(f"trained {step} steps in {wall:.0f} s; evaluating on held-out seeds")
    model.eval()
    heldout = evaluate_heldout(model, list(range(eval_seeds)), (128, 256), babble=not dialogue)
    log(f"held-out: {heldout}")
    info = {
        "command": "bya train mouth-reader " + " ".join(sys.argv[1:]),
        "steps": step,
        "batch": BATCH,
        "pool_clips": k,
        "pool": used,
        "pool_crops": len(pool_y),
        "pool_seconds": round(t_pool, 1),
        "train_seed_range": [TRAIN_SEED_BASE + seed * 100_000, TRAIN_SEED_BASE + seed * 100_000 + k - 1],
        "wall_seconds": round(wall, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip() + ", 2 torch threads, CPU",
        "torch": torch.__version__,
        "final_loss_ema": ema,
        "heldout": heldout,
    }
    save_reader(model, out, info)
    return info


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=str(WEIGHTS_DIR), help="folder for mouth_reader.safetensors/.json")
    p.add_argument("--minutes", type=float, default=12.0, help="wall-clock budget for pool + training")
    p.add_argument("--seed", type=int, default=0, help="selects the training seeds and the init")
    p.add_argument("--eval-seeds", type=int, default=8, help="held-out seeds 0..K-1, at 128 and 256 px")


def train_command(a: argparse.Namespace) -> int:
    """`bya train mouth-reader`: check the arguments, then train and save the reader."""
    if not a.minutes > 0:
        raise BYAError(f"--minutes must be positive, got {a.minutes}")
    if not 0 < a.eval_seeds <= EVAL_SEED_LIMIT:
        raise BYAError(f"--eval-seeds must be in 1..{EVAL_SEED_LIMIT}, got {a.eval_seeds}")
    train(a.out, a.minutes, seed=a.seed, eval_seeds=a.eval_seeds, log=lambda m: print(m, flush=True))
    return 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m distill.train.mouth_reader", description="Train the mouth reader."
    )
    add_arguments(p)
    train_command(p.parse_args(argv))


if __name__ == "__main__":
    main()
