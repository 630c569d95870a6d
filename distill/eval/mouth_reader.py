"""The mouth reader, our SyncNet: a tiny CNN that reads a character's mouth openness from video.

`crop_mouths` resamples each character's ground-truth mouth box (padded, plus neighbour frames) to a
fixed square, so any frame size works; `MouthReader` regresses openness in [0, 1] from it. The
harness (`distill.eval.harness`) uses it to score lip sync and binding of any video of the world.
Training (`bya train mouth-reader --out distill/weights --minutes 12`) is in `distill.train.mouth_reader`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realtime.errors import CheckpointError

WEIGHTS_DIR = Path(__file__).parent.parent / "weights"
DEFAULT_NAME = "mouth_reader"  # <dir>/mouth_reader.safetensors + <dir>/mouth_reader.json
FORMAT = "bya-mouth-reader"
FORMAT_VERSION = 1
VISIBLE_MIN = 0.5  # a mouth counts as visible when at least half its box shows its own character


@dataclass(frozen=True)
class MouthReaderConfig:
    """Architecture and crop geometry; stored beside the weights so loading needs nothing else."""

    crop: int = 32  # px side of the resampled crop; a cartoon mouth needs no more than this
    context: int = 1  # neighbour frames each side: motion disambiguates a half-open, blurred mouth
    margin: float = (
        0.25  # padding per side, x the box's larger side; the world's box already spans the widest mouth
    )
    min_side: float = 4.0  # px; floor on the crop side so a degenerate (off-screen) box still samples
    widths: tuple[int, ...] = (24, 48, 64)  # channels per stage; each stage halves H, W (32 -> 16 -> 8 -> 4)
    hidden: int = 32  # width of the regression head

    @property
    def in_channels(self) -> int:
        return 3 * (2 * self.context + 1)


PRESETS: dict[str, MouthReaderConfig] = {"tiny": MouthReaderConfig()}


# ----------------------------------------------------------------------------- cropping


def crop_grid(boxes: torch.Tensor, height: int, width: int, cfg: MouthReaderConfig) -> torch.Tensor:
    """Sampling grid (B, S, S, 2) in grid_sample's normalised coordinates for (B, 4) pixel boxes.

    The crop is a square centred on the box, side = larger box side * (1 + 2 margin).
    """
    x0, y0, x1, y1 = boxes.unbind(-1)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = torch.maximum(torch.maximum(x1 - x0, y1 - y0), torch.full_like(x0, 0.0)) * (1 + 2 * cfg.margin)
    side = side.clamp_min(cfg.min_side)
    # Pixel-edge coordinates u in [0, W] map to x = 2u/W - 1 (align_corners=False).
    theta = torch.zeros(boxes.shape[0], 2, 3, dtype=torch.float32)
    theta[:, 0, 0] = side / width
    theta[:, 0, 2] = 2 * cx / width - 1
    theta[:, 1, 1] = side / height
    theta[:, 1, 2] = 2 * cy / height - 1
    return F.affine_grid(theta, [boxes.shape[0], 1, cfg.crop, cfg.crop], align_corners=False)


def crop_mouths(
    frames: np.ndarray | torch.Tensor,
    boxes: np.ndarray | torch.Tensor,
    cfg: MouthReaderConfig,
    chunk: int = 64,
) -> torch.Tensor:
    """(T, N, 3 (2 context + 1), S, S) float crops in [0, 1] from (T, H, W, 3) uint8 frames, (T, N, 4) boxes.

    Frame t's box crops frames t-context..t+context (clamped at the ends), so the stack shows the
    same place moving over time, as a lip reader sees it.
    """
    frames_t = torch.as_tensor(frames)
    boxes_t = torch.as_tensor(np.asarray(boxes, dtype=np.float32))
    T, H, W, _ = frames_t.shape
    N = boxes_t.shape[1]
    S = cfg.crop
    out = torch.empty(T, N, cfg.in_channels, S, S)
    idx = torch.arange(T)
    for start in range(0, T, chunk):
        t = idx[start : start + chunk]
        b = len(t)
        # All N crops of one frame share one grid_sample call: their grids sit side by side in width.
        grid = crop_grid(boxes_t[t].reshape(-1, 4), H, W, cfg)  # (b N, S, S, 2)
        grid = grid.reshape(b, N, S, S, 2).permute(0, 2, 1, 3, 4).reshape(b, S, N * S, 2)
        for j, d in enumerate(range(-cfg.context, cfg.context + 1)):
            src = frames_t[(t + d).clamp(0, T - 1)].permute(0, 3, 1, 2).float() / 255.0  # (b, 3, H, W)
            y = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            out[start : start + b, :, 3 * j : 3 * j + 3] = y.reshape(b, 3, S, N, S).permute(0, 3, 1, 2, 4)
    return out


def mouth_visibility(masks: np.ndarray, mouth_boxes: np.ndarray) -> np.ndarray:
    """(N, T) fraction of each mouth box where that character's mask is > 0.5 and on top of all others."""
    m = np.asarray(masks, dtype=np.float32)  # (T, N, H, W)
    T, N, H, W = m.shape
    own = (m > 0.5) & (m >= m.max(axis=1, keepdims=True))
    vis = np.zeros((N, T), dtype=np.float32)
    b = np.asarray(mouth_boxes, dtype=np.float64)
    for t in range(T):
        for i in range(N):
            x0, y0 = max(int(np.floor(b[t, i, 0])), 0), max(int(np.floor(b[t, i, 1])), 0)
            x1, y1 = min(int(np.ceil(b[t, i, 2])), W), min(int(np.ceil(b[t, i, 3])), H)
            if x1 > x0 and y1 > y0:
                vis[i, t] = own[t, i, y0:y1, x0:x1].mean()
    return vis


# ----------------------------------------------------------------------------- model


class MouthReader(nn.Module):
    """Strided conv stack -> global average pool -> MLP -> sigmoid openness."""

    def __init__(self, cfg: MouthReaderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in = cfg.in_channels
        for c in cfg.widths:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.SiLU()]
            layers += [nn.Conv2d(c, c, 3, padding=1), nn.SiLU()]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c_in, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, 1))
        self.init_weights()

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) crops in [0, 1] -> (B,) openness in [0, 1]."""
        h = self.features(x - 0.5).mean(dim=(2, 3))  # (B, C_last)
        return torch.sigmoid(self.head(h)).squeeze(-1)

    @torch.no_grad()
    def read(self, frames: np.ndarray, mouth_boxes: np.ndarray, batch: int = 512) -> np.ndarray:
        """(N, T) float32 openness read from (T, H, W, 3) uint8 frames at (T, N, 4) mouth boxes."""
        self.eval()
        crops = crop_mouths(frames, mouth_boxes, self.cfg)  # (T, N, C, S, S)
        T, N = crops.shape[:2]
        flat = crops.reshape(T * N, *crops.shape[2:])
        out = torch.cat([self(flat[i : i + batch]) for i in range(0, T * N, batch)])
        return out.reshape(T, N).T.numpy().astype(np.float32)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ----------------------------------------------------------------------------- checkpoint


def save_reader(model: MouthReader, out_dir: str | Path, training: dict | None = None) -> Path:
    """Write <out_dir>/mouth_reader.safetensors and its JSON config (with training info)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    # Write to temporary names first so a crash never leaves a half checkpoint that looks complete.
    tmp_w, tmp_j = out / f".{DEFAULT_NAME}.safetensors.tmp", out / f".{DEFAULT_NAME}.json.tmp"
    save_file(tensors, str(tmp_w))
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": asdict(model.cfg),
        "n_parameters": model.n_parameters(),
        "training": training or {},
    }
    tmp_j.write_text(json.dumps(meta, indent=2) + "\n")
    tmp_w.replace(out / f"{DEFAULT_NAME}.safetensors")
    tmp_j.replace(out / f"{DEFAULT_NAME}.json")
    return out / f"{DEFAULT_NAME}.safetensors"


def _config_from_json(meta: dict, where: Path) -> MouthReaderConfig:
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: expected format {FORMAT!r} version {FORMAT_VERSION}, "
            f"got {meta.get('format')!r} version {meta.get('version')!r}"
        )
    raw = meta.get("config")
    known = {f.name for f in fields(MouthReaderConfig)}
    if not isinstance(raw, dict) or set(raw) - known:
        raise CheckpointError(f"{where}: config must be an object with fields {sorted(known)}, got {raw!r}")
    if "widths" in raw:
        raw = {**raw, "widths": tuple(raw["widths"])}
    try:
        return MouthReaderConfig(**raw)
    except TypeError as exc:
        raise CheckpointError(f"{where}: bad config ({exc})") from exc


def load_reader(path: str | Path | None = None) -> MouthReader:
    """Load a mouth reader from its .safetensors (or its folder); JSON config beside it.

    Missing files, unreadable/corrupt data, or tensors that do not fit the configured
    architecture raise CheckpointError naming the file and the mismatch.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path) if path is not None else WEIGHTS_DIR
    weights = p / f"{DEFAULT_NAME}.safetensors" if p.is_dir() or p.suffix == "" else p
    config = weights.with_suffix(".json")
    for f in (weights, config):
        if not f.is_file():
            raise CheckpointError(f"mouth reader checkpoint file not found: {f}")
    try:
        meta = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{config}: expected a JSON object, got {type(meta).__name__}")
    cfg = _config_from_json(meta, config)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: corrupt or not a safetensors file ({exc})") from exc
    model = MouthReader(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    problems = [f"missing {k} {s}" for k, s in expected.items() if k not in got]
    problems += [f"unexpected {k} {s}" for k, s in got.items() if k not in expected]
    problems += [
        f"{k}: shape {got[k]} in file, {s} expected" for k, s in expected.items() if k in got and got[k] != s
    ]
    if problems:
        raise CheckpointError(f"{weights} does not match its config {asdict(cfg)}: " + "; ".join(problems))
    model.load_state_dict(state)
    model.eval()
    return model
