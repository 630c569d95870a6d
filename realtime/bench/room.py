"""Measure a live Room on this machine: speakers talk in real time, one viewer watches; print its stats.

`python -m realtime.bench.room --model M --steps 1 --seconds 20` plays a world dialogue into a room (one
input per character, 20 ms blocks at 48 kHz, paced by the clock like WebRTC peers) and records when every
frame reaches the viewer. Reports the room's stats plus what the viewer saw: frame rate, how evenly
frames arrived, and the A/V offset of a click (audio heard vs the frame showing that instant).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import numpy as np

from realtime.engine.room import Room

RATE = 48_000
BLOCK = 960  # 20 ms


async def measure(room: Room, tracks: np.ndarray, seconds: float) -> dict:
    """Play (N, n) 48 kHz tracks into the room for `seconds`, with a click on track 0 half-way."""
    sub = room.subscribe(max_frames=512)
    seen: dict[str, list] = {"video": [], "audio": []}

    async def read(kind: str, next_item) -> None:
        while (item := await next_item()) is not None:
            seen[kind].append((time.monotonic(), item))

    readers = [
        asyncio.create_task(read("video", sub.next_video)),
        asyncio.create_task(read("audio", sub.next_audio)),
    ]
    await room.start()
    inputs = [room.open_input(f"speaker{k}", k) for k in range(len(tracks))]
    blocks = int(seconds * 50)
    click = blocks // 2
    start = time.monotonic()
    for b in range(blocks):
        for k, audio_input in enumerate(inputs):
            pcm = tracks[k, b * BLOCK : (b + 1) * BLOCK]
            pcm = np.pad(pcm, (0, BLOCK - len(pcm)))
            if b == click and k == 0:
                pcm = np.full(BLOCK, 0.9, np.float32)
            audio_input.write((pcm * 32767).astype(np.int16), RATE)
        await asyncio.sleep(max(0.0, start + (b + 1) * 0.02 - time.monotonic()))
    await asyncio.sleep(1.0)
    stats = room.stats()
    await room.stop()
    await asyncio.gather(*readers)
    video, audio = seen["video"], seen["audio"]
    arrival = np.array([t - 0.04 * it.pts for t, it in video])
    jitter = np.abs(arrival - np.median(arrival)) * 1e3
    offset = None
    for t, it in audio:
        loud = np.flatnonzero(np.abs(it.pcm) > 25_000)
        if len(loud):
            pts = it.pts + int(loud[0])
            frame = pts // 1920
            shown = {v.pts: tv for tv, v in video}.get(frame)
            if shown is not None:
                offset = 1e3 * ((t + loud[0] / RATE) - (shown + pts / RATE - 0.04 * frame))
            break
    wall = video[-1][0] - video[0][0] if len(video) > 1 else float("nan")
    return {
        "room": stats,
        "viewer": {
            "frames": len(video),
            "fps": round((len(video) - 1) / wall, 2),
            "arrival_jitter_ms": {
                "p50": round(float(np.percentile(jitter, 50)), 2),
                "p99": round(float(np.percentile(jitter, 99)), 2),
            },
            "fresh_frames": stats["frames"] - stats["repeated_frames"],
            "click_av_offset_ms": None if offset is None else round(offset, 1),
        },
    }


def main() -> None:
    from scipy.signal import resample_poly

    from distill.world.dialogue import synthesize_dialogue
    from realtime.model.default_model import load_model
    from realtime.scene.scenes import world_scene

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="generator checkpoint (default: the shipped student)")
    p.add_argument("--steps", type=int, help="sampling steps per chunk (default: the checkpoint's)")
    p.add_argument("--characters", type=int, default=2)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    scene = world_scene(args.characters, args.seed, loaded.generator.cfg.frame_size)
    dialogue = synthesize_dialogue(args.characters, seconds=args.seconds, seed=args.seed)
    tracks = resample_poly(dialogue.audio, 3, 1, axis=1).astype(np.float32)  # 16 -> 48 kHz, like WebRTC
    room = Room(loaded, scene, steps=args.steps, seed=args.seed)
    result = asyncio.run(measure(room, tracks, args.seconds))
    result["setup"] = {
        "model": str(loaded.path),
        "steps": room.steps,
        **{k: v for k, v in vars(args).items() if k != "model"},
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
