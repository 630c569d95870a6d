"""Distil the teacher into a 1-step streaming student, trained on its own rollouts: resumable, CPU or GPU.

`bya train student --method regress|teacher --minutes M [--resume]`. Each batch is a run of R
consecutive chunks; the student generates them one after another, each chunk's context being the
student's own earlier outputs (self-forcing, gradients stopped between chunks), exactly as a session's
rolling cache will hold them. Two ways to get the 1-step target are measured against each other:

- `regress`: the flow at t=1 alone. One Euler step from pure noise lands on noise - v, so training v at
  t=1 makes the step predict the conditional mean of the clean chunk: direct x0 regression.
- `teacher`: the teacher's multi-step sample from the same noise and the same (student-made) context is
  the target (ODE-pair distillation, as in knowledge distillation / progressive distillation's limit).

Router losses stay on and the student routes with its own masks, as it will at run time.
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

from distill.data.latent_pool import MOUTH_TOKEN_WEIGHT, LatentPool, is_mouth_token
from distill.data.shards import clip_seed
from distill.train.mouth_critic import Adversary, MouthCritic, critic_loss, mouth_audio, student_adv_loss
from distill.train.mouth_probe import MouthProbe, load_probe, mouth_owners, reference_patches, sync_loss
from distill.train.teacher import (
    LOSS_WEIGHTS,
    TRAIN_SEED,
    _load_state,
    _save_state,
    ema_update,
    router_losses,
    save_loss_plot,
)
from realtime.errors import BYAError
from realtime.model.audio_features import SILENCE_DB
from realtime.model.autoencoder import load_autoencoder
from realtime.model.checkpoint import load_generator, save_generator
from realtime.model.generator import Generator
from realtime.model.router import token_weights
from realtime.model.spec import SHIPPED, TEACHER

METHODS = ("regress", "teacher")


@torch.no_grad()
def teacher_sample(teacher: Generator, noise: torch.Tensor, base_args: dict, steps: int) -> torch.Tensor:
    """The teacher's `steps`-step Euler sample from `noise` (target space), routing with its own masks."""
    x = noise
    ts = torch.linspace(1.0, 0.0, steps + 1)
    for i in range(steps):
        t = ts[i].expand(noise.shape[0]).to(noise.device)
        x = x + (ts[i + 1] - ts[i]).item() * teacher(x, t, **base_args).velocity
    return x


def listener_tokens(cfg, seq: dict[str, torch.Tensor], r: int) -> torch.Tensor:
    """(B, C*F) in [0, 1]: tokens of characters whose stream is silent over the chunk's whole audio
    window (listeners: they must stay still whoever else speaks)."""
    silent = (seq["mel"][:, r].amax(dim=(2, 3, 4)) <= SILENCE_DB + 1.0).float()  # (B, S)
    silent_char = torch.einsum("bs,bsk->bk", silent, seq["bind"])  # (B, K)
    region = token_weights(seq["masks"][:, r], cfg.mask_sub)  # (B, C*F, K)
    return (region * silent_char[:, None]).sum(-1).clamp(max=1.0)


def listener_mouths(cfg, seq: dict[str, torch.Tensor], r: int, mouth: torch.Tensor) -> torch.Tensor:
    """(B, C*F) in [0, 1]: the mouth tokens among `listener_tokens`."""
    return listener_tokens(cfg, seq, r) * is_mouth_token(mouth).float()


def token_loss_weights(
    cfg, seq: dict[str, torch.Tensor], r: int, mouth_weight: float | None, listener_weight: float
) -> torch.Tensor:
    """(B, C*F) flow-loss weight per token of chunk r: `mouth_weight` on mouths (None: the pool's
    MOUTH_TOKEN_WEIGHT), times `listener_weight` on the mouths of characters whose stream is silent,
    0 on the mouths of samples that hear another dialogue ("swapped"), 1 elsewhere."""
    pool_w = seq["mouth"][:, r]  # MOUTH_TOKEN_WEIGHT on mouths, 1 elsewhere
    w = pool_w
    if mouth_weight is not None:
        w = torch.where(
            is_mouth_token(pool_w), torch.full_like(pool_w, mouth_weight), torch.ones_like(pool_w)
        )
    if listener_weight != 1.0:
        w = w * (1.0 + (listener_weight - 1.0) * listener_mouths(cfg, seq, r, pool_w))
    if "swapped" in seq:  # another dialogue's audio: the frames' mouths are not what it says
        w = torch.where(seq["swapped"][:, None] & is_mouth_token(pool_w), torch.zeros_like(w), w)
    return w


def isolation_loss(
    model: Generator,
    noise: torch.Tensor,
    t1: torch.Tensor,
    args: dict,
    pred: torch.Tensor,
    listen: torch.Tensor,
) -> torch.Tensor:
    """Listener isolation distilled into one pass: on the listeners' tokens the 1-step sample must be what
    the same model makes from the same noise with every stream silent (what the engine's two-pass
    isolation composites there, realtime/stream/session.py); that target carries no gradient."""
    if float(listen.sum()) == 0.0:
        return pred.new_zeros(())
    with torch.no_grad():
        quiet = model(noise, t1, **{**args, "mel": torch.full_like(args["mel"], SILENCE_DB)})
    err = model.patchify((pred.float() - (noise - quiet.velocity).float()).pow(2)).mean(-1)
    return (err * listen).sum() / listen.sum().clamp(min=1.0)


def rollout_losses(
    model: Generator,
    seq: dict[str, torch.Tensor],
    method: str,
    teacher: Generator | None,
    teacher_steps: int,
    context_noise: float,
    rng: np.random.Generator,
    window: int,
    listener_weight: float = 1.0,
    isolation_weight: float = 0.0,
    mouth_weight: float | None = None,
    adversary: Adversary | None = None,
    probe: MouthProbe | None = None,
    sync_weight: float = 0.0,
) -> list[dict[str, torch.Tensor]]:
    """Generate the run's chunks one by one from the student's own context; backprop each chunk's loss."""
    c, w = model.cfg.chunk_frames, window
    ctx = seq["ctx"]
    out_losses = []
    for r in range(seq["x0"].shape[1]):
        if context_noise > 0 and ctx.shape[1]:  # a little extra corruption: errors bigger than its own
            sigma = torch.from_numpy(rng.uniform(0, context_noise, ctx.shape[0])).float().to(ctx.device)
            ctx_in = ctx + sigma[:, None, None, None, None] * torch.randn_like(ctx)
        else:
            ctx_in = ctx
        base = model.base(seq["ref"], ctx_in)
        x0 = model.to_target(seq["x0"][:, r], base)
        noise = torch.randn_like(x0)
        args = {
            "reference": seq["ref"],
            "context": ctx_in,
            "mel": seq["mel"][:, r],
            "bind": seq["bind"],
            "ref_masks": seq["ref_masks"],
        }
        t1 = torch.ones(x0.shape[0], device=x0.device)
        out = model(noise, t1, **args)
        pred = noise - out.velocity  # the 1-step sample in target space
        target = x0 if method == "regress" else teacher_sample(teacher, noise, args, teacher_steps)
        err = (pred.float() - target).pow(2)
        tok = model.patchify(err).mean(-1)
        mouth = token_loss_weights(model.cfg, seq, r, mouth_weight, listener_weight)
        losses = {"flow": (tok * mouth).sum() / mouth.sum()}
        if method == "teacher":  # how far the 1-step sample is from the data, comparable across methods
            losses["data_err"] = (
                model.patchify((pred.float() - x0).pow(2)).mean(-1) * mouth
            ).sum() / mouth.sum()
        losses.update(router_losses(out, seq["masks"][:, r], seq["ref_masks"]))
        losses["total"] = sum(LOSS_WEIGHTS[k] * v for k, v in losses.items() if k in LOSS_WEIGHTS)
        if isolation_weight > 0:
            losses["isolation"] = isolation_loss(
                model, noise, t1, args, pred, listener_tokens(model.cfg, seq, r)
            )
            losses["total"] = losses["total"] + isolation_weight * losses["isolation"]
        syncing = probe is not None and sync_weight > 0
        # chunk r's mouth tokens: where, whose, which frame, the student's patch there, the reference's
        mouths = None
        if adversary is not None or syncing:
            idx, owner, frame = mouth_owners(model.cfg, seq, r)
            if len(idx):
                mine = model.patchify(model.from_target(pred.float(), base))[idx[:, 0], idx[:, 1]]
                mouths = (idx, owner, frame, mine, reference_patches(model, base, idx))
        if syncing and mouths is not None:
            idx, owner, frame, mine, ref_p = mouths
            losses["sync"] = sync_loss(probe, mine, ref_p, idx, owner, frame, seq["open"][:, r])
            losses["total"] = losses["total"] + sync_weight * losses["sync"]
        judged = adversary is not None and mouths is not None
        if judged and "swapped" in seq:  # the critic only judges mouths whose truth it has
            keep = ~seq["swapped"][mouths[0][:, 0]]
            judged = bool(keep.any())
            mouths = tuple(x[keep] for x in mouths)
        if judged:
            idx, owner, frame, fake, ref_p = mouths
            aud = mouth_audio(model, seq, r, idx, owner, frame)
            real = model.patchify(seq["x0"][:, r])[idx[:, 0], idx[:, 1]]
            if adversary.live:
                losses["adv"] = student_adv_loss(adversary.critic, fake, ref_p, aud)
                losses["total"] = losses["total"] + adversary.weight * losses["adv"]
        losses["total"].backward()
        if judged:  # the critic's own step, after the student's gradients are taken
            adversary.opt.zero_grad(set_to_none=True)
            losses["critic"] = critic_loss(adversary.critic, real, fake, ref_p, aud)
            losses["critic"].backward()
            adversary.opt.step()
        out_losses.append({k: v.detach() for k, v in losses.items()})
        made = model.from_target(pred.detach(), base)  # the student's own chunk becomes context
        ctx = torch.cat((ctx, made), 1)[:, -w * c :] if w else ctx[:, :0]
    return out_losses


def train(args: argparse.Namespace) -> dict:
    if args.method not in METHODS:
        raise BYAError(f"--method must be one of {', '.join(METHODS)}, got {args.method!r}")
    if args.minutes <= 0 or args.batch < 1 or args.clips < 1 or args.rollout < 1:
        raise BYAError("--minutes, --batch, --clips and --rollout must be positive")
    if not (args.adv_weight >= 0 and args.adv_warmup >= 0 and args.critic_lr > 0):
        raise BYAError("--adv-weight and --adv-warmup must be >= 0 and --critic-lr positive")
    if args.mouth_weight is not None and not args.mouth_weight >= 1.0:
        raise BYAError(f"--mouth-weight must be at least 1, got {args.mouth_weight}")
    if not args.sync_weight >= 0:
        raise BYAError(f"--sync-weight must be >= 0, got {args.sync_weight}")
    if not 0.0 <= args.swap_audio < 1.0 or args.dialogues < 1:
        raise BYAError(f"--swap-audio must be in [0, 1) and --dialogues positive, got {args.swap_audio}")
    if args.swap_audio > 0 and args.sync_weight <= 0:
        raise BYAError("--swap-audio needs --sync-weight: only the sync probe supervises swapped audio")
    if args.window is not None and args.window < 0:
        raise BYAError(f"--window must be >= 0, got {args.window}")
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    init = load_generator(args.init, device)
    cfg = replace(init.cfg, router_prior=True) if args.router_prior else init.cfg
    window = cfg.window_chunks if args.window is None else args.window
    if window > cfg.window_chunks:
        raise BYAError(f"--window {window}: the model's positions cover at most {cfg.window_chunks} chunks")
    ae = load_autoencoder(args.autoencoder).to(device)
    model = Generator(cfg).to(device)
    missing, unexpected = model.load_state_dict(init.state_dict(), strict=False)
    if unexpected or any(not k.endswith("prior_gain") for k in missing):
        raise BYAError(f"--init {args.init}: weights do not fit ({missing + unexpected})")
    teacher = None
    if args.method == "teacher":
        teacher = load_generator(args.teacher or args.init, device).eval().requires_grad_(False)
    ema = Generator(cfg).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    # the audio path (encoder, per-block audio attention) starts from a teacher that barely uses it:
    # it gets a larger learning rate so lip sync is learned in the time a CPU run has
    audio_names = ("audio.", "audio_q", "audio_kv", "audio_out", "audio_norm")
    is_audio = [any(a in n for a in audio_names) for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    groups = [
        {"params": [p for p, a in zip(params, is_audio, strict=True) if a], "scale": args.audio_lr_scale},
        {"params": [p for p, a in zip(params, is_audio, strict=True) if not a], "scale": 1.0},
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.99))
    state_path = out / "state.pt"
    step, spent, log = _load_state(state_path, model, ema, opt, device) if args.resume else (0, 0.0, [])
    adversary, critic_path = None, out / "critic.pt"
    if args.adv_weight > 0:
        critic = MouthCritic(model.cfg.token_dim, model.cfg.width).to(device)
        adversary = Adversary(
            critic,
            torch.optim.AdamW(critic.parameters(), lr=args.critic_lr, betas=(0.5, 0.99)),
            args.adv_weight,
            args.adv_warmup,
        )
        if args.resume and critic_path.is_file():
            adversary.load_state_dict(torch.load(critic_path, map_location=device))
        elif args.critic_init:
            if not Path(args.critic_init).is_file():
                raise BYAError(f"--critic-init {args.critic_init}: no such file")
            adversary.load_state_dict(torch.load(args.critic_init, map_location=device))
            adversary.step = max(adversary.step, args.adv_warmup)  # a trained critic needs no warm-up
    probe = None
    if args.sync_weight > 0:
        probe = load_probe(args.sync_probe, cfg.token_dim).to(device)
    rng = np.random.default_rng([args.seed, step])
    pool = LatentPool(cfg, ae, args.device)
    t0 = time.perf_counter()
    if args.pool and Path(args.pool).is_file():
        pool.load(args.pool)
    else:
        pool.fill(
            [clip_seed(TRAIN_SEED + args.seed, i) for i in range(args.clips)], args.seconds, args.workers
        )
        pool.finalize()
        if args.pool:
            pool.save(args.pool)
    if args.ref_track >= 0 and not hasattr(pool, "track_z"):
        pool.add_tracks(args.workers)
        if args.pool:
            pool.save(args.pool)  # the tracks are rendered once and kept with the pool
    if probe is not None and not hasattr(pool, "open"):
        pool.add_openness()  # the dialogue alone, synthesized again: seconds
        if args.pool:
            pool.save(args.pool)
    if args.swap_audio > 0 and len(getattr(pool, "bank_n", ())) != args.dialogues:
        pool.add_dialogues(args.dialogues, args.workers)
        if args.pool:
            pool.save(args.pool)
    print(f"pool: {len(pool)} clips ready in {time.perf_counter() - t0:.0f} s", flush=True)

    budget = args.minutes * 60
    start, last_save, last_print, samples = time.perf_counter(), time.perf_counter(), 0.0, 0
    while spent + time.perf_counter() - start < budget:
        frac = (spent + time.perf_counter() - start) / budget
        lr = args.lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr * g["scale"]
        from_start = bool(rng.random() < args.start_prob)
        seq = pool.sequence(
            args.batch,
            args.rollout,
            window,
            rng,
            from_start=from_start,
            ref_near=args.ref_near,
            ref_track=args.ref_track,
            swap_audio=args.swap_audio,
        )
        opt.zero_grad(set_to_none=True)
        per_chunk = rollout_losses(
            model,
            seq,
            args.method,
            teacher,
            args.teacher_steps,
            args.context_noise,
            rng,
            window,
            args.listener_weight,
            args.isolation_weight,
            args.mouth_weight,
            adversary,
            probe,
            args.sync_weight,
        )
        if adversary is not None:
            adversary.step += 1
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema_update(ema, model, step, args.ema)
        step += 1
        samples += args.batch * args.rollout
        if step % args.log_every == 0:
            rec = {"step": step, "lr": lr}
            for k in per_chunk[0]:
                rec[k] = float(np.mean([d[k].item() for d in per_chunk if k in d]))
            rec["flow_last_chunk"] = per_chunk[-1]["flow"].item()
            log.append(rec)
            now = time.perf_counter() - start
            if now - last_print > 20:
                last_print = now
                print(
                    f"step {step} flow {rec['flow']:.4f} (last chunk {rec['flow_last_chunk']:.4f}) "
                    f"mask {rec['mask']:.4f} "
                    + (
                        f"critic {rec['critic']:.3f} adv {rec.get('adv', 0.0):.3f} "
                        if "critic" in rec
                        else ""
                    )
                    + (f"sync {rec['sync']:.4f} " if "sync" in rec else "")
                    + f"({(spent + now) / 60:.1f}/{args.minutes:.0f} min, "
                    f"{samples / now:.1f} chunks/s)",
                    flush=True,
                )
        if time.perf_counter() - last_save > args.save_every:
            _save_state(state_path, model, ema, opt, step, spent + time.perf_counter() - start, log)
            if adversary is not None:
                torch.save(adversary.state_dict(), critic_path)
            last_save = time.perf_counter()
    wall = time.perf_counter() - start
    spent += wall
    _save_state(state_path, model, ema, opt, step, spent, log)
    if adversary is not None:
        torch.save(adversary.state_dict(), critic_path)
    facts = {
        "kind": "student",
        "method": args.method,
        "steps": step,
        "batch": args.batch,
        "rollout_chunks": args.rollout,
        "start_prob": args.start_prob,
        "chunks_per_second": samples / max(wall, 1e-9),
        "train_minutes": spent / 60,
        "pool_clips": len(pool),
        "train_seeds": f"clip_seed({TRAIN_SEED + args.seed}, 0..{len(pool) - 1})",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "final_losses": log[-1] if log else None,
        "loss_weights": LOSS_WEIGHTS,
        "init": args.init,
        "teacher": (args.teacher or args.init) if teacher is not None else None,
        "teacher_steps": args.teacher_steps if teacher is not None else None,
        "context_noise": args.context_noise,
        "audio_lr_scale": args.audio_lr_scale,
        "lr": args.lr,
        "sampling_steps": 1,
        "stream_window_chunks": window,
        "router_prior": cfg.router_prior,
        "ref_near": args.ref_near,
        "ref_track": args.ref_track,
        "listener_weight": args.listener_weight,
        "isolation_weight": args.isolation_weight,
        "mouth_weight": args.mouth_weight if args.mouth_weight is not None else MOUTH_TOKEN_WEIGHT,
        "adv_weight": args.adv_weight,
        **({"adv_warmup": args.adv_warmup, "critic_lr": args.critic_lr} if args.adv_weight > 0 else {}),
        "sync_weight": args.sync_weight,
        "swap_audio": args.swap_audio,
        **({"dialogue_bank": args.dialogues} if args.swap_audio > 0 else {}),
        **({"sync_probe": str(args.sync_probe)} if args.sync_weight > 0 else {}),
    }
    save_generator(
        ema.cpu(), out / "student.safetensors", extra={"training": facts}, autoencoder=args.autoencoder
    )
    (out / "train_log.json").write_text(json.dumps(log))
    if log:
        save_loss_plot(log, out / "loss.png")
    print(json.dumps(facts, indent=1), flush=True)
    return facts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", default="regress", help=f"one of {', '.join(METHODS)}")
    p.add_argument("--init", default=str(TEACHER.generator_path), help="starting weights")
    p.add_argument("--teacher", default=None, help="teacher for --method teacher (default: --init)")
    p.add_argument("--teacher-steps", type=int, default=4)
    p.add_argument("--out", default="runs/student")
    p.add_argument("--autoencoder", default=str(SHIPPED.autoencoder_path))
    p.add_argument("--minutes", type=float, default=30.0, help="total training time, counting resumed runs")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rollout", type=int, default=4, help="chunks generated in a row per sample")
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="clean chunks of context the student streams with (default: the model's window; 0: the "
        "reference alone, each chunk from the reference and its audio: nothing can compound)",
    )
    p.add_argument("--start-prob", type=float, default=0.3, help="share of runs that begin a session")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--clips", type=int, default=150)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--pool", default=None, help="file caching the rendered pool (shared between runs)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log-every", type=int, default=5)
    p.add_argument("--save-every", type=float, default=120.0)
    p.add_argument("--context-noise", type=float, default=0.1)
    p.add_argument("--audio-lr-scale", type=float, default=5.0, help="learning-rate factor of the audio path")
    p.add_argument("--resume", action="store_true")
    p.add_argument(
        "--listener-weight",
        type=float,
        default=1.0,
        help="extra loss weight on the mouths of characters whose stream is silent (a listener's mouth "
        "moving with another voice is the binding failure users see)",
    )
    p.add_argument(
        "--mouth-weight",
        type=float,
        default=None,
        help=f"loss weight of tokens covering a mouth (default: the pool's, {MOUTH_TOKEN_WEIGHT:g}); "
        "the mouths are ~3%% of tokens and all of lip sync",
    )
    p.add_argument(
        "--adv-weight",
        type=float,
        default=0.0,
        help="weight of the mouth critic's adversarial term (distill.train.mouth_critic): the student commits "
        "to one sharp mouth instead of the average of all the audio allows (0: off)",
    )
    p.add_argument(
        "--sync-weight",
        type=float,
        default=0.0,
        help="weight of the lip-sync term (distill.train.mouth_probe): a frozen probe, trained on true latents "
        "only, reads how open each of the student's mouth tokens is; it must match the world's mouth in "
        "that frame (0: off)",
    )
    p.add_argument(
        "--swap-audio",
        type=float,
        default=0.0,
        help="share of samples that hear a fresh dialogue (audio only, from a bank) instead of their "
        "clip's: their mouths are supervised by the sync probe alone; lip sync then learns from far more "
        "speech than the rendered pool holds (0: off)",
    )
    p.add_argument("--dialogues", type=int, default=1200, help="dialogues in the bank for --swap-audio")
    p.add_argument(
        "--sync-probe",
        default="distill/weights/mouth_probe.safetensors",
        help="the probe for --sync-weight (python -m distill.train.mouth_probe)",
    )
    p.add_argument("--adv-warmup", type=int, default=200, help="steps the critic learns alone first")
    p.add_argument("--critic-lr", type=float, default=2e-4)
    p.add_argument(
        "--critic-init",
        default=None,
        help="start the mouth critic from an earlier run's critic.pt (a new stage from trained weights)",
    )
    p.add_argument(
        "--isolation-weight",
        type=float,
        default=0.0,
        help="weight of the listener-isolation loss: listeners' tokens must match the model's own output "
        "with every stream silent (0: off)",
    )
    p.add_argument(
        "--ref-near",
        type=int,
        default=0,
        help="with --window 0: the reference is one of this many frames before the chunk (0: frame 0)",
    )
    p.add_argument(
        "--ref-track",
        type=int,
        default=-1,
        help="with --window 0: the reference is the clip's pose track (standing choreography, faces at "
        "rest) 0 to this many frames before the chunk; -1: off",
    )
    p.add_argument(
        "--router-prior",
        action="store_true",
        help="give the router the reference-mask prior (cfg.router_prior) if --init lacks it",
    )


def train_command(args: argparse.Namespace) -> int:
    train(args)
    return 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    add_arguments(p)
    train(p.parse_args(argv))


if __name__ == "__main__":
    main()
