"""The rig field: what a rig generator generates instead of image latents.

A frame is a (C, h, w) map at latent resolution over the model's square. Inside each character's head
region every cell holds that character's pose values (mouth openness and width, speech energy, brow,
speaking), outside it zero; channel 0 says where heads are (1 inside). The field carries no pixels, so the
same generator drives any picture: a renderer reads each face's values back (`read_rig`) and moves the
user's own picture (realtime.scene.picture.render) or draws the cartoon world at any size. The MM-DiT and
its Embedding Router are unchanged: the router still decides which region follows which voice.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# channel name -> (rest value, scale): a cell holds mask * (value - rest) / scale
CHANNELS: tuple[tuple[str, float, float], ...] = (
    ("presence", 0.0, 1.0),  # 1 inside a head: the layout the generator is told (the reference)
    ("openness", 0.0, 0.5),  # mouth openness in [0, 1]
    ("width", 0.5, 0.25),  # mouth width in [0, 1], 0.5 relaxed
    ("energy", 0.0, 0.5),  # speech energy in [0, 1] (smoothed speaking flag): drives head motion
    ("brow", 0.0, 0.5),  # brow raise in [0, 1] (emphasis)
    ("active", 0.0, 0.5),  # 1 while the character speaks
    ("spare0", 0.0, 1.0),  # zero: keeps the 8-channel shape of the latent models it starts from
    ("spare1", 0.0, 1.0),
)
NAMES = tuple(c[0] for c in CHANNELS)
RIG_CHANNELS = len(CHANNELS)
VALUES = NAMES[1:6]  # what a character's rig holds
_REST = np.array([c[1] for c in CHANNELS], np.float32)
_SCALE = np.array([c[2] for c in CHANNELS], np.float32)


def rest_values() -> np.ndarray:
    """(len(VALUES),) the rest value of each rig value: a face as its picture shows it."""
    return _REST[1:6].copy()


def latent_masks(masks: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """(N, S, S) character masks at any resolution -> (N, size, size) float32 at the field's resolution."""
    m = torch.as_tensor(np.asarray(masks, np.float32) if not torch.is_tensor(masks) else masks).float()
    return F.adaptive_avg_pool2d(m, size)


def paint(values: np.ndarray | torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """values (T, N, len(VALUES)) rig values, masks (N, h, w) at field resolution -> (T, C, h, w) field."""
    v = torch.as_tensor(values, dtype=torch.float32)
    t, n = v.shape[:2]
    full = torch.zeros(t, n, RIG_CHANNELS)
    full[:, :, 0] = 1.0
    full[:, :, 1:6] = (v - torch.from_numpy(_REST[1:6])) / torch.from_numpy(_SCALE[1:6])
    return torch.einsum("tnc,nhw->tchw", full, masks.float())


def reference_field(masks: torch.Tensor) -> torch.Tensor:
    """(C, h, w): every face at rest, i.e. only the layout (the generator's reference frame)."""
    return paint(rest_values()[None, None].repeat(masks.shape[0], 1), masks)[0]


def read_rig(field: torch.Tensor, masks: torch.Tensor) -> np.ndarray:
    """field (T, C, h, w), masks (N, h, w) -> (T, N, len(VALUES)) float32 rig values: each channel's
    least-squares value over the character's region (what `paint` put there), clipped to its range."""
    m = masks.float()
    # a cell holds mask * value. Cells another character also covers (neighbours' touching edges) are
    # left out: there the other's values add in. Weighting the rest by the mask and dividing by
    # sum(mask * weight) gives the value back exactly, soft edges included.
    others = (m.sum(0, keepdim=True) - m).clamp(0.0, 1.0)
    w = m * (1.0 - others) ** 2
    w = w / (m * w).sum((-1, -2), keepdim=True).clamp_min(1e-6)
    cells = torch.einsum("tchw,nhw->tnc", field.float(), w)[..., 1:6]
    v = cells * torch.from_numpy(_SCALE[1:6]) + torch.from_numpy(_REST[1:6])
    return v.clamp(0.0, 1.0).numpy()


def ellipse_masks(boxes: np.ndarray, size: int, order_far_to_near: bool = True) -> np.ndarray:
    """(N, 4) head boxes in [0, 1] square units -> (N, size, size) soft ellipses; where heads overlap the
    later (nearer) one covers the earlier, as the cartoon world composites its characters."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    out = np.zeros((len(boxes), size, size), np.float32)
    px = 1.0 / size
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        rx, ry = max((x1 - x0) / 2, px), max((y1 - y0) / 2, px)
        d = np.hypot((c[None, :] - (x0 + x1) / 2) / rx, (c[:, None] - (y0 + y1) / 2) / ry)
        out[k] = np.clip((1.0 - d) * min(rx, ry) / px + 0.5, 0.0, 1.0)
    if order_far_to_near:
        for k in range(len(boxes) - 2, -1, -1):
            out[k] *= np.prod(1.0 - out[k + 1 :], axis=0)
    return out
