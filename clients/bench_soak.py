"""A long run through `bya serve`, watched for drift: `bya bench soak --minutes 30`.

An in-process `bya serve` (real LiveServer and Room, shipped model, 127.0.0.1 only) runs one room; 2 WHIP
speakers play a turn-taking dialogue on a loop (clients.looped_speech), 1 WHEP viewer watches. Every
--sample seconds it records the process's memory (RSS: server and clients, one process), the viewer's
delivered fps, the room's latency and its late/skipped chunks and repeated frames, and the A/V offset at
the viewer per speech onset (clients.latency_analysis, as `bya bench latency` measures it). What it no
longer needs is dropped as it goes, so the benchmark itself does not grow. Stops by itself after
--minutes; writes JSON and a PNG of the four curves; prints memory growth after warm-up, A/V range, fps min.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from clients.served_model import add_served_model_arguments
from realtime.errors import BYAError
from realtime.media import VIDEO_FPS, WEBRTC_AUDIO_RATE

DEFAULT_OUT = "docs/bench/soak_cpu.json"
TARGETS = {"memory_growth_pct": 5.0, "av_abs_ms": 40.0, "fps": 24.0}  # issue 8 item 4
ANALYSIS_LAG_S = 3.0  # an onset is analysed once its frames and audio have surely reached the viewer
KEEP_S = 30.0  # received frames, tap frames and mix kept for analysis; older ones are dropped


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between samples (default 10)")
    p.add_argument(
        "--warmup",
        type=float,
        help="minutes before the memory baseline (default: 2, or a quarter of short runs)",
    )
    add_served_model_arguments(p)
    p.add_argument(
        "--out", default=DEFAULT_OUT, help=f"JSON file; the PNG goes beside it (default {DEFAULT_OUT})"
    )


def check_args(args: argparse.Namespace) -> None:
    if not 0.05 <= args.minutes <= 240:
        raise BYAError(f"--minutes must be in [0.05, 240], got {args.minutes}")
    if not 1 <= args.sample <= 120:
        raise BYAError(f"--sample must be in [1, 120] seconds, got {args.sample}")
    if args.warmup is None:
        args.warmup = min(2.0, args.minutes / 4)
    if not 0 <= args.warmup < args.minutes:
        raise BYAError(f"--warmup must be in [0, --minutes), got {args.warmup}")
    if Path(args.out).suffix != ".json":
        raise BYAError(f"--out must be a .json file path, got {args.out!r}")


def _trim(items: list, keep_from: float, key) -> None:
    """Drop the items older than keep_from (they arrive in time order)."""
    cut = next((i for i, x in enumerate(items) if key(x) >= keep_from), len(items))
    del items[:cut]


async def soak(
    loaded, wavs: list[Path], bursts, loop_samples: int, seconds: float, sample_s: float
) -> list[dict]:
    """Run the room for `seconds`; one sample dict every `sample_s`."""
    from clients.latency_analysis import analyze_onsets
    from clients.latency_session import SessionRecord, chunk_wait_ms
    from clients.looped_speech import LoopingSpeaker, rss_mb
    from clients.python.viewer import WhepViewer
    from clients.room_tap import LocalServer, RoomTap, whep_first_pts
    from realtime.engine.room import Room
    from realtime.media import FRAME_MS
    from realtime.scene.scenes import world_scene
    from realtime.server.app import ServerLimits

    cfg = loaded.generator.cfg
    room = Room(loaded, world_scene(2, 0, cfg.frame_size))
    wait_ms = await asyncio.to_thread(chunk_wait_ms, room)
    samples: list[dict] = []
    async with LocalServer(room, ServerLimits(max_rooms=1, max_viewers_total=4)) as local:
        http, base, token = local.http, local.base, local.token
        tap = RoomTap(room)
        viewer = WhepViewer(keep_audio=True)
        speakers = [LoopingSpeaker(path, k) for k, path in enumerate(wavs)]
        try:
            session = await viewer.offer(http, base, token)
            first_pts = whep_first_pts(local.server, session.id, tap)
            await viewer.connected()
            for s in speakers:
                await s.publish(http, base, token)
            start = time.monotonic()
            analysed_to = start  # capture time up to which onsets have been analysed
            loop_s = loop_samples / WEBRTC_AUDIO_RATE
            last = room.stats()
            t_prev = start
            while (now := time.monotonic()) < start + seconds:
                await asyncio.sleep(min(sample_s, start + seconds - now))
                now = time.monotonic()
                stats = room.stats()
                delivered = sum(1 for v in viewer.video if v.received > t_prev)
                # onsets spoken in [analysed_to, now - lag): every loop's copy of every burst
                until = now - ANALYSIS_LAG_S
                window = []
                for b in bursts:
                    t0 = speakers[b.character].track.start_time
                    first_loop = max(0, int((analysed_to - t0) * WEBRTC_AUDIO_RATE - b.onset) // loop_samples)
                    for j in range(first_loop, first_loop + int(sample_s / loop_s) + 2):
                        onset = b.onset + j * loop_samples
                        at = t0 + onset / WEBRTC_AUDIO_RATE
                        if analysed_to <= at < until:
                            window.append(dataclasses.replace(b, onset=onset))
                av = []
                if window:
                    mix_first, mix = tap.mix()
                    record = SessionRecord(
                        bursts=window,
                        capture_start=[s.track.start_time for s in speakers],
                        boxes=np.zeros((2, 4), np.float32),  # mouths are not measured here
                        latency_ms=stats["latency_ms"],
                        chunk_wait_ms=wait_ms,
                        chunk_frames=cfg.chunk_frames,
                        lookahead_frames=-(-cfg.audio_lookahead_ms // FRAME_MS),
                        emitted=dict(tap.video_emitted),
                        mix_first=mix_first,
                        mix=mix,
                        video=list(viewer.video),
                        audio=list(viewer.audio),
                        first_pts=first_pts,
                        stats_before=last,
                        stats_after=stats,
                        dropped_at_server=0,
                    )
                    onsets = await asyncio.to_thread(analyze_onsets, record)
                    av = [o["av_same_instant_ms"] for o in onsets if o.get("av_same_instant_ms") is not None]
                analysed_to = max(analysed_to, until)
                samples.append(sample_row(now - start, now - t_prev, delivered, last, stats, av, rss_mb()))
                print_sample(samples[-1])
                last, t_prev = stats, now
                # keep only what the next analysis can still need
                keep_from = now - KEEP_S
                _trim(viewer.video, keep_from, lambda v: v.received)
                _trim(viewer.audio, keep_from, lambda a: a.received)
                for f in [f for f, t in tap.video_emitted.items() if t < keep_from]:
                    del tap.video_emitted[f]
                keep_pts = stats["audio_frames"] * 960 - int(KEEP_S * WEBRTC_AUDIO_RATE)
                _trim(tap.audio, keep_pts, lambda a: a[0])
        finally:
            for s in speakers:
                await s.close(http, token)
            await viewer.close(http, token)
            await tap.close()
    return samples


def sample_row(
    t: float, span: float, delivered: int, before: dict, after: dict, av: list, rss: float
) -> dict:
    frames = after["frames"] - before["frames"]
    repeated = after["repeated_frames"] - before["repeated_frames"]
    return {
        "t_s": round(t, 1),
        "rss_mb": round(rss, 1),
        "fps_delivered": round(delivered / span, 2) if span > 0 else None,
        "fps_fresh": round(VIDEO_FPS * (1 - repeated / frames), 2) if frames else None,
        "latency_ms": after["latency_ms"],
        "chunk_ms": after["timings_ms"].get("total_ms"),
        "late_chunks": after["late_chunks"] - before["late_chunks"],
        "skipped_chunks": after["skipped_chunks"] - before["skipped_chunks"],
        "repeated_frames": repeated,
        "av_offset_ms": [round(float(x), 1) for x in av],
    }


def print_sample(s: dict) -> None:
    av = s["av_offset_ms"]
    av_text = f"{min(av):+.0f}..{max(av):+.0f} ms ({len(av)})" if av else "-"
    print(
        f"  t {s['t_s']:7.1f} s | RSS {s['rss_mb']:7.1f} MiB | fps {s['fps_delivered']} fresh {s['fps_fresh']} | "
        f"latency {s['latency_ms']} ms | late {s['late_chunks']} skipped {s['skipped_chunks']} | A/V {av_text}",
        flush=True,
    )


def summarize(samples: list[dict], warmup_s: float) -> dict:
    """Memory growth after warm-up (%), the A/V offset range, the lowest fps; checked against TARGETS."""
    after = [s for s in samples if s["t_s"] >= warmup_s] or samples[-1:]
    rss = [s["rss_mb"] for s in after]
    base = rss[0] if rss else None
    av = [x for s in after for x in s["av_offset_ms"]]
    fps = [s["fps_delivered"] for s in after if s["fps_delivered"] is not None]
    fresh = [s["fps_fresh"] for s in after if s["fps_fresh"] is not None]
    growth = round(100.0 * (rss[-1] - base) / base, 2) if base else None
    peak = round(100.0 * (max(rss) - base) / base, 2) if base else None
    av_range = [min(av), max(av)] if av else None
    return {
        "samples": len(samples),
        "warmup_s": warmup_s,
        "rss_mb_after_warmup": {
            "first": base,
            "last": rss[-1] if rss else None,
            "max": max(rss, default=None),
        },
        "memory_growth_pct": growth,
        "memory_peak_growth_pct": peak,
        "av_offset_ms": {
            "n": len(av),
            "range": av_range,
            "mean": round(float(np.mean(av)), 1) if av else None,
        },
        "fps_delivered_min": min(fps, default=None),
        "fps_fresh_min": min(fresh, default=None),
        "late_chunks": sum(s["late_chunks"] for s in after),
        "skipped_chunks": sum(s["skipped_chunks"] for s in after),
        "targets": TARGETS,
        "meets": {
            "memory": growth is not None and growth < TARGETS["memory_growth_pct"],
            "av": av_range is not None and max(abs(av_range[0]), abs(av_range[1])) <= TARGETS["av_abs_ms"],
            # fresh frames too: a room that repeats frames still delivers 25 fps, but not 25 new ones
            "fps": bool(fps) and bool(fresh) and min(fps + fresh) >= TARGETS["fps"],
        },
    }


def write_plot(samples: list[dict], summary: dict, path: Path) -> Path:
    """One PNG, four panels over time: memory, fps, latency, A/V offset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([s["t_s"] for s in samples]) / 60.0
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    ax = axes[0]
    ax.plot(t, [s["rss_mb"] for s in samples], marker=".")
    ax.axvline(summary["warmup_s"] / 60.0, color="grey", ls=":", label="warm-up ends")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title(f"memory: {summary['memory_growth_pct']}% growth after warm-up")
    ax.legend(loc="lower right")
    ax = axes[1]
    ax.plot(t, [s["fps_delivered"] for s in samples], marker=".", label="delivered")
    ax.plot(t, [s["fps_fresh"] for s in samples], marker=".", label="fresh (not repeated)")
    ax.axhline(TARGETS["fps"], color="red", ls="--", lw=0.8)
    ax.set_ylabel("fps")
    ax.set_ylim(0, VIDEO_FPS + 2)
    ax.legend(loc="lower right")
    ax = axes[2]
    ax.plot(t, [s["latency_ms"] for s in samples], marker=".", label="room latency")
    ax.plot(t, [s["chunk_ms"] for s in samples], marker=".", label="chunk cost (mean)")
    ax2 = ax.twinx()
    ax2.bar(
        t, [s["late_chunks"] + s["skipped_chunks"] for s in samples], width=0.05, color="orange", alpha=0.5
    )
    ax2.set_ylabel("late + skipped chunks")
    ax.set_ylabel("ms")
    ax.legend(loc="upper left")
    ax = axes[3]
    for ti, s in zip(t, samples, strict=True):
        if s["av_offset_ms"]:
            ax.plot([ti] * len(s["av_offset_ms"]), s["av_offset_ms"], ".", color="C0")
    for y in (-TARGETS["av_abs_ms"], TARGETS["av_abs_ms"]):
        ax.axhline(y, color="red", ls="--", lw=0.8)
    ax.set_ylabel("A/V offset (ms, + video late)")
    ax.set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def bench_command(args: argparse.Namespace) -> int:
    from clients.served_model import load_served_model
    from realtime.bench.machine import command_line, describe_machine, provenance

    check_args(args)
    loaded = load_served_model(args)
    result = run(loaded, args)
    result["command"] += f" --backend {args.backend}"
    result["machine"] = describe_machine(args.threads)
    result["provenance"] = provenance(
        [loaded.path, loaded.autoencoder_path], command_line(args, "bench soak"), args.threads
    )
    result["model"] = {"path": str(loaded.path), "steps": loaded.steps, "backend": loaded.backend}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    plot = write_plot(result["samples"], result["summary"], out.with_suffix(".png"))
    print_summary(result["summary"])
    print(f"wrote {out} and {plot}")
    return 0


def run(loaded, args: argparse.Namespace) -> dict:
    """The soak itself (also what the tests call, with a tiny model and a short run)."""
    from clients.looped_speech import dialogue_wavs

    with tempfile.TemporaryDirectory(prefix="bya-soak-") as tmp:
        wavs, bursts, loop_samples = dialogue_wavs(Path(tmp))
        print(
            f"bench soak: {args.minutes} min, a sample every {args.sample} s, warm-up {args.warmup} min",
            flush=True,
        )
        samples = asyncio.run(soak(loaded, wavs, bursts, loop_samples, 60.0 * args.minutes, args.sample))
    return {
        "command": f"bya bench soak --minutes {args.minutes} --sample {args.sample} --warmup {args.warmup}",
        "loop_s": round(loop_samples / WEBRTC_AUDIO_RATE, 2),
        "summary": summarize(samples, 60.0 * args.warmup),
        "samples": samples,
    }


def print_summary(s: dict) -> None:
    ok = {True: "ok", False: "FAIL"}
    av = s["av_offset_ms"]
    print(
        f"memory growth after warm-up {s['memory_growth_pct']}% (peak {s['memory_peak_growth_pct']}%) "
        f"[{ok[s['meets']['memory']]} < {TARGETS['memory_growth_pct']}%]"
    )
    print(
        f"A/V offset range {av['range']} ms over {av['n']} onsets [{ok[s['meets']['av']]} within ±{TARGETS['av_abs_ms']:.0f}]"
    )
    print(
        f"fps min delivered {s['fps_delivered_min']} fresh {s['fps_fresh_min']} [{ok[s['meets']['fps']]} >= {TARGETS['fps']:.0f}]; "
        f"late chunks {s['late_chunks']}, skipped {s['skipped_chunks']}"
    )
