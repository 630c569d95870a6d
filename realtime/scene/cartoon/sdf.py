"""Signed-distance primitives the cartoon renderer draws with (torch, vectorised over frames and pixels).

Every function returns the signed distance in scene units (negative inside) and broadcasts over its
arguments, so a (T, 1, 1) per-frame radius against a (T, H, W) pixel grid draws all frames at once.
`coverage` turns a distance into anti-aliased alpha, which keeps pictures alike across resolutions.
"""

from __future__ import annotations

import torch
from torch import Tensor

Scalar = float | Tensor


def coverage(d: Tensor, px: float) -> Tensor:
    """Fraction of a pixel of width px covered by the inside of d: a one-pixel linear ramp."""
    return (0.5 - d / px).clamp_(0.0, 1.0)


def circle(x: Tensor, y: Tensor, r: Scalar) -> Tensor:
    return torch.hypot(x, y) - r


def ellipse(x: Tensor, y: Tensor, a: Scalar, b: Scalar) -> Tensor:
    """Approximate distance to an axis-aligned ellipse with semi-axes a, b; exact on its boundary."""
    u, v = x / a, y / b
    k0 = torch.hypot(u, v)
    k1 = torch.hypot(u / a, v / b).clamp_(min=1e-9)
    return k0 * (k0 - 1.0) / k1


def superellipse(x: Tensor, y: Tensor, a: Scalar, b: Scalar, p: Scalar) -> Tensor:
    """Approximate distance to |x/a|^p + |y/b|^p = 1: the level-set value over its gradient length.

    p = 2 is an ellipse, larger p tends to a rounded rectangle; p may be a per-frame tensor.
    """
    # The clamp keeps the centre finite: there f and its gradient both vanish, their ratio does not.
    u = (x.abs() / a).clamp_(min=1e-4)
    v = (y.abs() / b).clamp_(min=1e-4)
    up, vp = u.pow(p - 1.0), v.pow(p - 1.0)
    f = (up * u + vp * v).pow(1.0 / p)
    grad = torch.hypot(up / a, vp / b)
    return (f - 1.0) * f.pow(p - 1.0) / grad


def round_box(x: Tensor, y: Tensor, hw: Scalar, hh: Scalar, r: Scalar) -> Tensor:
    """Distance to a box of half-size hw x hh whose corners are rounded with radius r."""
    qx = x.abs() - hw + r
    qy = y.abs() - hh + r
    outside = torch.hypot(qx.clamp(min=0.0), qy.clamp(min=0.0))
    inside = torch.maximum(qx, qy).clamp_(max=0.0)
    return outside + inside - r


def segment(x: Tensor, y: Tensor, ax: Scalar, ay: Scalar, bx: Scalar, by: Scalar, r: Scalar) -> Tensor:
    """Distance to a capsule: the segment (ax, ay)-(bx, by) thickened by radius r."""
    px, py = x - ax, y - ay
    dx, dy = bx - ax, by - ay
    h = ((px * dx + py * dy) / (dx * dx + dy * dy + 1e-12)).clamp_(0.0, 1.0)
    return torch.hypot(px - dx * h, py - dy * h) - r


def ring(d: Tensor, half_thickness: Scalar) -> Tensor:
    """The outline of a shape: a band of the given half thickness around its boundary."""
    return d.abs() - half_thickness


def intersect(a: Tensor, b: Tensor) -> Tensor:
    return torch.maximum(a, b)


def subtract(a: Tensor, b: Tensor) -> Tensor:
    """The part of a outside b."""
    return torch.maximum(a, -b)


def rotate(x: Tensor, y: Tensor, cos: Scalar, sin: Scalar) -> tuple[Tensor, Tensor]:
    """Coordinates in a frame rotated by the angle whose cosine and sine are given."""
    return cos * x + sin * y, cos * y - sin * x
