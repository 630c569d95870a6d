"""The model the engine ships with: which checkpoint, how many steps, which window, loaded in one call.

The default is the 1-step `toon-s` student (`realtime/weights/toon-s-student.*`, distilled from the
teacher on its own rollouts; docs/distillation.md), streaming with the window it was trained with. The
teacher stays for offline rendering at 8 steps. Should the student file be missing, the teacher's weights
stream at 1 step with a reference-only window (each chunk from the reference frame and its audio: real
time, and nothing can drift). Every command and the live engine load through `load_model`, so this is
the one place that decides what "the shipped model" means.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from realtime.errors import CheckpointError
from realtime.model.autoencoder import FrameAutoencoder, load_autoencoder
from realtime.model.checkpoint import load_generator
from realtime.model.generator import Generator
from realtime.model.spec import PICTURES, SHIPPED, check_autoencoder
from realtime.model.spec import TEACHER as TEACHER_SPEC

STUDENT = SHIPPED.generator_path
TEACHER = TEACHER_SPEC.generator_path
AUTOENCODER = SHIPPED.autoencoder_path
STUDENT_STEPS = 1  # what the student was distilled for
TEACHER_STEPS = 8  # the teacher's own setting, offline
SHIPPED_STEPS = 1  # without a student, the teacher's weights at 1 step fit the 80 ms chunk budget
SHIPPED_WINDOW = 0  # with the reference-only window (see the module docstring)


@dataclass
class LoadedModel:
    """A generator, its autoencoder and the number of sampling steps it is meant to run with."""

    generator: Generator
    autoencoder: FrameAutoencoder
    steps: int
    path: Path
    window: int | None = None  # context chunks a session keeps (stream_window_chunks; None: the model's)
    denoiser: Callable | None = None  # the per-chunk step's backend (None: the torch module itself)
    backend: str = "torch"  # what `denoiser` runs on, as reported to users
    isolation: str = "auto"  # listener isolation: on, off, or auto (on where the machine affords it)
    audio_guidance: float = 1.0  # speakers move g times as far from the voiceless pass (streaming.py)
    autoencoder_path: Path | None = None  # the autoencoder's file, for benchmarks' provenance records

    @property
    def isolate_listeners(self) -> bool:
        """Whether sessions isolate listeners (voice_regions.listener_region); "auto" is on until a Room's
        warm-up finds that the second pass does not fit the chunk budget (realtime.engine.room)."""
        return self.isolation != "off"


BACKENDS = ("torch", "onnx", "auto")


def use_backend(loaded: LoadedModel, backend: str, cache_dir: str | Path | None = None) -> dict:
    """Run the per-chunk step on `backend` (torch, onnx, or auto: the faster of the two, timed here).

    The ONNX step is exported once per checkpoint into `cache_dir` (default: ~/.cache/bya). Returns the
    timings the choice was made on (ms per full-window step) and sets loaded.denoiser / loaded.backend.
    """
    if backend not in BACKENDS:
        raise CheckpointError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "torch":
        loaded.denoiser, loaded.backend = None, "torch"
        return {}
    from realtime.model.onnx_step import EXPORT_VERSION, OnnxDenoiser, export_step, pick_backend

    cache = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "bya"
    # named by the weights' content: a new checkpoint at the same path (or the same mtime) re-exports
    stamp = hashlib.sha256(loaded.path.read_bytes()).hexdigest()[:16]
    onnx_path = cache / f"{loaded.path.stem}-{stamp}-v{EXPORT_VERSION}.onnx"
    if not onnx_path.is_file():
        export_step(loaded.generator, onnx_path)
    if backend == "onnx":
        step = OnnxDenoiser(onnx_path, threads=torch.get_num_threads())  # the same pool size as torch
        loaded.denoiser, loaded.backend = step, f"onnxruntime:{step.provider}"
        return {}
    fn, name, timings = pick_backend(
        loaded.generator, onnx_path, window=loaded.window, threads=torch.get_num_threads()
    )
    loaded.denoiser = None if name == "torch" else fn
    loaded.backend = name
    return timings


def _training_facts(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).with_suffix(".json").read_text()).get("training", {}) or {}
    except (OSError, ValueError):
        return {}


def default_steps(path: str | Path) -> int:
    """Sampling steps a checkpoint was made for (its JSON's training.sampling_steps; teachers: 8)."""
    return int(_training_facts(path).get("sampling_steps", TEACHER_STEPS))


def default_audio_guidance(path: str | Path) -> float:
    """Audio guidance a checkpoint ships with (its JSON's training.audio_guidance; else 1.0: none)."""
    return float(_training_facts(path).get("audio_guidance", 1.0))


def default_window(path: str | Path, model_window: int) -> int:
    """Context chunks a checkpoint streams with (training.stream_window_chunks; else the model's window)."""
    return int(_training_facts(path).get("stream_window_chunks", model_window))


def load_model(
    path: str | Path | None = None, autoencoder: str | Path | None = None, device: str = "cpu"
) -> LoadedModel:
    """Load a generator checkpoint with its autoencoder, step count and window (default: the shipped one)."""
    shipped = path is None and not STUDENT.is_file()
    path = (STUDENT if STUDENT.is_file() else TEACHER) if path is None else Path(path)
    if not path.is_file():
        raise CheckpointError(f"model checkpoint {path} is missing (not found)")
    gen = load_generator(path, device)
    ae_path = Path(autoencoder) if autoencoder is not None else AUTOENCODER
    check_autoencoder(path, ae_path)
    ae = load_autoencoder(ae_path).to(device).for_inference()
    if ae.cfg.latent_channels != gen.cfg.latent_channels or ae.cfg.factor != gen.cfg.latent_factor:
        raise CheckpointError(f"{path} needs a {gen.cfg.latent_channels}-channel autoencoder")
    if shipped:
        return LoadedModel(gen, ae, SHIPPED_STEPS, path, SHIPPED_WINDOW, autoencoder_path=ae_path)
    return LoadedModel(
        gen,
        ae,
        default_steps(path),
        path,
        default_window(path, gen.cfg.window_chunks),
        audio_guidance=default_audio_guidance(path),
        autoencoder_path=ae_path,
    )


def model_for_scene(loaded: LoadedModel, scene, chosen: bool) -> LoadedModel:
    """The model a scene is animated with: `loaded`, unless it is a latent model, the user chose none
    (`chosen` False) and the scene is a picture: a latent model draws only the cartoon world, so a
    picture gets the shipped rig model (PICTURES), loaded once per process."""
    if chosen or loaded.generator.cfg.output == "rig" or scene.source != "photo":
        return loaded
    return _picture_model()


@functools.lru_cache(maxsize=1)
def _picture_model() -> LoadedModel:
    if not PICTURES.generator_path.is_file():
        raise CheckpointError(f"picture scenes need the rig model {PICTURES.generator_path} (missing)")
    return load_model(PICTURES.generator_path)
