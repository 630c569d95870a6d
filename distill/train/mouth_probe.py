"""A lip-sync expert in latent space, for the 1-step student (`bya train student --sync-weight W`).

Regression teaches the student the mean mouth token for an audio window, and the mouth critic makes it
commit to one real-looking mouth; neither says *how open* the mouth should be in this frame. Lip sync is
exactly that, and openness is a small part of a mouth token's change (the viseme, teeth and where the
lips sit inside a 16-pixel token are the rest), so the token regression weighs it little. The classic cure
is a frozen sync expert (Wav2Lip's SyncNet): here a small probe, trained on the ground truth's latents
only, reads each mouth token's openness; the student's loss then asks its mouth tokens to read as open
as the world's mouths are in that frame.

The probe sees a mouth token's latent patch and the reference frame's patch at the same place (which
face, where its mouth sits), like the critic, and predicts the openness of the character the token
belongs to. It never sees generated frames or the evaluation's pixel reader (distill.eval.mouth_reader),
so the harness stays an independent judge.

`bya train mouth-probe --pool POOL` (or `python -m distill.train.mouth_probe`)
trains it on a pool (with tracks) and reports the held-out correlation per character.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from distill.data.latent_pool import is_mouth_token
from realtime.errors import BYAError
from realtime.model.router import token_weights
from realtime.model.spec import SHIPPED

PROBE_FORMAT = "bya-mouth-probe"


class MouthProbe(nn.Module):
    """A character's mouth tokens in one frame -> how open that mouth is, in [0, 1].

    A mouth rarely sits inside one 16-pixel token: it straddles two or four, and each sees a part. Each
    token (its latent patch and the reference frame's patch at the same place: which face, where its
    mouth sits) is embedded alone, the embeddings of one character's tokens in one frame are averaged
    (any number of tokens, in any order), and the mean is read out.
    """

    def __init__(self, token_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.token_dim, self.hidden = token_dim, hidden
        self.embed = nn.Sequential(nn.Linear(2 * token_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.read = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(
        self, patch: torch.Tensor, ref: torch.Tensor, group: torch.Tensor, groups: int
    ) -> torch.Tensor:
        """patch, ref (n, D); group (n,) in [0, groups): which mouth each token shows -> (groups,)."""
        e = self.embed(torch.cat((patch - ref, ref), -1))
        count = e.new_zeros(groups).index_add_(0, group, e.new_ones(len(e)))
        mean = e.new_zeros(groups, e.shape[1]).index_add_(0, group, e) / count.clamp(min=1)[:, None]
        return torch.sigmoid(self.read(mean).squeeze(-1))


def mouth_groups(idx: torch.Tensor, owner: torch.Tensor, frame: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Which mouth (sample, frame, character) each mouth token shows: (group per token, and per group its
    sample, frame and character)."""
    uniq, group = torch.stack((idx[:, 0], frame, owner), 1).unique(dim=0, return_inverse=True)
    return group, uniq[:, 0], uniq[:, 1], uniq[:, 2]


def mouth_owners(
    cfg, seq: dict[str, torch.Tensor], r: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Chunk r's mouth tokens: index (n, 2) of (sample, token), the character each belongs to (the one
    whose mask covers most of it) and the frame of the chunk it is in; n may be 0."""
    idx = is_mouth_token(seq["mouth"][:, r]).nonzero()
    owner = token_weights(seq["masks"][:, r], cfg.mask_sub).argmax(-1)[idx[:, 0], idx[:, 1]]
    return idx, owner, idx[:, 1] // cfg.frame_tokens


def reference_patches(model, base: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(n, D): the reference frame's latent patch at each mouth token's place."""
    t = model.cfg.chunk_frames
    return model.patchify(base[:, None].expand(-1, t, -1, -1, -1))[idx[:, 0], idx[:, 1]]


def sync_loss(
    probe: MouthProbe,
    fake: torch.Tensor,
    ref: torch.Tensor,
    idx: torch.Tensor,
    owner: torch.Tensor,
    frame: torch.Tensor,
    openness: torch.Tensor,
) -> torch.Tensor:
    """Squared error between how open the probe reads each of the student's mouths and the truth
    (`openness`: (B, C, K) of the chunk); the probe is frozen, the gradient goes to the student."""
    group, b, f, k = mouth_groups(idx, owner, frame)
    return (probe(fake, ref, group, len(b)) - openness[b, f, k]).pow(2).mean()


@torch.no_grad()
def gather_mouths(model, pool, batches: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """The true mouth tokens of `batches` random chunks of 64 (reference from the pose track, as the
    student trains): patch, ref (n, D), group (n,) over all of them, and each group's openness."""
    parts, offset = {"patch": [], "ref": [], "group": [], "open": []}, 0
    for _ in range(batches):
        seq = pool.sequence(64, 1, 0, rng, ref_track=2)
        idx, owner, frame = mouth_owners(model.cfg, seq, 0)
        group, b, f, k = mouth_groups(idx, owner, frame)
        parts["patch"].append(model.patchify(seq["x0"][:, 0])[idx[:, 0], idx[:, 1]])
        parts["ref"].append(reference_patches(model, seq["ref"], idx))
        parts["group"].append(group + offset)
        parts["open"].append(seq["open"][:, 0][b, f, k])
        offset += len(b)
    return {k: torch.cat(v) for k, v in parts.items()}


@torch.no_grad()
def probe_r(probe: MouthProbe, data: dict[str, torch.Tensor]) -> dict:
    """Pearson r and RMSE between the probe's reading of every mouth in `data` and the truth."""
    got = probe(data["patch"], data["ref"], data["group"], len(data["open"]))
    r = float(torch.corrcoef(torch.stack((got, data["open"])))[0, 1])
    return {"r": r, "rmse": float((got - data["open"]).pow(2).mean().sqrt()), "mouths": len(got)}


def save_probe(probe: MouthProbe, path: str | Path, facts: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in probe.state_dict().items()}, str(path))
    meta = {"format": PROBE_FORMAT, "token_dim": probe.token_dim, "hidden": probe.hidden, "training": facts}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))


def load_probe(path: str | Path, token_dim: int) -> MouthProbe:
    """A frozen probe from `save_probe`'s files; a missing, foreign or mismatched file is a BYAError."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise BYAError(f"mouth probe {path}: needs {path.name} and {meta_path.name}")
    try:
        meta = json.loads(meta_path.read_text())
        state = load_file(str(path))
    except Exception as e:  # any unreadable file is the same user error
        raise BYAError(f"mouth probe {path}: unreadable ({type(e).__name__}: {e})") from None
    if meta.get("format") != PROBE_FORMAT:
        raise BYAError(f"mouth probe {path}: format {meta.get('format')!r}, expected {PROBE_FORMAT!r}")
    if meta.get("token_dim") != token_dim:
        raise BYAError(
            f"mouth probe {path}: made for token_dim {meta.get('token_dim')}, the model has {token_dim}"
        )
    probe = MouthProbe(token_dim, int(meta["hidden"]))
    try:
        probe.load_state_dict(state)
    except RuntimeError as e:
        raise BYAError(f"mouth probe {path}: weights do not fit ({str(e).splitlines()[0]})") from None
    return probe.eval().requires_grad_(False)


def train_probe(args: argparse.Namespace) -> dict:
    from distill.data.latent_pool import LatentPool
    from realtime.model.checkpoint import load_generator
    from realtime.model.generator import Generator

    if args.steps < 1 or args.holdout < 1 or args.gather < 1 or args.batch < 1 or args.noise < 0:
        raise BYAError("--steps, --holdout, --gather and --batch must be positive and --noise >= 0")
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_generator(args.model, "cpu").cfg
    model = Generator(cfg)  # for its token geometry only
    pool = LatentPool(cfg, None, "cpu")
    pool.load(args.pool)
    if not hasattr(pool, "track_z"):
        raise BYAError(
            f"--pool {args.pool}: needs the pose tracks (bya train student --ref-track ... --pool)"
        )
    if not hasattr(pool, "open"):
        pool.add_openness()
    n = len(pool)
    if args.holdout >= n:
        raise BYAError(f"--holdout {args.holdout}: the pool has only {n} clips")
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    train = gather_mouths(model, pool.subset(list(range(n - args.holdout))), args.gather, rng)
    val = gather_mouths(model, pool.subset(list(range(n - args.holdout, n))), max(args.gather // 5, 1), rng)
    groups = len(train["open"])
    probe = MouthProbe(cfg.token_dim, args.hidden)
    opt = torch.optim.AdamW(probe.parameters(), lr=args.lr, weight_decay=1e-2)
    curve = []
    for step in range(1, args.steps + 1):
        lr = args.lr * 0.5 * (1 + np.cos(np.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        pick = torch.zeros(groups, dtype=torch.bool)
        pick[torch.randint(0, groups, (args.batch,))] = True
        sel = pick[train["group"]]
        renum = torch.cumsum(pick.long(), 0) - 1
        patch = train["patch"][sel]
        patch = patch + args.noise * torch.randn_like(patch)  # a generated mouth is never the exact truth
        got = probe(patch, train["ref"][sel], renum[train["group"][sel]], int(pick.sum()))
        loss = F.mse_loss(got, train["open"][pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 1000 == 0 or step == args.steps:
            probe.eval()
            curve.append({"step": step, "train_mse": float(loss.detach()), **probe_r(probe, val)})
            probe.train()
            print(f"step {step} mse {float(loss):.4f} held-out r {curve[-1]['r']:.3f}", flush=True)
    probe.eval()
    facts = {
        "command": getattr(args, "command_line", "(not recorded)"),
        "pool": str(args.pool),
        "train_clips": n - args.holdout,
        "held_out_clips": args.holdout,
        "train_mouths": groups,
        "steps": args.steps,
        "batch_mouths": args.batch,
        "input_noise": args.noise,
        "minutes": (time.perf_counter() - t0) / 60,
        "held_out": probe_r(probe, val),
        "train": probe_r(probe, train),
        "curve": curve,
        "parameters": sum(p.numel() for p in probe.parameters()),
    }
    save_probe(probe, args.out, facts)
    print(json.dumps({k: v for k, v in facts.items() if k != "curve"}, indent=1), flush=True)
    return facts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pool", required=True, help="a saved LatentPool with pose tracks (bya train student --pool)"
    )
    p.add_argument("--model", default=str(SHIPPED.generator_path), help="for the config")
    p.add_argument("--out", default="distill/weights/mouth_probe.safetensors")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--gather", type=int, default=300, help="random chunks of 64 the probe learns from")
    p.add_argument("--holdout", type=int, default=15, help="last clips of the pool kept for the report")
    p.add_argument("--batch", type=int, default=256, help="mouths per step")
    p.add_argument("--noise", type=float, default=0.2, help="Gaussian noise added to the patches")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)


def train_command(args: argparse.Namespace) -> int:
    import sys

    args.command_line = " ".join(["bya", *sys.argv[1:]])
    train_probe(args)
    return 0


def main(argv: list[str] | None = None) -> None:
    import sys

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    args = p.parse_args(argv)
    args.command_line = " ".join(
        ["python -m distill.train.mouth_probe", *(sys.argv[1:] if argv is None else argv)]
    )
    try:
        train_probe(args)
    except BYAError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
