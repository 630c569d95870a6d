"""The model the engine ships with: which checkpoint, how many steps, loaded in one call.

The distilled 1-step `toon-s` student is the default (`realtime/weights/toon-s-student.*`); the teacher
stays available for offline rendering at more steps. Every command and the live engine load through
`load_default`, so there is one place that decides what "the shipped model" means.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from realtime.autoencoder import FrameAutoencoder, load_autoencoder
from realtime.errors import CheckpointError
from realtime.generator import Generator
from realtime.generator_checkpoint import load_generator

WEIGHTS = Path(__file__).parent / "weights"
STUDENT = WEIGHTS / "toon-s-student.safetensors"
TEACHER = WEIGHTS / "toon-s-teacher.safetensors"
AUTOENCODER = WEIGHTS / "ae-s.safetensors"
STUDENT_STEPS = 1  # what the student was distilled for
TEACHER_STEPS = 8


@dataclass
class LoadedModel:
    """A generator, its autoencoder and the number of sampling steps it is meant to run with."""

    generator: Generator
    autoencoder: FrameAutoencoder
    steps: int
    path: Path
    window: int  # clean chunks of context a session keeps (the checkpoint's stream_window_chunks)


def _training_facts(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).with_suffix(".json").read_text()).get("training", {}) or {}
    except (OSError, ValueError):
        return {}


def default_steps(path: str | Path) -> int:
    """Sampling steps a checkpoint was made for (its JSON's training.sampling_steps; teachers: 8)."""
    return int(_training_facts(path).get("sampling_steps", TEACHER_STEPS))


def default_window(path: str | Path, model_window: int) -> int:
    """Context chunks a checkpoint streams with (training.stream_window_chunks; else the model's window)."""
    return int(_training_facts(path).get("stream_window_chunks", model_window))


def load_model(
    path: str | Path | None = None, autoencoder: str | Path | None = None, device: str = "cpu"
) -> LoadedModel:
    """Load a generator checkpoint (default: the shipped student) with its autoencoder and step count."""
    path = Path(path) if path is not None else STUDENT
    if not path.is_file():
        raise CheckpointError(f"model checkpoint {path} not found")
    gen = load_generator(path, device)
    ae = load_autoencoder(autoencoder if autoencoder is not None else AUTOENCODER).to(device)
    if ae.cfg.latent_channels != gen.cfg.latent_channels or ae.cfg.factor != gen.cfg.latent_factor:
        raise CheckpointError(f"{path} needs a {gen.cfg.latent_channels}-channel autoencoder")
    return LoadedModel(gen, ae, default_steps(path), path, default_window(path, gen.cfg.window_chunks))
