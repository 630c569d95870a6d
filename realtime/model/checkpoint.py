"""Generator checkpoints: safetensors weights + a JSON file holding the config and training facts.

Loading needs nothing but the two files; every way a checkpoint can be wrong (missing, unreadable,
wrong kind, config and weights disagreeing) raises CheckpointError naming the file and the problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from realtime.errors import CheckpointError
from realtime.model.config import GeneratorConfig
from realtime.model.generator import Generator
from realtime.model.spec import autoencoder_ref

KIND = "bya-generator"


def save_generator(
    model: Generator,
    path: str | Path,
    extra: dict | None = None,
    dtype: torch.dtype = torch.float16,
    autoencoder: str | Path | None = None,
) -> Path:
    """Write `path` (safetensors, fp16 by default: half the size, no measurable loss) and its .json.

    `autoencoder`, the file the model was trained with, is recorded by name and sha256 so that loading
    can refuse any other (realtime.model.spec.check_autoencoder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()
    }
    save_file(state, str(path))
    meta = {"kind": KIND, "version": 1, "config": model.cfg.to_json(), **(extra or {})}
    if autoencoder is not None:
        meta["autoencoder"] = autoencoder_ref(autoencoder)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return path


def load_generator(path: str | Path, device: str | torch.device = "cpu", strict: bool = True) -> Generator:
    """Load a checkpoint written by `save_generator` (weights cast to fp32); strict=False for fine-tuning."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise CheckpointError(f"generator checkpoint needs {path} and {meta_path}; missing")
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("kind") != KIND:
            raise CheckpointError(f"{meta_path}: kind {meta.get('kind')!r}, expected {KIND!r}")
        cfg = GeneratorConfig.from_json(meta["config"])
        state = load_file(str(path))
    except CheckpointError:
        raise
    except Exception as exc:  # json, dataclass and safetensors raise unrelated types for a bad file
        raise CheckpointError(f"{path}: unreadable generator checkpoint ({exc})") from exc
    model = Generator(cfg)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=strict)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: weights do not match the config in {meta_path.name} ({str(exc).splitlines()[0]})"
        ) from exc
    return model.to(device).eval()
