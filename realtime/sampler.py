"""Offline sampling with the teacher: a whole clip, chunk after chunk, each chunk's context its own past.

Euler steps of the rectified flow from noise (t=1) to data (t=0). The context of a chunk is the window of
chunks generated before it, exactly as the streaming engine will see them; the router's masks of the last
step are returned with the frames. This is what evaluation and `bya demo` run; the live engine streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from realtime.audio_features import frame_windows, log_mel
from realtime.autoencoder import FrameAutoencoder, frames_to_tensor, tensor_to_frames
from realtime.generator import Generator
from realtime.media import MAX_CHARACTERS, SAMPLES_PER_FRAME
from realtime.router import MaskRefiner


@dataclass
class Generated:
    """A generated clip."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    masks: np.ndarray  # (T, N, M, M) float32 router masks of the N characters
    refined: np.ndarray  # (T, N, M, M) the same after MaskRefiner (drop, hysteresis, one region each)
    latents: torch.Tensor  # (T, C, h, w)


def pad_characters(x: np.ndarray, k: int = MAX_CHARACTERS) -> np.ndarray:
    """Zero-pad the leading (character) axis of x to k."""
    out = np.zeros((k, *x.shape[1:]), dtype=x.dtype)
    out[: x.shape[0]] = x
    return out


@torch.no_grad()
def generate(
    model: Generator,
    ae: FrameAutoencoder,
    reference: np.ndarray,  # (H, W, 3) uint8 first frame of the scene
    ref_masks: np.ndarray,  # (N, H, W) where each character is in the reference frame
    audio: np.ndarray,  # (S, samples) one audio stream per row, 16 kHz
    bind: np.ndarray | None = None,  # (S, N) stream -> character; identity if None
    n_frames: int | None = None,
    steps: int = 8,
    seed: int = 0,
    external: np.ndarray | None = None,  # (T, N, M, M) masks from outside to route with instead
) -> Generated:
    cfg = model.cfg
    size = cfg.frame_size
    if reference.shape != (size, size, 3) or reference.dtype != np.uint8:
        raise ValueError(
            f"reference must be a ({size}, {size}, 3) uint8 frame, got {reference.shape} {reference.dtype}"
        )
    if (
        ref_masks.ndim != 3
        or ref_masks.shape[1:] != (size, size)
        or not 1 <= ref_masks.shape[0] <= MAX_CHARACTERS
    ):
        raise ValueError(f"ref_masks must be (1-{MAX_CHARACTERS}, {size}, {size}), got {ref_masks.shape}")
    if (
        audio.ndim != 2
        or not 1 <= audio.shape[0] <= MAX_CHARACTERS
        or audio.shape[1] < SAMPLES_PER_FRAME * cfg.chunk_frames
    ):
        raise ValueError(
            f"audio must be (1-{MAX_CHARACTERS} streams, samples) holding at least one chunk "
            f"({SAMPLES_PER_FRAME * cfg.chunk_frames} samples), got {audio.shape}"
        )
    if not 1 <= steps <= 1000:
        raise ValueError(f"steps must be in [1, 1000], got {steps}")
    n = ref_masks.shape[0]
    s = audio.shape[0]
    if bind is None:
        if s != n:
            raise ValueError(f"{s} audio streams for {n} characters need an explicit bind matrix")
        bind = np.eye(n, dtype=np.float32)
    if bind.shape != (s, n):
        raise ValueError(f"bind must be (streams, characters) = ({s}, {n}), got {bind.shape}")
    total = audio.shape[1] // SAMPLES_PER_FRAME if n_frames is None else n_frames
    c, w = cfg.chunk_frames, cfg.window_chunks
    n_chunks = total // c
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)

    ref = frames_to_tensor(reference[None], dev)
    z_ref = ae.encode(ref)[0]
    m = cfg.mask_size
    rm = F.adaptive_avg_pool2d(torch.from_numpy(pad_characters(ref_masks.astype(np.float32))), m)[None].to(
        dev
    )
    streams = np.zeros((MAX_CHARACTERS, audio.shape[1]), np.float32)
    streams[:s] = audio
    mel = log_mel(streams, cfg.n_mels).to(dev)
    b = torch.zeros(1, MAX_CHARACTERS, MAX_CHARACTERS, device=dev)
    b[0, :s, :n] = torch.from_numpy(bind.astype(np.float32))
    ext = None
    if external is not None:
        ext = (
            torch.from_numpy(pad_characters(external.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3))
            .float()
            .to(dev)
        )

    latents: list[torch.Tensor] = []
    masks: list[torch.Tensor] = []
    ts = torch.linspace(1.0, 0.0, steps + 1)
    for j in range(n_chunks):
        first = j * c
        ctx = latents[max(0, j - w) * c : first]
        context = torch.stack(ctx)[None] if ctx else z_ref.new_zeros(1, 0, *z_ref.shape)
        windows = frame_windows(mel, first, c, cfg.audio_past_ms, cfg.audio_lookahead_ms)[None]
        x = torch.randn((1, c, *z_ref.shape), generator=gen).to(dev)
        route = None if ext is None else ext[None, first : first + c]
        for i in range(steps):
            t = ts[i].expand(1).to(dev)
            out = model(x, t, z_ref[None], context, windows, b, rm, external=route, mix=1.0)
            x = x + (ts[i + 1] - ts[i]).item() * out.velocity
        latents.extend(model.from_target(x, model.base(z_ref[None], context))[0])
        masks.append(out.masks[0] if route is None else route[0])
    z = torch.stack(latents)
    frames = torch.cat([ae.decode(z[i : i + 32]) for i in range(0, len(z), 32)])
    frames = tensor_to_frames(frames)
    raw = torch.cat(masks)[:, :n].float().cpu().numpy()
    refiner = MaskRefiner()
    return Generated(frames, raw, np.stack([refiner(m) for m in raw]), z.cpu())


def upsample_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """(T, N, M, M) router masks -> (T, N, size, size), bilinear (what the harness compares)."""
    return F.interpolate(
        torch.from_numpy(masks), size=(size, size), mode="bilinear", align_corners=False
    ).numpy()
