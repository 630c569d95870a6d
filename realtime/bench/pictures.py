"""Lip sync on pictures, judged from outside: `bya bench pictures`.

Each case is a picture scene (a photo, a composed `--avatar` scene, drawings) rendered by the engine's
offline path (the live session without its clock) from per-face voices the model never trained on:
held-out espeak-ng dialogues, Debian flite's voices (built from human recordings; never heard in
training), and real recorded human speech (the ALSA test recordings of alsa-utils) under a music bed and
room noise. The check shares no code with the renderer: MediaPipe's face mesh is run on every output
frame, per face crop, and reads the inner-lip aperture (points 13-14 over the face's height, 10-152).

Per face:
- AUC own: the aperture separates frames where the face's own voice speaks from frames where it is
  silent (1.0 perfect, 0.5 chance); speech labels come from the clean voice (clients.mouth_motion);
- AUC other: over the frames where its own voice is silent, how well the aperture predicts another
  face's speech (0.5: it does not follow anyone else's voice);
- PSNR outside the faces: every output frame against the picture, over pixels outside the renderer's
  face regions (min over frames).

Prints a table, writes JSON with the machine, command and weights' sha256.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.bench.machine import command_line, provenance
from realtime.errors import BYAError
from realtime.media import AUDIO_SAMPLE_RATE, SAMPLES_PER_FRAME

ALSA_SOUNDS = Path("/usr/share/sounds/alsa")  # apt alsa-utils: a man's voice saying channel names
ALSA_CLIPS = (
    "Front_Center",
    "Front_Left",
    "Front_Right",
    "Rear_Center",
    "Rear_Left",
    "Rear_Right",
    "Side_Left",
    "Side_Right",
)
FLITE_VOICES = ("slt", "rms", "awb", "kal16")
EVAL_SEED = 9_300_000  # espeak dialogues: neither the training nor the training's held-out seeds
# sentences never spoken in training (the world's phrasebook has none of them)
EVAL_SENTENCES = (
    "The harbour lights came on one by one as the ferry pulled away.",
    "Could you pass me the blue folder on the top shelf, please?",
    "We measured the bridge twice, and the second number was smaller.",
    "Nobody expected the garden to survive such a dry summer.",
    "My grandmother kept every letter in a tin box under her bed.",
    "The train to the coast leaves at seven, so we should hurry.",
    "I think the recipe needs more lemon and a little less salt.",
    "They painted the old lighthouse white and red last spring.",
    "Please remember to lock the back door before you leave tonight.",
    "The orchestra tuned their instruments while the hall filled slowly.",
    "A small dog followed us all the way home from the market.",
    "Why does the kettle always whistle when I am on the phone?",
)
MESH_UPPER, MESH_LOWER, MESH_TOP, MESH_CHIN = 13, 14, 10, 152


# -- voices ------------------------------------------------------------------------------------------------
def _to_16k(x: np.ndarray, rate: int) -> np.ndarray:
    if rate == AUDIO_SAMPLE_RATE:
        return x.astype(np.float32)
    n = int(len(x) * AUDIO_SAMPLE_RATE / rate)
    return np.interp(np.arange(n) * rate / AUDIO_SAMPLE_RATE, np.arange(len(x)), x).astype(np.float32)


def _read_wav(path: Path) -> np.ndarray:
    import wave

    with wave.open(str(path)) as w:
        raw = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
        if w.getnchannels() > 1:
            raw = raw.reshape(-1, w.getnchannels()).mean(1)
        return _to_16k(raw, w.getframerate())


def flite_line(text: str, voice: str) -> np.ndarray:
    """16 kHz float32 speech of `text` by flite's `voice` (apt flite)."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "line.wav"
        try:
            subprocess.run(
                ["flite", "-voice", voice, "-t", text, "-o", str(out)],
                check=True,
                capture_output=True,
                timeout=60,
            )
        except FileNotFoundError as exc:
            raise BYAError("flite is not installed (apt-get install flite)") from exc
        return _read_wav(out)


def turns(lines: list[np.ndarray], n: int, rng: np.random.Generator, lead_s: float = 0.6) -> np.ndarray:
    """(n, S) tracks: the lines spoken in turns by faces 0, 1, ... with pauses, each face its own track."""
    total = int((lead_s + sum(len(x) / AUDIO_SAMPLE_RATE + 0.9 for x in lines) + 0.6) * AUDIO_SAMPLE_RATE)
    tracks = np.zeros((n, total), np.float32)
    pos = int(lead_s * AUDIO_SAMPLE_RATE)
    for i, line in enumerate(lines):
        k = i % n
        tracks[k, pos : pos + len(line)] += line[: total - pos]
        pos += len(line) + int(rng.uniform(0.4, 1.2) * AUDIO_SAMPLE_RATE)
    return tracks[:, : pos + int(0.5 * AUDIO_SAMPLE_RATE)]


def flite_tracks(n: int, lines_per_face: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    texts = rng.permutation(EVAL_SENTENCES)
    lines = [
        0.3 * flite_line(str(texts[i % len(texts)]), FLITE_VOICES[(i % n + seed) % len(FLITE_VOICES)])
        for i in range(n * lines_per_face)
    ]
    return turns([x / max(np.abs(x).max(), 1e-6) for x in lines], n, rng)


def espeak_tracks(n: int, seconds: float, seed: int) -> np.ndarray:
    from distill.world.dialogue import synthesize_dialogue

    return synthesize_dialogue(n, seconds=seconds, seed=seed).audio


def human_tracks(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(1, S) real recorded speech (ALSA's test voice) under music and noise, and (1, S) the clean voice."""
    from distill.world.conditions import music_bed

    missing = [c for c in ALSA_CLIPS if not (ALSA_SOUNDS / f"{c}.wav").is_file()]
    if missing:
        raise BYAError(f"{ALSA_SOUNDS} lacks the recorded voices (apt-get install alsa-utils)")
    rng = np.random.default_rng(seed)
    lines = [0.3 * _read_wav(ALSA_SOUNDS / f"{c}.wav") for c in rng.permutation(ALSA_CLIPS)]
    clean = turns(lines + lines[:4], 1, rng)
    rms = float(np.sqrt(np.mean(clean[np.abs(clean) > 1e-3] ** 2)))
    n = clean.shape[1]
    bed = music_bed(n, rng) * rms * 10 ** (-12 / 20)
    noise = rng.standard_normal(n).astype(np.float32) * rms * 10 ** (-20 / 20)
    return np.clip(clean + bed + noise, -1, 1).astype(np.float32), clean


# -- the outsider's reading of the output ----------------------------------------------------------------
def lip_apertures(frames: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) frames, (N, 4) face regions -> (T, N) inner-lip aperture / face height read by
    MediaPipe's face mesh on each face's crop (NaN where it found no face)."""
    import cv2
    import mediapipe as mp

    t, n = len(frames), len(regions)
    out = np.full((t, n), np.nan, np.float32)
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(regions, int)):
        scale = 320 / max(x1 - x0, y1 - y0)
        with mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=1, refine_landmarks=False
        ) as mesh:
            for i in range(t):
                crop = np.ascontiguousarray(frames[i, y0:y1, x0:x1])
                if scale > 1.2:
                    crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
                res = mesh.process(crop)
                if not res.multi_face_landmarks:
                    continue
                p = res.multi_face_landmarks[0].landmark
                h, w = crop.shape[:2]
                pts = {
                    j: np.array([p[j].x * w, p[j].y * h])
                    for j in (MESH_TOP, MESH_CHIN, MESH_UPPER, MESH_LOWER)
                }
                face = np.linalg.norm(pts[MESH_TOP] - pts[MESH_CHIN])
                out[i, k] = np.linalg.norm(pts[MESH_UPPER] - pts[MESH_LOWER]) / max(face, 1e-6)
    return out


def labels(tracks: np.ndarray, frames: int) -> np.ndarray:
    """(N, S) clean voices -> (N, T) 1 speech, 0 silence, -1 settling (excluded)."""
    from clients.mouth_motion import speech_labels

    return np.stack([speech_labels(tr, SAMPLES_PER_FRAME, 0, frames) for tr in tracks])


def face_scores(aperture: np.ndarray, lab: np.ndarray) -> list[dict]:
    """Per face: AUC own, AUC other (while its own voice is silent), mesh coverage."""
    from distill.eval.metrics import roc_auc

    n = aperture.shape[1]
    rows = []
    for k in range(n):
        a = aperture[:, k]
        ok = np.isfinite(a)
        own = ok & (lab[k] >= 0)
        auc_own = roc_auc(a[own], lab[k][own] == 1)[0] if own.any() else None
        others = []
        for o in range(n):
            if o == k:
                continue
            quiet = ok & (lab[k] == 0) & (lab[o] >= 0)
            if quiet.any():
                others.append(roc_auc(a[quiet], lab[o][quiet] == 1)[0])
        others = [x for x in others if x is not None]
        rows.append(
            {
                "face": k,
                "auc_own": None if auc_own is None else round(float(auc_own), 3),
                "auc_other": round(float(max(others)), 3) if others else None,
                "mesh_found": round(float(ok.mean()), 3),
                "aperture_speech": round(float(np.nanmean(a[lab[k] == 1])), 4)
                if (lab[k] == 1).any()
                else None,
                "aperture_silence": round(float(np.nanmean(a[lab[k] == 0])), 4)
                if (lab[k] == 0).any()
                else None,
            }
        )
    return rows


def psnr_outside(frames: np.ndarray, picture: np.ndarray, regions: np.ndarray) -> float:
    """Lowest PSNR (dB) over frames of the pixels outside every face region against the picture."""
    keep = np.ones(picture.shape[:2], bool)
    for x0, y0, x1, y1 in np.asarray(regions, int):
        keep[max(0, y0) : y1, max(0, x0) : x1] = False
    if not keep.any():
        return float("inf")
    ref = picture[keep].astype(np.float32)
    worst = float("inf")
    for f in frames:
        mse = float(np.mean((f[keep].astype(np.float32) - ref) ** 2))
        worst = min(worst, 99.0 if mse == 0 else 10 * np.log10(255**2 / mse))
    return worst


# -- cases -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    scene: str  # a picture name or path, or "avatar:A,B,..." composed side by side
    voices: str  # espeak | flite | human
    faces: int


CASES = (
    Case("duo photo, held-out espeak dialogue", "duo", "espeak", 2),
    Case("duo photo, flite voices", "duo", "flite", 2),
    Case("avatar scene of 3, flite voices", "avatar:astronaut,grace_hopper,astronaut", "flite", 3),
    Case("one face, recorded human speech + music + noise", "grace_hopper", "human", 1),
    Case("one face (open-mouth photo), recorded human speech + music + noise", "astronaut", "human", 1),
)


def build_scene(case: Case, size: int):
    from realtime.scene.scenes import avatar_scene, load_scene

    if case.scene.startswith("avatar:"):
        return avatar_scene(case.scene.split(":", 1)[1].split(","), size=size)
    return load_scene(case.scene, case.faces, 0, size)


def run_case(loaded, case: Case, options, seed: int) -> dict:
    from realtime.stream.rig_codec import session_codec
    from realtime.stream.sampler import generate

    scene = build_scene(case, loaded.generator.cfg.frame_size)
    if scene.n_characters != case.faces:
        raise BYAError(f"{case.name}: expected {case.faces} faces, the scene has {scene.n_characters}")
    if case.voices == "human":
        audio, clean = human_tracks(seed)
    elif case.voices == "flite":
        audio = clean = flite_tracks(case.faces, 3, seed)
    else:
        audio = clean = espeak_tracks(case.faces, 16.0, EVAL_SEED + seed)
    codec = session_codec(loaded, scene, seed=seed)
    t0 = time.perf_counter()
    out = generate(loaded.generator, codec, scene.reference, scene.masks, audio, options=options)
    seconds = time.perf_counter() - t0
    frames = out.frames
    regions = codec.renderer.face_regions() if codec.mode == "picture" else scene.canvas_boxes()
    aperture = lip_apertures(frames, regions)
    rows = face_scores(aperture, labels(clean, len(frames)))
    return {
        "case": case.name,
        "scene": case.scene,
        "voices": case.voices,
        "canvas": list(scene.background.shape[:2][::-1]),
        "frames": len(frames),
        "render_s": round(seconds, 2),
        "psnr_outside_db": round(psnr_outside(frames, scene.background, regions), 2),
        "faces": rows,
    }, frames


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="rig checkpoint (default: the shipped model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default=None, help="comma-separated case numbers (1-based)")
    p.add_argument("--out", default="docs/bench/pictures_cpu.json")
    p.add_argument("--frames-dir", default=None, help="save a few output frames per case here (PNG)")


def bench_command(args: argparse.Namespace) -> int:
    import torch

    from realtime.engine.threads import live_threads
    from realtime.model.default_model import load_model
    from realtime.stream.options import SamplingOptions

    torch.set_num_threads(live_threads())
    loaded = load_model(args.model)
    if loaded.generator.cfg.output != "rig":
        raise BYAError(f"{loaded.path} is not a rig model: pictures need one (bya train rig)")
    options = (
        SamplingOptions.from_args(args, loaded)
        if hasattr(SamplingOptions, "from_args")
        else SamplingOptions()
    )
    picked = CASES
    if args.only:
        try:
            picked = [CASES[int(i) - 1] for i in args.only.split(",")]
        except (ValueError, IndexError) as exc:
            raise BYAError(f"--only: expected case numbers 1-{len(CASES)}, got {args.only!r}") from exc
    results = []
    print(f"{'case':<66} {'face':>4} {'AUC own':>8} {'AUC other':>9} {'mesh':>5} {'PSNR out':>8}")
    for i, case in enumerate(picked):
        res, frames = run_case(loaded, case, options, args.seed + i)
        results.append(res)
        for r in res["faces"]:
            print(
                f"{case.name[:66]:<66} {r['face']:>4} {r['auc_own']!s:>8} {r['auc_other']!s:>9} "
                f"{r['mesh_found']:>5} {res['psnr_outside_db']:>8}"
            )
        if args.frames_dir:
            from PIL import Image

            d = Path(args.frames_dir)
            d.mkdir(parents=True, exist_ok=True)
            for j in np.linspace(0, len(frames) - 1, 6).astype(int):
                Image.fromarray(frames[j]).save(d / f"case{i + 1}_frame{j:04d}.png")
    report = {
        "benchmark": "pictures",
        "cases": results,
        "provenance": provenance(
            [loaded.path, loaded.autoencoder_path], command_line(args, "bench pictures")
        ),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0
