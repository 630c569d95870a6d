"""Dataset shards of world clips on disk, and the streaming loader that reads them back.

Format (version 1), one folder per dataset:
  manifest.json       written last: format, version, media rates, generation arguments, and per shard
                      its file name, clip count, clip seeds and SHA-256. No manifest = incomplete dataset.
  shard-00000.npz     an uncompressed-or-deflated NumPy zip holding `clips_per_shard` clips; the arrays of
                      clip i are stored under the prefix "i/" (see `_clip_arrays`). A single clip saved by
                      `save_clip` uses the same keys with no prefix.
Masks are stored as uint8 (x255) and audio as int16 PCM to keep shards small; everything else as is.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distill.world.clip import Clip, DialogueTrack, SceneRender, Segment
from realtime.errors import OutputPathError, ShardError
from realtime.media import AUDIO_SAMPLE_RATE, VIDEO_FPS

FORMAT_NAME = "bya-world-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_CLIP_KEYS = (
    "seed",
    "frames",
    "masks",
    "boxes",
    "mouth_boxes",
    "background",
    "audio",
    "openness",
    "viseme",
    "active",
    "scene_json",
    "segments_json",
)


def clip_seed(dataset_seed: int, index: int) -> int:
    """The seed of clip `index` of a dataset generated with `dataset_seed` (independent streams per clip)."""
    return int(np.random.SeedSequence([dataset_seed, index]).generate_state(1, dtype=np.uint32)[0])


def _text_array(obj: object) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


def _clip_arrays(clip: Clip, prefix: str = "") -> dict[str, np.ndarray]:
    d, r = clip.dialogue, clip.render
    segments = [[s.character, s.start_s, s.end_s, s.text, s.kind] for s in d.segments]
    arrays = {
        "seed": np.asarray(clip.seed, dtype=np.int64),
        "frames": r.frames,
        "masks": np.round(np.clip(r.masks, 0.0, 1.0) * 255.0).astype(np.uint8),
        "boxes": r.boxes.astype(np.float32),
        "mouth_boxes": r.mouth_boxes.astype(np.float32),
        "background": r.background,
        "audio": np.round(np.clip(d.audio, -1.0, 1.0) * 32767.0).astype(np.int16),
        "openness": d.openness.astype(np.float32),
        "viseme": d.viseme.astype(np.int8),
        "active": d.active.astype(bool),
        "scene_json": _text_array(clip.scene),
        "segments_json": _text_array(segments),
    }
    return {prefix + k: v for k, v in arrays.items()}


def _clip_from_arrays(z: np.lib.npyio.NpzFile, prefix: str, where: str) -> Clip:
    missing = [k for k in _CLIP_KEYS if prefix + k not in z.files]
    if missing:
        raise ShardError(f"{where}: missing arrays {missing}; not a bya clip file")
    try:
        a = {k: z[prefix + k] for k in _CLIP_KEYS}
        segments = tuple(
            Segment(int(c), float(s), float(e), str(t), str(kind))
            for c, s, e, t, kind in json.loads(a["segments_json"].tobytes().decode("utf-8"))
        )
        scene = json.loads(a["scene_json"].tobytes().decode("utf-8"))
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ShardError(f"{where}: cannot read clip arrays ({exc})") from exc
    dialogue = DialogueTrack(
        audio=a["audio"].astype(np.float32) / 32767.0,
        openness=a["openness"],
        viseme=a["viseme"],
        active=a["active"],
        segments=segments,
        sample_rate=AUDIO_SAMPLE_RATE,
        fps=VIDEO_FPS,
    )
    render = SceneRender(
        frames=a["frames"],
        masks=a["masks"].astype(np.float32) / 255.0,
        boxes=a["boxes"],
        mouth_boxes=a["mouth_boxes"],
        background=a["background"],
    )
    _check_clip_shapes(dialogue, render, where)
    return Clip(seed=int(a["seed"]), dialogue=dialogue, render=render, scene=scene)


def _check_clip_shapes(d: DialogueTrack, r: SceneRender, where: str) -> None:
    n, t = d.openness.shape
    problems = []
    if r.frames.ndim != 4 or r.frames.shape[0] != t or r.frames.shape[3] != 3:
        problems.append(f"frames {r.frames.shape} vs {t} frames")
    if r.masks.shape[:2] != (t, n):
        problems.append(f"masks {r.masks.shape} vs ({t}, {n}, H, W)")
    if d.audio.shape[0] != n:
        problems.append(f"audio {d.audio.shape} vs {n} characters")
    if problems:
        raise ShardError(f"{where}: inconsistent clip arrays: {'; '.join(problems)}")


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray], compress: bool) -> str:
    """Write arrays to path through a temporary file and a rename; return the file's SHA-256."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **arrays)
        digest = _sha256(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_clip(clip: Clip, path: str | os.PathLike, compress: bool = True) -> Path:
    """Save one clip (frames, truth, audio, scene) as a single .npz file, atomically."""
    path = Path(path)
    ensure_writable_dir(path.parent)
    _atomic_savez(path, _clip_arrays(clip), compress)
    return path


def load_clip(path: str | os.PathLike) -> Clip:
    """Load a clip saved by `save_clip`; a missing, corrupt or foreign file raises ShardError."""
    path = Path(path)
    if not path.is_file():
        raise ShardError(f"clip file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return _clip_from_arrays(z, "", str(path))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        if isinstance(exc, ShardError):
            raise
        raise ShardError(f"{path}: not a readable clip file ({exc})") from exc


def ensure_writable_dir(path: Path) -> None:
    """Create `path` if needed and prove it is writable, or raise OutputPathError naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise OutputPathError(f"cannot write to {path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class SynthSpec:
    """What `bya data synth` generates: the arguments that, with the seed, define every clip."""

    clips: int
    seed: int
    size: int = 128
    seconds: float = 8.0
    characters: int | None = None  # None = 1-4 drawn per clip from its seed
    clips_per_shard: int = (
        16  # ~16 x 8 s clips at 128 px is ~20 MB deflated: one read per few seconds of training
    )
    compress: bool = True


class ShardWriter:
    """Writes clips into numbered shards and the manifest last, so a crash never looks like a dataset."""

    def __init__(self, out: str | os.PathLike, spec: SynthSpec, overwrite: bool = False) -> None:
        self.out = Path(out)
        self.spec = spec
        if (self.out / MANIFEST).exists() and not overwrite:
            raise OutputPathError(f"{self.out} already holds a dataset (manifest.json); pass --overwrite")
        ensure_writable_dir(self.out)
        if overwrite:
            (self.out / MANIFEST).unlink(missing_ok=True)
            for old in self.out.glob("shard-*.npz"):
                old.unlink()
        self._pending: list[Clip] = []
        self._shards: list[dict] = []

    def add(self, clip: Clip) -> None:
        self._pending.append(clip)
        if len(self._pending) >= self.spec.clips_per_shard:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        name = f"shard-{len(self._shards):05d}.npz"
        arrays: dict[str, np.ndarray] = {}
        for i, clip in enumerate(self._pending):
            arrays.update(_clip_arrays(clip, f"{i}/"))
        digest = _atomic_savez(self.out / name, arrays, self.spec.compress)
        self._shards.append(
            {
                "file": name,
                "clips": len(self._pending),
                "seeds": [c.seed for c in self._pending],
                "characters": [c.n_characters for c in self._pending],
                "sha256": digest,
            }
        )
        self._pending = []

    def abort(self) -> None:
        """Remove the shards written so far (generation failed): never leave a partial dataset behind."""
        for entry in self._shards:
            (self.out / entry["file"]).unlink(missing_ok=True)
        self._shards, self._pending = [], []

    def close(self) -> Path:
        """Flush the last shard and write the manifest; only now is the dataset complete."""
        self._flush()
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "audio_sample_rate": AUDIO_SAMPLE_RATE,
            "video_fps": VIDEO_FPS,
            "size": self.spec.size,
            "seconds": self.spec.seconds,
            "seed": self.spec.seed,
            "characters": self.spec.characters,
            "clips": sum(s["clips"] for s in self._shards),
            "shards": self._shards,
        }
        fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=self.out)
        with os.fdopen(fd, "w") as f:
            json.dump(manifest, f, indent=1)
        os.replace(tmp, self.out / MANIFEST)
        return self.out / MANIFEST


def read_manifest(root: str | os.PathLike) -> dict:
    """Read and check a dataset's manifest; raise ShardError if absent, foreign or of another version."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise ShardError(f"{root}: no {MANIFEST}; not a dataset, or its generation did not finish")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: unreadable manifest ({exc})") from exc
    if manifest.get("format") != FORMAT_NAME:
        raise ShardError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    if manifest.get("version") != FORMAT_VERSION:
        raise ShardError(
            f"{path}: format version {manifest.get('version')}, this engine reads {FORMAT_VERSION}"
        )
    return manifest


class ShardDataset:
    """Streams the clips of a shard folder, verifying each shard's checksum when it is opened."""

    def __init__(self, root: str | os.PathLike, verify: bool = True) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.verify = verify

    def __len__(self) -> int:
        return int(self.manifest["clips"])

    def _open(self, entry: dict) -> np.lib.npyio.NpzFile:
        path = self.root / entry["file"]
        if not path.is_file():
            raise ShardError(f"{path}: shard listed in the manifest is missing")
        if self.verify and _sha256(path) != entry["sha256"]:
            raise ShardError(f"{path}: checksum mismatch; the shard is corrupt or was modified")
        try:
            return np.load(path, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ShardError(f"{path}: not a readable shard ({exc})") from exc

    def iter_clips(
        self, shuffle: bool = False, seed: int = 0, worker: int = 0, workers: int = 1
    ) -> Iterator[Clip]:
        """Yield clips shard by shard (shards split across `workers`); shuffle shard and clip order if asked."""
        shards = list(self.manifest["shards"])[worker::workers]
        rng = np.random.default_rng(seed)
        if shuffle:
            rng.shuffle(shards)
        for entry in shards:
            with self._open(entry) as z:
                order = rng.permutation(entry["clips"]) if shuffle else range(entry["clips"])
                for i in order:
                    yield _clip_from_arrays(z, f"{i}/", f"{self.root / entry['file']}[{i}]")

    def __iter__(self) -> Iterator[Clip]:
        return self.iter_clips()

    def clip(self, index: int) -> Clip:
        """Random access to clip `index` (opens only its shard)."""
        if not 0 <= index < len(self):
            raise ShardError(f"clip index {index} out of range: the dataset has {len(self)} clips")
        for entry in self.manifest["shards"]:
            if index < entry["clips"]:
                with self._open(entry) as z:
                    return _clip_from_arrays(z, f"{index}/", f"{self.root / entry['file']}[{index}]")
            index -= entry["clips"]
        raise ShardError(f"{self.root}: manifest clip counts are inconsistent")

    def verify_all(self) -> int:
        """Check every shard's checksum and readability; return the number of clips."""
        total = 0
        for entry in self.manifest["shards"]:
            with self._open(entry) as z:
                for i in range(entry["clips"]):
                    _clip_from_arrays(z, f"{i}/", f"{self.root / entry['file']}[{i}]")
                total += entry["clips"]
        return total
