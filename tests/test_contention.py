"""A live room beside CPU-bound processes (issue 22): the audio keeps flowing, only the frame rate degrades.

Busy-looping Python processes start while a room runs and a speaker talks into it (the room's latency was
measured on the quieter machine, so its chunks may now miss their deadlines). The defined behaviour is the
overload policy's: fewer steps, then repeated frames, while every 20 ms of output audio leaves with the
speaker in it and the clock never stops. Like tests/test_faults.py, it asserts on counts and the media
clock only; how late a contended machine delivers is measured by `bya bench contention`.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_engine import Viewer, contiguous, never_early, next_tick_not_due, tiny_model, wait_until
from test_faults import paced, processed

from realtime.engine.room import AUDIO_FRAME_SAMPLES, Room
from realtime.engine.threads import live_threads
from realtime.scene.scenes import world_scene

RATE = 48_000
COMPETITORS = 2  # as many busy processes as the 2-core target CPU has cores
CONTENDED_TICKS = 200  # 20 ms output ticks (4 s) that must leave while the competitors run
FRESH = 3  # fresh (not repeated) frames that must be shown while they run: the picture still moves
READY_TIMEOUT_S = 30.0  # bounds on conditions (a hang fails the test): never waited out when things work
# a competitor: says it runs, then one core's worth of pure-Python work until it is killed
SPIN = "print('spinning', flush=True)\nwhile True:\n    pass\n"


@pytest.fixture(scope="module")
def scene():
    return world_scene(2, seed=3)


def stop(competitors: list[subprocess.Popen]) -> None:
    """Kill the busy processes this test started (each by its own handle) and reap them."""
    for p in competitors:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
        p.stdout.close()


def longest_quiet_run(loud: list[bool]) -> int:
    """The most consecutive output ticks without the speaker in them."""
    longest = run = 0
    for is_loud in loud:
        run = 0 if is_loud else run + 1
        longest = max(longest, run)
    return longest


def test_cpu_contention_keeps_audio_flowing_and_degrades_only_the_frame_rate(scene) -> None:
    competitors: list[subprocess.Popen] = []

    async def main():
        room = Room(tiny_model(), scene, steps=2)
        viewer = Viewer(room, max_frames=1024)
        await room.start()
        talking = asyncio.create_task(paced(room.open_input("a", 0), 120.0))  # cancelled at the end
        try:
            await wait_until(lambda: processed(room) >= 10, "10 chunks (0.8 s) before the competitors")
            for _ in range(COMPETITORS):
                competitors.append(
                    subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
                )
            for p in competitors:  # each has started spinning (a line, not a guessed delay)
                line = await asyncio.wait_for(asyncio.to_thread(p.stdout.readline), READY_TIMEOUT_S)
                assert line == "spinning\n", line
            before = room.stats()

            def contended() -> bool:  # enough ticks, and the picture has moved at least a little
                now = room.stats()
                fresh = (now["frames"] - now["repeated_frames"]) - (
                    before["frames"] - before["repeated_frames"]
                )
                return now["audio_frames"] >= before["audio_frames"] + CONTENDED_TICKS and fresh >= FRESH

            await wait_until(
                contended,
                f"{CONTENDED_TICKS} audio ticks and {FRESH} fresh frames beside busy processes",
                READY_TIMEOUT_S,
            )
            during = room.stats()
            still_busy = [p.poll() is None for p in competitors]  # the contention lasted throughout
        finally:
            stop(competitors)  # before the loop's executor shuts down: a blocked readline returns
            talking.cancel()
            await asyncio.gather(talking, return_exceptions=True)
            await room.stop()
            await viewer.done()
        caught_up = next_tick_not_due(room, room.stats()["audio_frames"])
        return before, during, room.stats(), still_busy, viewer, caught_up

    threads = torch.get_num_threads()
    torch.set_num_threads(live_threads())  # as `bya serve` runs it: one core stays with the event loop
    try:
        before, during, after, still_busy, viewer, caught_up = asyncio.run(main())
    finally:
        torch.set_num_threads(threads)
        stop(competitors)

    assert still_busy == [True] * COMPETITORS
    # the audio never waited: every tick due on the media clock left, in order, none padded
    audio = viewer.audio
    assert contiguous(audio, AUDIO_FRAME_SAMPLES) and after["audio_underruns"] == 0
    assert caught_up and after["audio_frames"] == len(audio) and never_early(audio, after, 1 / RATE)
    # ... with the speaker in it: no stretch where the audio stopped (an input that ran dry re-fills its
    # pre-buffer, up to MAX_JITTER_MS, and grows it so it runs dry no more)
    start = before["audio_frames"] * AUDIO_FRAME_SAMPLES
    end = during["audio_frames"] * AUDIO_FRAME_SAMPLES
    loud = [np.abs(it.pcm).max() > 3000 for _, it in audio if start <= it.pts < end]
    assert len(loud) >= CONTENDED_TICKS
    print(
        f"\nbeside {COMPETITORS} busy processes: {len(loud)} ticks, {np.mean(loud):.1%} with the speaker, "
        f"longest quiet run {longest_quiet_run(loud)} ticks; frames {during['frames'] - before['frames']}, "
        f"repeated {during['repeated_frames'] - before['repeated_frames']}, chunks "
        f"{during['chunks'] - before['chunks']}, skipped {during['skipped_chunks'] - before['skipped_chunks']}, "
        f"steps used {during['steps_used']}, latency {before['latency_ms']} -> {during['latency_ms']} ms"
    )
    assert np.mean(loud) > 0.9 and longest_quiet_run(loud) <= 10  # at most one 200 ms re-fill at once
    # the video went on: a frame every 40 ms of media (repeated ones allowed), fresh ones among them
    assert contiguous(viewer.video, 1) and after["frames"] == len(viewer.video)
    assert during["frames"] - before["frames"] >= CONTENDED_TICKS // 2 - 1
    ticks = during["audio_frames"] - before["audio_frames"]
    worked = (during["chunks"] + during["skipped_chunks"]) - (before["chunks"] + before["skipped_chunks"])
    assert worked >= ticks // 4 - 5  # the worker kept pace: 4 ticks a chunk
    assert during["chunks"] > before["chunks"]  # fewer fresh chunks than alone, but some
    assert after["error"] is None
