"""Train the flow-matching teacher (MM-DiT + Embedding Router) on world clips: resumable, CPU or GPU.

`bya train teacher --preset toon-s --minutes M [--device cuda] [--resume]`. The loss is rectified flow
on the chunk's latents (mouth tokens weighted up) plus the router's losses: truth supervision (BCE +
Dice), identity exclusivity, compactness, temporal smoothness and consistency across router layers.
Routing moves from the true masks to the router's own over the first half of training, so training and
inference route the same way (the paper trains on true masks only).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from distill.data.latent_pool import LatentPool
from distill.data.shards import clip_seed
from realtime.errors import BYAError
from realtime.model.autoencoder import load_autoencoder
from realtime.model.checkpoint import load_generator, save_generator
from realtime.model.config import GENERATOR_CONFIGS, GeneratorConfig
from realtime.model.generator import Generator, GeneratorOutput
from realtime.model.spec import SHIPPED

TRAIN_SEED = 7_000_000  # clip seeds of teacher training; evaluation uses seeds < 1000
ROUTE_HANDOVER = 0.5  # default fraction of training over which routing moves from true to predicted masks
LOSS_WEIGHTS = {"flow": 1.0, "mask": 1.0, "exclusive": 0.5, "compact": 0.05, "smooth": 0.1, "consistent": 0.2}


def router_losses(
    out: GeneratorOutput, truth: torch.Tensor, ref_masks: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Router losses; truth (B, T, K, M, M), ref_masks (B, K, M, M)."""
    present = (ref_masks.flatten(2).amax(-1) > 0).float()[:, None, :, None, None]  # (B, 1, K, 1, 1)
    n_present = present.sum().clamp_min(1.0) * truth.shape[1] * truth.shape[-1] ** 2
    losses: dict[str, torch.Tensor] = {}
    bce, dice = 0.0, 0.0
    for logits in out.mask_logits:
        p = torch.sigmoid(logits)
        bce = (
            bce
            + (F.binary_cross_entropy_with_logits(logits, truth, reduction="none") * present).sum()
            / n_present
        )
        inter = (p * truth * present).sum((-1, -2))
        denom = ((p + truth) * present).sum((-1, -2)).clamp_min(1e-3)
        dice = (
            dice + (1 - (2 * inter + 1e-3) / (denom + 1e-3))[present[..., 0, 0].expand_as(inter) > 0].mean()
        )
    layers = len(out.mask_logits)
    losses["mask"] = (bce + dice) / layers
    p = out.masks
    losses["exclusive"] = F.relu(p.sum(2) - 1.0).pow(2).mean()  # a token belongs to one character at most
    # compactness: mass far from where the character was in the reference frame costs its squared distance
    m = p.shape[-1]
    coords = (torch.arange(m, device=p.device, dtype=p.dtype) + 0.5) / m
    mass = ref_masks.sum((-1, -2)).clamp_min(1e-6)
    cy = (ref_masks.sum(-1) * coords).sum(-1) / mass  # (B, K)
    cx = (ref_masks.sum(-2) * coords).sum(-1) / mass
    d2 = (coords[None, None, :, None] - cy[..., None, None]) ** 2 + (
        coords[None, None, None, :] - cx[..., None, None]
    ) ** 2
    losses["compact"] = (p * d2[:, None] * present).sum() / (p * present).sum().clamp_min(1.0)
    losses["smooth"] = (p[:, 1:] - p[:, :-1]).abs().mean() if p.shape[1] > 1 else p.sum() * 0
    if layers > 1:
        last = torch.sigmoid(out.mask_logits[-1]).detach()
        losses["consistent"] = sum(F.mse_loss(torch.sigmoid(lg), last) for lg in out.mask_logits[:-1]) / (
            layers - 1
        )
    else:
        losses["consistent"] = p.sum() * 0
    return losses


def training_step(
    model: Generator,
    batch: dict[str, torch.Tensor],
    mix: float,
    rng: np.random.Generator,
    context_noise: float = 0.0,
) -> dict[str, torch.Tensor]:
    """One flow-matching step's losses (not yet backpropagated).

    `context_noise`: the clean context is corrupted by Gaussian noise of a per-sample std in
    [0, context_noise] (latent units; a frame-to-frame change is ~0.11), and the residual is measured
    from the corrupted last frame. At inference the context is the model's own output, never quite
    clean: trained this way, each chunk corrects its context's errors instead of compounding them.
    """
    ctx = batch["ctx"]
    if context_noise > 0 and ctx.shape[1]:
        sigma = torch.from_numpy(rng.uniform(0, context_noise, ctx.shape[0])).float().to(ctx.device)
        ctx = ctx + sigma[:, None, None, None, None] * torch.randn_like(ctx)
    x0 = model.to_target(batch["x0"], model.base(batch["ref"], ctx))
    b = x0.shape[0]
    # logit-normal flow times: most samples at mid noise, where the chunk's content is decided
    t = torch.sigmoid(torch.from_numpy(rng.normal(0.0, 1.0, b)).float()).to(x0.device)
    noise = torch.randn_like(x0)
    xt = (1 - t)[:, None, None, None, None] * x0 + t[:, None, None, None, None] * noise
    out = model(
        xt,
        t,
        batch["ref"],
        ctx,
        batch["mel"],
        batch["bind"],
        batch["ref_masks"],
        external=batch["masks"] if mix > 0 else None,
        mix=mix,
    )
    err = (out.velocity.float() - (noise - x0)).pow(2)  # (B, T, C, h, w)
    tok = model.patchify(err).mean(-1)  # (B, T*F)
    losses = {"flow": (tok * batch["mouth"]).sum() / batch["mouth"].sum()}
    losses.update(router_losses(out, batch["masks"], batch["ref_masks"]))
    losses["total"] = sum(LOSS_WEIGHTS[k] * v for k, v in losses.items())
    return losses


def save_loss_plot(log: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = [r["step"] for r in log]
    for k in ("flow", "total"):
        axes[0].plot(steps, [r[k] for r in log], label=k)
    for k in ("mask", "exclusive", "compact", "smooth", "consistent"):
        axes[1].plot(steps, [r[k] for r in log], label=k)
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    axes[0].set_title("flow matching")
    axes[1].set_title("router")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def train(args: argparse.Namespace) -> dict:
    if args.preset not in GENERATOR_CONFIGS:
        raise BYAError(f"unknown preset {args.preset!r}; choose from {', '.join(GENERATOR_CONFIGS)}")
    if args.minutes <= 0 or args.batch < 1 or args.clips < 1:
        raise BYAError("--minutes, --batch and --clips must be positive")
    cfg: GeneratorConfig = GENERATOR_CONFIGS[args.preset]
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ae = load_autoencoder(args.autoencoder).to(device)
    if ae.cfg.latent_channels != cfg.latent_channels or ae.cfg.factor != cfg.latent_factor:
        raise BYAError(
            f"autoencoder {args.autoencoder} makes {ae.cfg.latent_channels}-channel /{ae.cfg.factor} latents; "
            f"preset {args.preset} needs {cfg.latent_channels}-channel /{cfg.latent_factor}"
        )
    model = Generator(cfg).to(device)
    if args.init:  # start from another checkpoint's weights (new parameters keep their initialisation)
        init = load_generator(args.init, strict=False)
        missing = model.load_state_dict(init.state_dict(), strict=False)
        if missing.unexpected_keys:
            raise BYAError(f"{args.init} has weights this preset lacks: {missing.unexpected_keys[:3]}")
        print(f"initialised from {args.init} (new: {missing.missing_keys})", flush=True)
    ema = Generator(cfg).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.99))
    state_path = out / "state.pt"
    step, spent, log = _load_state(state_path, model, ema, opt, device) if args.resume else (0, 0.0, [])
    rng = np.random.default_rng([args.seed, step])
    t0 = time.perf_counter()
    pool = LatentPool(cfg, ae, args.device)
    pool.fill([clip_seed(TRAIN_SEED + args.seed, i) for i in range(args.clips)], args.seconds, args.workers)
    data_s = time.perf_counter() - t0
    pool.finalize()
    print(
        f"pool: {len(pool)} clips of {args.seconds:.0f} s rendered and encoded in {data_s:.0f} s", flush=True
    )
    use_amp = device.type == "cuda" if args.amp is None else args.amp == "on"
    budget = args.minutes * 60
    start, last_save, last_print, samples = time.perf_counter(), time.perf_counter(), 0.0, 0
    while spent + time.perf_counter() - start < budget:
        frac = (spent + time.perf_counter() - start) / budget
        lr = args.lr * min(1.0, (step + 1) / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        mix = max(0.0, 1.0 - frac / args.route_handover) if args.route_handover > 0 else 0.0
        batch = pool.batch(args.batch, int(rng.integers(0, cfg.window_chunks + 1)), rng)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            losses = training_step(model, batch, mix, rng, args.context_noise)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema_update(ema, model, step, args.ema)
        step += 1
        samples += args.batch
        if step % args.log_every == 0:
            rec = {"step": step, "lr": lr, "mix": mix, **{k: v.item() for k, v in losses.items()}}
            log.append(rec)
            now = time.perf_counter() - start
            if now - last_print > 20:
                last_print = now
                print(
                    f"step {step} flow {rec['flow']:.4f} mask {rec['mask']:.4f} mix {mix:.2f} "
                    f"({(spent + now) / 60:.1f}/{args.minutes:.0f} min, {samples / now:.0f} samples/s)",
                    flush=True,
                )
        if time.perf_counter() - last_save > args.save_every:
            _save_state(state_path, model, ema, opt, step, spent + time.perf_counter() - start, log)
            last_save = time.perf_counter()
    wall = time.perf_counter() - start
    spent += wall
    _save_state(state_path, model, ema, opt, step, spent, log)
    facts = {
        "preset": args.preset,
        "steps": step,
        "batch": args.batch,
        "samples_per_second": samples / max(wall, 1e-9),
        "train_minutes": spent / 60,
        "pool_clips": len(pool),
        "clip_seconds": args.seconds,
        "train_seeds": f"clip_seed({TRAIN_SEED + args.seed}, 0..{args.clips - 1})",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "final_losses": log[-1] if log else None,
        "loss_weights": LOSS_WEIGHTS,
        "autoencoder": str(args.autoencoder),
        "init": args.init,
        "context_noise": args.context_noise,
    }
    save_generator(
        ema.cpu(), out / f"{args.preset}.safetensors", extra={"training": facts}, autoencoder=args.autoencoder
    )
    (out / "train_log.json").write_text(json.dumps(log))
    if log:
        save_loss_plot(log, out / "loss.png")
    print(json.dumps(facts, indent=1), flush=True)
    return facts


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """Move the EMA weights toward the model's (a warm-up keeps early steps from being averaged in long)."""
    d = min(decay, (1 + step) / (10 + step))
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm, 1 - d)


def _load_state(path: Path, model, ema, opt, device) -> tuple[int, float, list]:
    """Restore a run saved by `_save_state` -> (step, seconds spent, log); a fresh start if none exists."""
    if not path.is_file():
        return 0, 0.0, []
    state = torch.load(path, map_location=device)
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    opt.load_state_dict(state["opt"])
    print(f"resumed at step {state['step']} ({state['seconds'] / 60:.1f} min spent)", flush=True)
    return state["step"], state["seconds"], state["log"]


def _save_state(path: Path, model, ema, opt, step: int, seconds: float, log: list) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "opt": opt.state_dict(),
            "step": step,
            "seconds": seconds,
            "log": log,
        },
        tmp,
    )
    tmp.replace(path)  # a run killed mid-save keeps the previous state


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="toon-s")
    p.add_argument("--out", default="runs/teacher")
    p.add_argument("--autoencoder", default=str(SHIPPED.autoencoder_path))
    p.add_argument("--minutes", type=float, default=60.0, help="total training time, counting resumed runs")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--clips", type=int, default=200, help="world clips in the training pool")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each pool clip")
    p.add_argument("--workers", type=int, default=2, help="processes rendering the pool")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--save-every", type=float, default=120.0, help="seconds between resumable states")
    p.add_argument("--amp", choices=("on", "off"), default=None, help="bf16 autocast (default: on for CUDA)")
    p.add_argument("--context-noise", type=float, default=0.3, help="max std of noise added to the context")
    p.add_argument("--init", default=None, help="generator checkpoint to start from (fine-tuning)")
    p.add_argument(
        "--route-handover",
        type=float,
        default=ROUTE_HANDOVER,
        help="fraction of training routing moves from true to predicted masks over (0: predicted only)",
    )
    p.add_argument("--resume", action="store_true")


def train_command(args: argparse.Namespace) -> int:
    train(args)
    return 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    add_arguments(p)
    train(p.parse_args(argv))


if __name__ == "__main__":
    main()
