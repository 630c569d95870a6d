"""How well mixed-stream diarization binds speech to characters: `python -m realtime.bench.diarization`.

Scores `realtime.audio.diarization.Diarizer` on world dialogues never used for tuning (seeds 101-106, 2 and 3
characters, 20 s, with overlaps, interruptions and backchannels), streamed in 20 ms blocks. Enrollment
audio is each character's own voice (same espeak voice, rate, pitch and level) saying sentences the
scored clip does not contain, synthesised apart from it: voices come from the clip's seed, so no other
seed has them, and this keeps enrollment disjoint from the scored audio. Frames are 40 ms and the truth
is the world's per-character `active` track. Prints a table and writes docs/bench/diarization.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from realtime.audio.diarization import Diarizer, decision_masks
from realtime.bench.machine import provenance
from realtime.media import AUDIO_SAMPLE_RATE, SAMPLES_PER_FRAME

SEEDS = ((101, 2), (102, 3), (103, 2), (104, 3), (105, 2), (106, 3))  # held out: tuning used seeds 1-12
TUNING_SEEDS = tuple((s, 2 + s % 2) for s in range(1, 13))  # where defaults were chosen (--tuning)
ENROLL_S = 6.0  # seconds of speech per character (plus 0.1 s pauses between sentences)
BLOCK = 320  # samples pushed at a time: 20 ms, a WebRTC packet
SETTINGS = {  # name -> Diarizer options (the defaults are the first)
    "enroll": dict(mode="enroll"),
    "enroll + overlap": dict(mode="enroll", overlap=True),
    "enroll, embeddings only": dict(mode="enroll", share_weight=0.0),
    "enroll, hop 40 ms": dict(mode="enroll", hop_ms=40),
    "enroll, lookahead 200 ms": dict(mode="enroll", lookahead_ms=200),
    "enroll, lookahead 1000 ms": dict(mode="enroll", lookahead_ms=1000),
    "online": dict(mode="online"),
}


def enrollment_audio(
    seed: int, n: int, character: int, said: set[str], seconds: float = ENROLL_S
) -> np.ndarray:
    """The character's voice saying sentences not in `said`, at its level in the clip, 0.1 s apart."""
    from distill.world.dialogue import plan_dialogue, utterance
    from distill.world.phrasebook import SENTENCES

    voice = plan_dialogue(n, 1.0, seed).voices[character]  # voices are drawn before any line
    parts, total = [], 0
    for text in SENTENCES[voice.language]:
        if text in said:
            continue
        pcm = utterance(text, voice.voice, voice.rate_wpm, voice.pitch).pcm
        parts += [pcm * (voice.gain / max(float(np.abs(pcm).max()), 1e-6)), np.zeros(1600, np.float32)]
        total += len(pcm)
        if total >= seconds * AUDIO_SAMPLE_RATE:
            break
    return np.concatenate(parts).astype(np.float32)


def stream(diarizer: Diarizer, mix: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Push the mix in 20 ms blocks; (K, frames) masks and the compute time per second of audio."""
    t = time.perf_counter()
    decisions = []
    for i in range(0, len(mix), BLOCK):
        decisions += diarizer.push(mix[i : i + BLOCK])
    decisions += diarizer.flush()
    per_s = (time.perf_counter() - t) / (len(mix) / AUDIO_SAMPLE_RATE)
    return decision_masks(decisions, k, -(-len(mix) // SAMPLES_PER_FRAME)), per_s


def best_mapping(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Online mode: reorder predicted speakers to the characters they agree with most (whole clip)."""
    k, n = pred.shape[0], truth.shape[0]
    best, best_perm = -1, None
    for perm in itertools.permutations(range(k), n):
        agree = sum(int((pred[p] & truth[c]).sum()) for c, p in enumerate(perm))
        if agree > best:
            best, best_perm = agree, perm
    return pred[list(best_perm)]


def score(pred: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """Frame counts: single-speaker frames exactly right; overlapped frames fully / partly right."""
    n_true = truth.sum(0)
    single, overlap, silent = n_true == 1, n_true > 1, n_true == 0
    exact = (pred == truth).all(0)
    subset = (pred & ~truth).sum(0) == 0
    some = (pred & truth).any(0)
    return {
        "speech_frames": int((n_true > 0).sum()),
        "single_frames": int(single.sum()),
        "single_right": int((exact & single).sum()),
        "overlap_frames": int(overlap.sum()),
        "overlap_best_right": int((overlap & subset & some).sum()),  # >= 1 speaker bound, none wrongly
        "overlap_both_right": int((overlap & exact).sum()),
        "pairs_true": int(truth.sum()),
        "pairs_hit": int((pred & truth).sum()),
        "pairs_bound": int(pred[:, ~silent].sum()),
        "silent_frames": int(silent.sum()),
        "silent_bound": int((pred[:, silent].any(0)).sum()),
    }


def summarise(c: dict[str, int]) -> dict[str, float]:
    """Shares from summed counts; `speech_right` is the headline (single exact, overlap best right)."""
    right = c["single_right"] + c["overlap_best_right"]
    return {
        "speech_right": right / c["speech_frames"],
        "single_right": c["single_right"] / c["single_frames"],
        "overlap_best_right": c["overlap_best_right"] / c["overlap_frames"],
        "overlap_both_right": c["overlap_both_right"] / c["overlap_frames"],
        "character_recall": c["pairs_hit"] / c["pairs_true"],
        "character_precision": c["pairs_hit"] / max(1, c["pairs_bound"]),
        "silence_false_alarm": c["silent_bound"] / max(1, c["silent_frames"]),
    }


def run(seconds: float, settings: list[str], seeds: tuple[tuple[int, int], ...] = SEEDS) -> dict:
    from distill.world.clip import make_clip

    clips = []
    for seed, n in seeds:
        clip = make_clip(seed, n_characters=n, size=64, seconds=seconds)
        said = {s.text for s in clip.dialogue.segments}
        enroll = [enrollment_audio(seed, n, k, said) for k in range(n)]
        clips.append((seed, n, clip.dialogue, enroll))
    results = {}
    for name in settings:
        options = SETTINGS[name]
        totals: dict[str, int] = {}
        per_clip, speed = [], []
        for seed, n, dialogue, enroll in clips:
            diarizer = Diarizer(**options)
            if options["mode"] == "enroll":
                for k in range(n):
                    diarizer.enroll(k, enroll[k])
                k_out = n
            else:
                k_out = diarizer.config.max_speakers
            pred, per_s = stream(diarizer, dialogue.mix, k_out)
            truth = dialogue.active[:, : pred.shape[1]]
            pred = pred[:, : truth.shape[1]]
            if options["mode"] == "online":
                pred = best_mapping(pred, truth)
            counts = score(pred, truth)
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + value
            per_clip.append({"seed": seed, "characters": n, **summarise(counts), "counts": counts})
            speed.append(per_s)
        print(f"  {name}: {summarise(totals)['speech_right']:.1%} speech frames right", flush=True)
        results[name] = {
            "options": options,
            "latency_ms": diarizer.latency_ms,
            "cpu_s_per_audio_s": float(np.mean(speed)),
            **summarise(totals),
            "counts": totals,
            "clips": per_clip,
        }
    return results


def machine() -> str:
    """CPU model and core count (the CPU figures are per second of audio, on one encoder thread)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = next(
            ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each scored dialogue")
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--out", default="docs/bench/diarization.json")
    parser.add_argument("--tuning", action="store_true", help="score the tuning seeds 1-12 instead")
    args = parser.parse_args(argv)
    t = time.perf_counter()
    seeds = TUNING_SEEDS if args.tuning else SEEDS
    results = run(args.seconds, args.settings, seeds)
    header = f"{'setting':28s} {'speech':>7s} {'single':>7s} {'ovl best':>8s} {'ovl both':>8s} {'recall':>7s} {'prec':>6s} {'sil FA':>6s} {'lat ms':>6s} {'cpu':>5s}"
    print(header)
    for name, r in results.items():
        print(
            f"{name:28s} {r['speech_right']:7.1%} {r['single_right']:7.1%} {r['overlap_best_right']:8.1%} "
            f"{r['overlap_both_right']:8.1%} {r['character_recall']:7.1%} {r['character_precision']:6.1%} "
            f"{r['silence_false_alarm']:6.1%} {r['latency_ms']:6d} {r['cpu_s_per_audio_s']:5.2f}"
        )
    report = {
        "command": "python -m realtime.bench.diarization",
        "seeds": [{"seed": s, "characters": n} for s, n in seeds],
        "seconds": args.seconds,
        "block_samples": BLOCK,
        "enrollment": f"{ENROLL_S:g} s per character: same voice, sentences not in the scored clip",
        "machine": machine(),
        "provenance": provenance(  # model-independent: no weights
            [],
            shlex.join(
                ["python", "-m", "realtime.bench.diarization", *(sys.argv[1:] if argv is None else argv)]
            ),
        ),
        "wall_s": round(time.perf_counter() - t, 1),
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
