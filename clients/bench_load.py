"""How many rooms this machine holds at >= 24 fps, and whether one more is refused cleanly: `bya bench load`.

An in-process `bya serve` (the real LiveServer and its admission, the shipped model, 127.0.0.1 only)
starts with its default room. Rooms are opened one by one (`POST /rooms` after the first), each with 2
WHIP speakers playing a WAV dialogue on a loop through the Python client and 1 WHEP viewer; after each,
every admitted room's viewer is measured over a fixed window: frames delivered per second, and the room's
fresh frames per second (its repeated frames are not fresh). When the server refuses a room (503 +
Retry-After), every admitted room is measured once more. Then WHEP viewers are added to the first room
until one is refused, each step measuring every viewer's delivered fps. Bounded: at most --max-tries rooms, a fixed
window each. Prints a table, writes JSON naming the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from clients.served_model import add_served_model_arguments
from realtime.errors import BYAError
from realtime.media import VIDEO_FPS

DEFAULT_OUT = "docs/bench/load_cpu.json"
TARGET_FPS = 24  # issue 8: every admitted room at >= 24 fps
MAX_VIEWER_TRIES = 16  # viewers added to the first room at most (the server's per-room limit comes first)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--window", type=float, default=20.0, help="seconds each measurement lasts (default 20)")
    p.add_argument("--settle", type=float, default=5.0, help="seconds after opening a room (default 5)")
    p.add_argument("--max-tries", type=int, default=8, help="rooms tried at most (default 8)")
    p.add_argument("--max-rooms", type=int, help="the server's room limit (default: measured by the server)")
    add_served_model_arguments(p)
    p.add_argument("--out", default=DEFAULT_OUT, help=f"JSON file (default {DEFAULT_OUT})")


def check_args(args: argparse.Namespace) -> None:
    if not 2 <= args.window <= 300:
        raise BYAError(f"--window must be in [2, 300] seconds, got {args.window}")
    if not 0 <= args.settle <= 60:
        raise BYAError(f"--settle must be in [0, 60] seconds, got {args.settle}")
    if not 1 <= args.max_tries <= 32:
        raise BYAError(f"--max-tries must be in [1, 32], got {args.max_tries}")
    if args.max_rooms is not None and not 1 <= args.max_rooms <= 32:
        raise BYAError(f"--max-rooms must be in [1, 32], got {args.max_rooms}")
    if Path(args.out).suffix != ".json":
        raise BYAError(f"--out must be a .json file path, got {args.out!r}")


class LoadRoom:
    """One admitted room: its URL prefix, 2 looping speakers and 1 viewer."""

    def __init__(self, name: str, prefix: str, wavs: list[Path]) -> None:
        from clients.looped_speech import LoopingSpeaker
        from clients.python.viewer import WhepViewer

        self.name, self.prefix = name, prefix
        self.speakers = [LoopingSpeaker(path, k) for k, path in enumerate(wavs)]
        self.viewer = WhepViewer()

    async def join(self, http, base: str, token: str) -> None:
        for speaker in self.speakers:
            await speaker.publish(http, base + self.prefix, token)
        await self.viewer.play(http, base + self.prefix, token)

    async def room_stats(self, http, base: str, token: str) -> dict:
        async with http.get(f"{base}{self.prefix}/stats", headers={"Authorization": f"Bearer {token}"}) as r:
            return (await r.json())["room"]

    async def close(self, http, token: str) -> None:
        for peer in (*self.speakers, self.viewer):
            await peer.close(http, token)


async def measure(rooms: list[LoadRoom], http, base: str, token: str, window_s: float) -> list[dict]:
    """Every room over the same window: delivered fps at its viewer, fresh fps and late chunks at the room."""
    before = [await r.room_stats(http, base, token) for r in rooms]
    counts = [len(r.viewer.video) for r in rooms]
    start = time.monotonic()
    await asyncio.sleep(window_s)
    elapsed = time.monotonic() - start
    out = []
    for r, b, n in zip(rooms, before, counts, strict=True):
        a = await r.room_stats(http, base, token)
        frames = a["frames"] - b["frames"]
        repeated = a["repeated_frames"] - b["repeated_frames"]
        out.append(
            {
                "room": r.name,
                "fps_delivered": round((len(r.viewer.video) - n) / elapsed, 2),
                "fps_fresh": round(VIDEO_FPS * (1 - repeated / frames), 2) if frames else None,
                "late_chunks": a["late_chunks"] - b["late_chunks"],
                "skipped_chunks": a["skipped_chunks"] - b["skipped_chunks"],
                "latency_ms": a["latency_ms"],
                "chunk_ms": a["timings_ms"].get("total_ms"),
            }
        )
    return out


def holds(rows: list[dict]) -> bool:
    return all(r["fps_delivered"] >= TARGET_FPS and (r["fps_fresh"] or 0) >= TARGET_FPS for r in rows)


async def run_load(loaded, args: argparse.Namespace, wavs: list[Path]) -> dict:
    from clients.room_tap import LocalServer
    from realtime.engine.room import Room
    from realtime.scene.scenes import world_scene
    from realtime.server.app import ServerLimits

    room = Room(loaded, world_scene(2, 0, loaded.generator.cfg.frame_size))
    limits = ServerLimits(max_rooms=args.max_rooms, max_viewers_total=max(args.max_tries, 4))
    steps, refusal, rooms = [], None, []
    async with LocalServer(room, limits) as local:
        http, base, token = local.http, local.base, local.token
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{base}/rooms", headers=auth) as r:
            host_limits = (await r.json())["limits"]
        print(
            f"bench load: server limits {json.dumps({k: v for k, v in host_limits.items() if k != 'scenes'})}"
        )
        try:
            for i in range(args.max_tries):
                name = "default" if i == 0 else f"load-{i}"
                if i > 0:
                    async with http.post(f"{base}/rooms", json={"name": name}, headers=auth) as r:
                        if r.status != 201:
                            refusal = {
                                "room": name,
                                "status": r.status,
                                "retry_after": r.headers.get("Retry-After"),
                                "reason": (await r.text()).strip(),
                            }
                            print(f"bench load: room {i + 1} refused: {refusal}", flush=True)
                            break
                candidate = LoadRoom(name, "" if i == 0 else f"/rooms/{name}", wavs)
                rooms.append(candidate)
                await candidate.join(http, base, token)
                await asyncio.sleep(args.settle)
                rows = await measure(rooms, http, base, token, args.window)
                steps.append({"rooms": len(rooms), "per_room": rows, "holds_target": holds(rows)})
                print_step(steps[-1])
            after = None
            if refusal is not None:
                rows = await measure(rooms, http, base, token, args.window)
                after = {"rooms": len(rooms), "per_room": rows, "holds_target": holds(rows)}
                print("bench load: after the refusal:")
                print_step(after)
            viewers = await viewer_sweep(rooms[0], http, base, token, args) if rooms else None
        finally:
            for r in rooms:
                await r.close(http, token)
    held = max((s["rooms"] for s in steps if s["holds_target"]), default=0)
    return {
        "server_limits": host_limits,
        "viewers": viewers,
        "steps": steps,
        "refusal": refusal,
        "after_refusal": after,
        "rooms_held_at_target": held,
        "acceptance": {
            "refused_with_503_and_retry_after": bool(
                refusal and refusal["status"] == 503 and refusal["retry_after"]
            ),
            "admitted_rooms_hold_target_after_refusal": bool(after and after["holds_target"]),
            "viewer_refused_with_503_and_retry_after": bool(
                viewers
                and viewers["refusal"]
                and viewers["refusal"]["status"] == 503
                and viewers["refusal"]["retry_after"]
            ),
            "admitted_viewers_hold_target_after_refusal": bool(viewers and viewers["after_refusal_holds"]),
        },
    }


async def open_viewer(http, url: str, token: str):
    """A WHEP viewer on `url`, or (None, refusal) when the server turns it away."""
    from clients.python.signaling import SessionError
    from clients.python.viewer import WhepViewer

    viewer = WhepViewer()
    try:
        await viewer.play(http, url, token)
    except SessionError as exc:
        await viewer.pc.close()
        if exc.status is None:  # not a refusal: the connection itself failed
            raise
        return None, {"status": exc.status, "retry_after": exc.retry_after, "reason": str(exc)}
    return viewer, None


async def viewer_sweep(room: LoadRoom, http, base: str, token: str, args: argparse.Namespace) -> dict:
    """More WHEP viewers on the first room, one at a time, until the server refuses one: every viewer's
    delivered fps after each, and once more after the refusal (the refused one must cost the others nothing)."""
    viewers, steps, refusal = [room.viewer], [], None
    window = max(2.0, args.window / 2)
    try:
        for _ in range(MAX_VIEWER_TRIES):
            viewer, refusal = await open_viewer(http, base + room.prefix, token)
            if viewer is None:
                print(f"bench load: viewer {len(viewers) + 1} refused: {refusal}", flush=True)
                break
            viewers.append(viewer)
            await asyncio.sleep(1.0)
            fps = await viewer_fps(viewers, window)
            steps.append(
                {"viewers": len(viewers), "fps_delivered": fps, "holds_target": min(fps) >= TARGET_FPS}
            )
            print(f"  viewers {len(viewers):2d} | min delivered {min(fps):5.1f} fps", flush=True)
        after = await viewer_fps(viewers, window) if refusal is not None else None
        if after is not None:
            print(f"bench load: after the viewer refusal: min delivered {min(after):5.1f} fps", flush=True)
    finally:
        for viewer in viewers[1:]:
            await viewer.close(http, token)
    held = max((s["viewers"] for s in steps if s["holds_target"]), default=1)
    return {
        "room": room.name,
        "steps": steps,
        "refusal": refusal,
        "after_refusal_fps": after,
        "after_refusal_holds": after is not None and min(after) >= TARGET_FPS,
        "viewers_held_at_target": held,
    }


async def viewer_fps(viewers: list, window_s: float) -> list[float]:
    counts = [len(v.video) for v in viewers]
    start = time.monotonic()
    await asyncio.sleep(window_s)
    elapsed = time.monotonic() - start
    return [round((len(v.video) - n) / elapsed, 2) for v, n in zip(viewers, counts, strict=True)]


def print_step(step: dict) -> None:
    for r in step["per_room"]:
        print(
            f"  rooms {step['rooms']:2d} | {r['room']:10} delivered {r['fps_delivered']:5.1f} fps "
            f"fresh {r['fps_fresh']} fps | late chunks {r['late_chunks']} skipped {r['skipped_chunks']} | "
            f"chunk {r['chunk_ms']} ms latency {r['latency_ms']} ms",
            flush=True,
        )


def print_table(result: dict) -> None:
    print(f"\n{'rooms':>17} | {'min delivered fps':>17} | {'min fresh fps':>13} | >= {TARGET_FPS} fps")
    rows = [*result["steps"]] + ([result["after_refusal"]] if result["after_refusal"] else [])
    for i, s in enumerate(rows):
        label = f"{s['rooms']}" + (" (after refusal)" if i == len(result["steps"]) else "")
        delivered = min(r["fps_delivered"] for r in s["per_room"])
        fresh = min((r["fps_fresh"] or 0) for r in s["per_room"])
        print(f"{label:>17} | {delivered:17.1f} | {fresh:13.1f} | {'yes' if s['holds_target'] else 'NO'}")
    print(
        f"rooms held at >= {TARGET_FPS} fps: {result['rooms_held_at_target']}; refusal: {result['refusal']}"
    )
    v = result.get("viewers")
    if v:
        print(
            f"viewers on room {v['room']!r} at >= {TARGET_FPS} fps: {v['viewers_held_at_target']}; "
            f"refusal: {v['refusal']}; after it: {v['after_refusal_fps']}"
        )


def bench_command(args: argparse.Namespace) -> int:
    from clients.looped_speech import dialogue_wavs
    from clients.served_model import load_served_model
    from realtime.bench.machine import command_line, describe_machine, provenance

    check_args(args)
    loaded = load_served_model(args)
    with tempfile.TemporaryDirectory(prefix="bya-load-") as tmp:
        wavs, _, _ = dialogue_wavs(Path(tmp))
        result = asyncio.run(run_load(loaded, args, wavs))
    result = {
        "machine": describe_machine(args.threads),
        "provenance": provenance(
            [loaded.path, loaded.autoencoder_path], command_line(args, "bench load"), args.threads
        ),
        "model": {"path": str(loaded.path), "steps": loaded.steps, "backend": loaded.backend},
        "command": f"bya bench load --window {args.window} --settle {args.settle} --max-tries {args.max_tries}"
        + f" --backend {args.backend}"
        + (f" --max-rooms {args.max_rooms}" if args.max_rooms else ""),
        "target_fps": TARGET_FPS,
        **result,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print_table(result)
    print(f"wrote {out}")
    return 0
