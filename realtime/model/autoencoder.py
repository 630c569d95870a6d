"""The frame autoencoder: RGB frames <-> a latent grid 8x smaller, so the transformer sees few tokens.

A plain convolutional encoder/decoder (no KL, no GAN: the world's frames are clean cartoons and the
decoder must run at 25 fps next to the generator on 2 CPU cores). Configs are frozen dataclasses with
named presets; checkpoints are safetensors with their config as JSON beside them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from realtime.errors import CheckpointError


@dataclass(frozen=True)
class AutoencoderConfig:
    """Shape of the autoencoder; the downsampling factor is 2 ** len(channels)."""

    channels: tuple[int, ...] = (32, 64, 96)  # per stage; 3 stages = 8x down, small enough for CPU decode
    latent_channels: int = 8  # 8 x 16 x 16 latents for 128 px: 64 tokens/frame after 2x2 patching
    blocks_per_stage: int = 1  # residual blocks after each resampling; 1 keeps the decoder under ~5 ms/frame

    @property
    def factor(self) -> int:
        return 2 ** len(self.channels)


AUTOENCODER_CONFIGS: dict[str, AutoencoderConfig] = {
    "ae-s": AutoencoderConfig(),  # CPU real time, 128-256 px
    "ae-m": AutoencoderConfig(channels=(64, 128, 192), latent_channels=16, blocks_per_stage=2),  # GPU presets
}


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a skip: enough capacity for flat-shaded cartoons."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class Encoder(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, latent_channels, H/f, W/f)."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, cfg.channels[0], 3, padding=1)]
        prev = cfg.channels[0]
        for ch in cfg.channels:
            layers.append(nn.Conv2d(prev, ch, 4, stride=2, padding=1))
            layers += [ResBlock(ch) for _ in range(cfg.blocks_per_stage)]
            prev = ch
        layers += [nn.SiLU(), nn.Conv2d(prev, cfg.latent_channels, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """(B, latent_channels, h, w) -> (B, 3, h*f, w*f) in [-1, 1]."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        chans = list(reversed(cfg.channels))
        layers: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, chans[0], 3, padding=1)]
        prev = chans[0]
        for ch in chans:
            layers += [ResBlock(prev) for _ in range(cfg.blocks_per_stage)]
            # nearest upsample + conv rather than a transposed conv: no checkerboard on flat colours
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(prev, ch, 3, padding=1)]
            prev = ch
        layers += [nn.SiLU(), nn.Conv2d(prev, 3, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(z))


class FrameAutoencoder(nn.Module):
    """Encoder + decoder with a fixed latent scale so the diffusion model sees unit-variance latents."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        # measured on training data after training; dividing by it gives latents of ~unit std
        self.register_buffer("latent_scale", torch.ones(()))
        self.channels_last = False  # the decoder's layout (for_inference sets it on the CPU)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[1] != 3 or frames.shape[-1] % self.cfg.factor:
            raise ValueError(
                f"frames must be (B, 3, H, W) with H, W multiples of {self.cfg.factor}, got {tuple(frames.shape)}"
            )
        return self.encoder(frames) / self.latent_scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        x = latents * self.latent_scale
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.decoder(x)

    def for_inference(self) -> FrameAutoencoder:
        """Eval mode, the decoder in channels-last layout on the CPU: its convolutions run ~20% faster
        there (38 vs 49 ms per 2-frame chunk on 1 thread, docs/benchmarks.md); values agree to ~1e-6."""
        self.eval()
        if next(self.decoder.parameters()).device.type == "cpu":
            self.decoder.to(memory_format=torch.channels_last)
            self.channels_last = True
        return self

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(frames))


def save_autoencoder(model: FrameAutoencoder, path: str | Path, extra: dict | None = None) -> Path:
    """Write `path` (safetensors) and `path` with .json (config + training facts)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    meta = {"kind": "frame-autoencoder", "config": asdict(model.cfg), **(extra or {})}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return path


def load_autoencoder(path: str | Path) -> FrameAutoencoder:
    """Load a checkpoint written by `save_autoencoder`; any mismatch raises CheckpointError naming it."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise CheckpointError(f"autoencoder checkpoint needs {path} and {meta_path}; missing")
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("kind") != "frame-autoencoder":
            raise CheckpointError(f"{meta_path}: kind {meta.get('kind')!r}, expected 'frame-autoencoder'")
        known = {f.name for f in fields(AutoencoderConfig)}
        raw = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items() if k in known}
        cfg = AutoencoderConfig(**raw)
        state = load_file(str(path))
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors and json raise several unrelated types for a bad file
        raise CheckpointError(f"{path}: unreadable autoencoder checkpoint ({exc})") from exc
    model = FrameAutoencoder(cfg)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: weights do not match the config in {meta_path.name} ({str(exc).splitlines()[0]})"
        ) from exc
    return model.eval()


def frames_to_tensor(frames: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """(T, H, W, 3) uint8 frames -> (T, 3, H, W) float in [-1, 1], the autoencoder's input."""
    return torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [-1, 1] -> (T, H, W, 3) uint8 frames (clamped, rounded)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def roundtrip(ae: FrameAutoencoder, frames: np.ndarray, batch: int = 50) -> np.ndarray:
    """Frames through encode -> decode: the ceiling any generator on these latents can reach."""
    x = frames_to_tensor(frames, next(ae.parameters()).device)
    return tensor_to_frames(torch.cat([ae(x[i : i + batch]) for i in range(0, len(x), batch)]))
