"""Offline sampling: a whole clip, chunk after chunk, each chunk's context its own past.

Euler steps of the rectified flow from noise (t=1) to data (t=0), run through a StreamingGenerator
session, so evaluation and `bya demo` measure exactly what the live engine streams. The router's masks
of the last step are returned with the frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from realtime.media import SAMPLES_PER_FRAME
from realtime.model.autoencoder import FrameAutoencoder, tensor_to_frames
from realtime.model.generator import Generator
from realtime.stream.options import SamplingOptions
from realtime.stream.session import POSE_LAG, StreamingGenerator

OFFLINE = SamplingOptions(steps=8)  # without options: the teacher's own offline setting, full window


@dataclass
class Generated:
    """A generated clip."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    masks: np.ndarray  # (T, N, M, M) float32 router masks of the N characters
    refined: np.ndarray  # (T, N, M, M) the same after MaskRefiner (drop, hysteresis, one region each)
    latents: torch.Tensor  # (T, C, h, w)


@torch.no_grad()
def generate(
    model: Generator,
    ae: FrameAutoencoder,
    reference: np.ndarray,  # (H, W, 3) uint8 first frame of the scene
    ref_masks: np.ndarray,  # (N, H, W) where each character is in the reference frame
    audio: np.ndarray,  # (S, samples) one audio stream per row, 16 kHz
    bind: np.ndarray | None = None,  # (S, N) stream -> character; identity if None
    n_frames: int | None = None,
    options: SamplingOptions = OFFLINE,  # steps, window, seed, isolation, guidance (StreamingGenerator)
    external: np.ndarray | None = None,  # (T, N, M, M) masks from outside to route with instead
    poses: tuple[np.ndarray, np.ndarray] | None = None,  # (T, H, W, 3) frames, (T, N, H, W) masks: a track
) -> Generated:
    """A whole clip through a StreamingGenerator session: the exact computation the live engine streams."""
    cfg = model.cfg
    if (
        audio.ndim != 2
        or not 1 <= audio.shape[0] <= cfg.max_characters
        or audio.shape[1] < SAMPLES_PER_FRAME * cfg.chunk_frames
    ):
        raise ValueError(
            f"audio must be (1-{cfg.max_characters} streams, samples) holding at least one chunk "
            f"({SAMPLES_PER_FRAME * cfg.chunk_frames} samples), got {audio.shape}"
        )
    c = cfg.chunk_frames
    total = audio.shape[1] // SAMPLES_PER_FRAME if n_frames is None else n_frames
    n_chunks = total // c
    if n_chunks < 1:
        raise ValueError(f"n_frames must cover at least one chunk ({c} frames), got {total}")
    route = None
    if external is not None:
        if external.ndim != 4 or external.shape[0] < n_chunks * c:
            raise ValueError(f"external masks must be (T >= {n_chunks * c}, N, M, M), got {external.shape}")

        def route(j: int) -> np.ndarray:
            return external[j * c : (j + 1) * c]

    reposed = None
    if poses is not None:
        frames_track, masks_track = poses
        if len(frames_track) < n_chunks * c or len(masks_track) < n_chunks * c:
            raise ValueError(f"a pose track must cover the {n_chunks * c} frames generated")

        def reposed(j: int) -> tuple[np.ndarray, np.ndarray]:
            f = max(
                0, j * c - POSE_LAG
            )  # what the student was trained with: a reference just before its chunk
            return frames_track[f], masks_track[f]

    session = StreamingGenerator(
        model,
        ae,
        reference,
        ref_masks,
        streams=audio.shape[0],
        bind=bind,
        options=options,
        external=route,
        poses=reposed,
    )
    chunks = session.push(audio[:, : session.samples_needed(n_chunks - 1)].astype(np.float32), decode=False)
    if len(chunks) < n_chunks:
        chunks += session.flush(decode=False)
    chunks = chunks[:n_chunks]
    z = torch.cat([ch.latents for ch in chunks])
    if getattr(ae, "is_rig", False):  # a rig model's codec moves its scene's picture chunk by chunk
        frames = np.concatenate([ae.decode_chunk(ch.latents, ch.first_frame) for ch in chunks])
    else:
        frames = tensor_to_frames(torch.cat([ae.decode(z[i : i + 32]) for i in range(0, len(z), 32)]))
    masks = np.concatenate([ch.masks for ch in chunks])
    refined = np.concatenate([ch.refined for ch in chunks])
    return Generated(frames, masks, refined, z.cpu())


def upsample_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """(T, N, M, M) router masks -> (T, N, size, size), bilinear (what the harness compares)."""
    return F.interpolate(
        torch.from_numpy(masks), size=(size, size), mode="bilinear", align_corners=False
    ).numpy()
