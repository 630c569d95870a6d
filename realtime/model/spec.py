"""Model specs: one name for a generator checkpoint and the autoencoder whose latents it was trained in.

A generator only knows latents; the same channel count does not make two autoencoders interchangeable.
A checkpoint's JSON therefore records its autoencoder's file name and sha256 (`autoencoder_ref`), and
`check_autoencoder` refuses a pairing that differs. `SHIPPED` is the one place that says which spec
"the shipped model" is; every default path of the commands comes from here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from realtime.errors import CheckpointError

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"  # realtime/weights: what the package ships


@dataclass(frozen=True)
class ModelSpec:
    """A named generator checkpoint bound to its autoencoder (file names inside realtime/weights/)."""

    name: str
    generator: str  # the generator's safetensors; its .json beside it holds config and training facts
    autoencoder: str  # the autoencoder it was trained with; the generator's JSON names it and its sha256

    @property
    def generator_path(self) -> Path:
        return WEIGHTS / self.generator

    @property
    def autoencoder_path(self) -> Path:
        return WEIGHTS / self.autoencoder


SPECS: dict[str, ModelSpec] = {
    # the 1-step student distilled from the teacher: what `bya serve`, `bya render` and `make demo` run
    "toon-s-student": ModelSpec("toon-s-student", "toon-s-student.safetensors", "ae-s.safetensors"),
    # the 8-step flow-matching teacher: offline rendering and the student's starting point
    "toon-s-teacher": ModelSpec("toon-s-teacher", "toon-s-teacher.safetensors", "ae-s.safetensors"),
    # the rig generator fine-tuned from the student: moves any picture (bya train rig; docs/models/rig-s.md).
    # It needs no autoencoder; the spec names the student's, which it started from and never decodes with.
    "rig-s": ModelSpec("rig-s", "rig-s.safetensors", "ae-s.safetensors"),
}
SHIPPED = SPECS["toon-s-student"]
TEACHER = SPECS["toon-s-teacher"]
PICTURES = SPECS["rig-s"]  # what animates picture scenes when no --model is given (a latent model cannot)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def autoencoder_ref(path: str | Path) -> dict:
    """What a generator checkpoint's JSON records of the autoencoder it was trained with."""
    return {"file": Path(path).name, "sha256": file_sha256(path)}


def recorded_autoencoder(generator_path: str | Path) -> dict | None:
    """The autoencoder a checkpoint's JSON names ({"file", "sha256"}), or None where it names none."""
    meta_path = Path(generator_path).with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: unreadable checkpoint JSON ({exc})") from exc
    ref = meta.get("autoencoder")
    if ref is None:
        return None
    if (
        not isinstance(ref, dict)
        or not isinstance(ref.get("sha256"), str)
        or not isinstance(ref.get("file"), str)
    ):
        raise CheckpointError(
            f"{meta_path}: 'autoencoder' must be {{'file': NAME, 'sha256': HEX}}, got {ref!r}"
        )
    return ref


def check_autoencoder(generator_path: str | Path, autoencoder_path: str | Path) -> None:
    """Raise CheckpointError if the generator's JSON names another autoencoder than `autoencoder_path`.

    A checkpoint that names none (made before specs, or a test's tiny model) is taken as it is."""
    ref = recorded_autoencoder(generator_path)
    if ref is None:
        return
    got = file_sha256(autoencoder_path)
    if got != ref["sha256"]:
        raise CheckpointError(
            f"{generator_path} was trained with autoencoder {ref['file']} (sha256 {ref['sha256'][:12]}…), "
            f"but {autoencoder_path} has sha256 {got[:12]}…; pass --autoencoder with the right file"
        )
