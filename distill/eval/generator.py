"""Evaluate a generator checkpoint on world dialogues it never saw: `bya model eval`.

For each held-out clip (seeds < 1000; training uses seeds >= 7,000,000): generate the whole clip chunk by
chunk from its reference frame and per-character audio, then score it with the harness (lip sync,
binding, router-mask IoU, background fidelity). A re-binding check swaps the audio-to-character matrix
of the 2-character clips and measures that the binding figures invert. Writes one JSON and a plot.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from distill.data.shards import ensure_writable_dir
from distill.eval.harness import evaluate
from distill.eval.mouth_reader import load_reader
from distill.world.clip import make_clip, truncate
from realtime.audio.binding import add_guidance_argument, add_isolation_argument
from realtime.bench.machine import command_line, provenance
from realtime.errors import BYAError
from realtime.model.autoencoder import load_autoencoder, roundtrip
from realtime.model.checkpoint import load_generator
from realtime.model.default_model import LoadedModel, default_audio_guidance, default_steps, default_window
from realtime.model.spec import SHIPPED
from realtime.scene.cartoon.render import render_standing
from realtime.stream.options import SamplingOptions
from realtime.stream.sampler import generate, upsample_masks

EVAL_SEEDS = (101, 102, 103, 104, 105, 106)  # held out: the mouth reader and every trainer use other seeds
EVAL_CHARACTERS = (2, 3, 4, 2, 3, 4)
# --extended: three times the dialogues, for decisions between close models (6 clips of 8 s leave AUC other,
# whose negatives are the few frames where nobody speaks, noisy to +-0.1); still far below training seeds
EXTENDED_SEEDS = tuple(range(101, 119))
EXTENDED_CHARACTERS = (2, 3, 4) * 6


def _row(rep: dict) -> dict:
    ls, b, m, bg = rep["lip_sync"], rep["binding"], rep["masks"] or {}, rep["background"]
    speaking = [
        c["lip_sync_r"]
        for c in rep["characters"]
        if c["lip_sync_r"] is not None and c["speaking_frames"] > 10
    ]
    return {
        "lip_sync_r_mean": ls["r_mean"],
        "lip_sync_r_min_speaking": min(speaking) if speaking else None,
        "offset_frames": ls["offset_frames"],
        "mouth_motion": ls.get("mouth_motion_mean"),
        "auc_own": b["auc_own_mean"],
        "auc_other": b["auc_other_mean"],
        "leak_ratio": b.get("leak_ratio_pooled"),
        "wrong_person_rate": b["wrong_person_rate"],
        "mask_iou": m.get("iou_mean"),
        "mask_iou_reference_held": m.get("reference_held_iou_mean"),
        "mask_iou_track": m.get("track_iou_mean"),
        "mask_flicker": m.get("flicker_mean"),
        "background_psnr_db": bg["psnr_db"],
    }


def _summary(rows: list[dict]) -> dict:
    """Means over clips; the leak ratio's median (a clip whose mouths barely move divides by almost 0)."""
    out = {k: _mean(rows, k) for k in rows[0] if k not in ("seed", "characters")}
    if "leak_ratio" in out:
        leaks = [
            r["leak_ratio"] for r in rows if r.get("leak_ratio") is not None and np.isfinite(r["leak_ratio"])
        ]
        out["leak_ratio"] = float(np.median(leaks)) if leaks else None
    return out


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    return float(np.mean(vals)) if vals else None


def load_checkpoint(checkpoint: str, autoencoder: str) -> LoadedModel:
    """A generator checkpoint and an autoencoder with the checkpoint's own sampling settings (its JSON's
    steps, stream window and audio guidance): the defaults `bya model eval` samples with."""
    model, ae = load_generator(checkpoint), load_autoencoder(autoencoder)
    return LoadedModel(
        model,
        ae,
        default_steps(checkpoint),
        Path(checkpoint),
        default_window(checkpoint, model.cfg.window_chunks),
        audio_guidance=default_audio_guidance(checkpoint),
    )


def _session_inputs(loaded: LoadedModel, clip) -> tuple:
    """(decoder, reference frame, reference masks) a session of this model generates a clip with: the
    autoencoder and the clip's first frame and masks, or for a rig model the codec that moves the clip's
    cast drawn as a picture, with the head layout that picture gives the generator."""
    if loaded.generator.cfg.output != "rig":
        return loaded.autoencoder, clip.render.frames[0], clip.render.masks[0]
    codec = _codec(loaded, clip)
    return codec, codec.scene.reference, codec.scene.masks


def _shown(decoder, frames: int) -> np.ndarray | None:
    """(T, N, H, W) what of each character a rig model's video shows (its cast stays as drawn at rest);
    None for a latent model (the harness then reads mouths where the world's render shows them)."""
    owners = getattr(getattr(decoder, "scene", None), "owners", None)
    if owners is None:
        return None
    n = decoder.scene.n_characters
    one_hot = (owners[None] == np.arange(n)[:, None, None]).astype(np.float32)
    return np.broadcast_to(one_hot[None], (frames, *one_hot.shape))


def _codec(loaded: LoadedModel, clip):
    """What a session of this model decodes a clip's scene with: the autoencoder, or for a rig model the
    codec that moves the clip's own cartoon cast, drawn once at rest, as a picture."""
    if loaded.generator.cfg.output != "rig":
        return loaded.autoencoder
    from realtime.scene.scenes import scene_from_description
    from realtime.stream.rig_codec import scene_for_model, session_codec

    scene = scene_from_description(clip.scene, seed=clip.seed, size=clip.size, source="world")
    scene = scene_for_model(scene, loaded, canvas=clip.size, seed=clip.seed)  # what ships: moved as a picture
    return session_codec(loaded, scene, seed=clip.seed)


def evaluate_checkpoint(
    loaded: LoadedModel,
    seconds: float,
    options: SamplingOptions | None = None,
    seeds=EVAL_SEEDS,
    characters=EVAL_CHARACTERS,
    track: bool = False,
) -> dict:
    """Generate and score every held-out clip with `options` (None: the checkpoint's own; each clip's seed
    replaces the options' seed). `track`: each chunk is generated from a reference frame re-rendered where
    the world's choreography puts each character at that time (standing_plan: drift, sway, idle bob; faces
    at rest, nothing from the dialogue), as a scene or a tracker would give it."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    options = SamplingOptions.defaults(loaded) if options is None else options
    if options.window is None:  # the context window the checkpoint was made to stream with
        options = options.replace(window=loaded.window)
    model, ae, reader = loaded.generator, loaded.autoencoder, load_reader()
    rows, rebind, ceiling = [], [], []
    start = time.perf_counter()
    frames_made = 0
    for seed, n in zip(seeds, characters, strict=True):
        clip = make_clip(seed, n_characters=n, size=model.cfg.frame_size, seconds=seconds)
        poses = None
        if track:
            standing = render_standing(clip.scene, clip.n_frames, clip.size, fps=clip.dialogue.fps)
            poses = (standing.frames, standing.masks)
        inputs = _session_inputs(loaded, clip)
        out = generate(
            model,
            *inputs,
            clip.dialogue.audio,
            options=options.replace(seed=seed),
            poses=poses,
        )
        t = len(out.frames)
        frames_made += t
        cut = truncate(clip, t)
        # generated characters cannot know the world's random drift: read mouths where they are
        held = None if poses is None else poses[1][:t]
        shown = _shown(inputs[0], t)
        rep = evaluate(
            out.frames,
            cut,
            masks=upsample_masks(out.masks, clip.size),
            reader=reader,
            mouths="tracked",
            track_masks=held,
            shown=shown,
        )
        refined = evaluate(
            out.frames,
            cut,
            masks=upsample_masks(out.refined, clip.size),
            reader=reader,
            mouths="tracked",
            shown=shown,
        )
        rows.append(
            {
                "seed": seed,
                "characters": n,
                **_row(rep),
                "mask_iou_refined": refined["masks"]["iou_mean"],
                "mask_flicker_refined": refined["masks"]["flicker_mean"],
            }
        )
        # baseline in the same run: the ground truth through the autoencoder, the best this pipeline can score
        recon = roundtrip(ae, clip.render.frames[:t])
        ceiling.append(
            {"seed": seed, "characters": n, **_row(evaluate(recon, cut, reader=reader, mouths="tracked"))}
        )
        if n == 2:  # re-binding: stream 0 now drives character 1 and stream 1 character 0
            swapped = generate(
                model,
                *_session_inputs(loaded, clip),
                clip.dialogue.audio,
                bind=np.array([[0.0, 1.0], [1.0, 0.0]], np.float32),
                options=options.replace(seed=seed),
                poses=poses,
            )
            srep = evaluate(swapped.frames, cut, reader=reader, mouths="tracked", shown=shown)
            rebind.append({"seed": seed, "bound": _row(rep), "swapped": _row(srep)})
    wall = time.perf_counter() - start
    summary = _summary(rows)
    return {
        "checkpoint": str(loaded.path),
        "steps": options.steps,
        "window_chunks": options.window,
        "listener_isolation": "on" if options.isolate_listeners else "off",
        "audio_guidance": options.audio_guidance,
        "pose_track": "the world's standing positions (realtime.scene.cartoon.render.standing_plan)"
        if track
        else None,
        "mouth_boxes": "tracked in each video (distill.eval.mouth_tracker)",
        "clip_seconds": seconds,
        "clips": rows,
        "summary": summary,
        "autoencoder_ceiling": ceiling,
        "autoencoder_ceiling_summary": _summary(ceiling),
        "rebinding": rebind,
        "rebinding_summary": {
            "auc_own_bound": _mean([r["bound"] for r in rebind], "auc_own"),
            "auc_own_swapped": _mean([r["swapped"] for r in rebind], "auc_own"),
            "auc_other_bound": _mean([r["bound"] for r in rebind], "auc_other"),
            "auc_other_swapped": _mean([r["swapped"] for r in rebind], "auc_other"),
        },
        "sampling_frames_per_second": frames_made / wall,
        "machine": f"{torch.get_num_threads()} torch threads, CPU",
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=str(SHIPPED.generator_path), help="default: the shipped model")
    p.add_argument("--autoencoder", default=str(SHIPPED.autoencoder_path))
    p.add_argument("--seconds", type=float, default=8.0, help="length of each held-out clip")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="Euler steps per chunk (default: the checkpoint's own: 1 for the student)",
    )
    p.add_argument("--window", type=int, default=None, help="context chunks (default: the checkpoint's)")
    p.add_argument("--clips", type=int, default=len(EVAL_SEEDS), help=f"held-out clips (1-{len(EVAL_SEEDS)})")
    p.add_argument(
        "--extended",
        action="store_true",
        help=f"score the {len(EXTENDED_SEEDS)} held-out seeds {EXTENDED_SEEDS[0]}-{EXTENDED_SEEDS[-1]} (--clips ignored)",
    )
    add_isolation_argument(p)
    add_guidance_argument(p)
    p.add_argument(
        "--track",
        action="store_true",
        help="give the generator where each character stands at each chunk (the world's choreography, "
        "faces at rest, nothing from the dialogue) by re-posing its reference frame",
    )
    p.add_argument("--out", default="out/eval-model.json")


def eval_model_command(args: argparse.Namespace) -> int:
    if not 1 <= args.clips <= len(EVAL_SEEDS):
        raise BYAError(f"--clips must be in [1, {len(EVAL_SEEDS)}], got {args.clips}")
    if not 1.0 <= args.seconds <= 60.0:
        raise BYAError(f"--seconds must be in [1, 60], got {args.seconds}")
    SamplingOptions.from_args(args)  # the sampling flags, checked before anything loads
    out = Path(args.out)
    ensure_writable_dir(out.parent)
    seeds, characters = (
        (EXTENDED_SEEDS, EXTENDED_CHARACTERS)
        if getattr(args, "extended", False)
        else (EVAL_SEEDS[: args.clips], EVAL_CHARACTERS[: args.clips])
    )
    loaded = load_checkpoint(args.checkpoint, args.autoencoder)
    options = SamplingOptions.from_args(args, loaded)  # each clip replaces the seed with its own
    rep = evaluate_checkpoint(
        loaded, args.seconds, options, seeds, characters, track=getattr(args, "track", False)
    )
    rep["provenance"] = provenance([args.checkpoint, args.autoencoder], command_line(args, "model eval"))
    out.write_text(json.dumps(rep, indent=1, allow_nan=True))
    out.with_suffix(".md").write_text(markdown_table(rep))
    print(
        f"{'seed':>5} {'N':>2} {'r':>6} {'off':>4} {'motion':>6} {'AUCown':>7} {'AUCoth':>7} {'IoU':>6} {'IoUref':>6} {'IoUheld':>7} {'bgPSNR':>7}"
    )
    for r in rep["clips"]:
        print(
            f"{r['seed']:>5} {r['characters']:>2} {_f(r['lip_sync_r_mean'])} {r['offset_frames']!s:>4} "
            f"{_f(r['mouth_motion'])} {_f(r['auc_own'], 7)} {_f(r['auc_other'], 7)} {_f(r['mask_iou'])} {_f(r['mask_iou_refined'])} "
            f"{_f(r['mask_iou_reference_held'], 7)} {_f(r['background_psnr_db'], 7)}"
        )
    print(
        "summary:", json.dumps({k: round(v, 3) if v is not None else None for k, v in rep["summary"].items()})
    )
    print(
        "rebinding:",
        json.dumps({k: round(v, 3) if v is not None else None for k, v in rep["rebinding_summary"].items()}),
    )
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def markdown_table(rep: dict) -> str:
    """The report as a Markdown table (per clip, then the mean), for model cards."""
    cols = [
        ("seed", "seed"),
        ("characters", "N"),
        ("lip_sync_r_mean", "lip-sync r"),
        ("offset_frames", "offset"),
        ("mouth_motion", "mouth motion"),
        ("auc_own", "AUC own"),
        ("auc_other", "AUC other"),
        ("leak_ratio", "leak"),
        ("wrong_person_rate", "wrong person"),
        ("mask_iou", "mask IoU"),
        ("mask_iou_refined", "IoU refined"),
        ("mask_iou_reference_held", "IoU, reference held"),
        *([("mask_iou_track", "IoU, track held")] if rep.get("pose_track") else []),
        ("background_psnr_db", "bg PSNR dB"),
    ]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---:|" * len(cols)]
    for r in [*rep["clips"], {"seed": "mean", "characters": "", **rep["summary"]}]:
        cells = []
        for k, _ in cols:
            v = r.get(k)
            cells.append("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    ceiling = rep.get("autoencoder_ceiling_summary")
    if ceiling:  # truth through the autoencoder: no router masks to score
        row = {
            "seed": "truth via AE (ceiling)",
            "characters": "",
            **ceiling,
            "mask_iou": None,
            "mask_iou_refined": None,
            "mask_iou_reference_held": None,
            "mask_iou_track": None,
        }
        cells = [
            "-" if row.get(k) is None else f"{row[k]:.3f}" if isinstance(row[k], float) else str(row[k])
            for k, _ in cols
        ]
        lines.append("| " + " | ".join(cells) + " |")
    rb = rep["rebinding_summary"]
    lines.append("")
    lines.append(
        f"Re-binding (2-character clips, audio-to-character matrix swapped): AUC own {_f(rb['auc_own_bound']).strip()} "
        f"-> {_f(rb['auc_own_swapped']).strip()}, AUC other {_f(rb['auc_other_bound']).strip()} -> "
        f"{_f(rb['auc_other_swapped']).strip()}."
    )
    return "\n".join(lines) + "\n"


def _f(v: float | None, w: int = 6) -> str:
    return f"{v:>{w}.3f}" if v is not None else f"{'-':>{w}}"
