"""The live room: frames on the media clock, audio that never stalls, the overload policy, re-binding,
A/V alignment, idle inputs, bounded viewers; plus its audio input, resampler and file mode.

A tiny generator with random weights stands in for the shipped model: these tests are about time and
plumbing, not picture quality. The room runs on the real clock, but the tests assert only on its media
clock (pts and the input samples it has pulled), never on how late the machine delivered: wall-clock
lateness and jitter are measured by the benchmarks (realtime/bench, clients/bench_latency.py).
"""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.audio.inputs import JITTER_MS, AudioInput
from realtime.engine.latency_policy import MAX_RAISE_MS, RAISE_STEP_MS, LatencyPolicy
from realtime.engine.room import AUDIO_FRAME_SAMPLES, Room, VideoFrameOut
from realtime.errors import AudioInputError, BindingError, BYAError, SceneError
from realtime.media import AUDIO_SAMPLE_RATE
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.default_model import LoadedModel
from realtime.model.generator import Generator
from realtime.outputs.render import render_audio
from realtime.scene.scenes import world_scene
from realtime.stream.options import SamplingOptions

RATE = 48_000
BLOCK = 960  # 20 ms at 48 kHz: a WebRTC packet


@pytest.fixture(scope="module")
def scene():
    return world_scene(2, seed=3)


def tiny_model(steps: int = 2) -> LoadedModel:
    torch.manual_seed(0)
    g = Generator(GENERATOR_CONFIGS["tiny"]).eval()
    return LoadedModel(g, FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval(), steps, Path("tiny"))


def media_clock(room: Room) -> float:
    """Seconds of input the room has pulled: its media clock, read in whole 16 kHz samples."""
    return room._pulled / AUDIO_SAMPLE_RATE


class Viewer:
    """Reads a subscription's video and audio, recording each item with the room's media clock (seconds of
    input pulled) at the moment the room sent it, and the order in which the room sent them."""

    def __init__(self, room: Room, max_frames: int = 64) -> None:
        self.sub = room.subscribe(max_frames)
        self.video: list[tuple[float, object]] = []
        self.audio: list[tuple[float, object]] = []
        self.sent: list[object] = []  # every item in the order the room emitted it
        self._sent_at: dict[int, float] = {}  # id(item) -> media clock when it left (items live in .sent)
        put = self.sub._put

        def record(item) -> None:
            self.sent.append(item)
            self._sent_at[id(item)] = media_clock(room)
            put(item)

        self.sub._put = record
        self.tasks = [
            asyncio.create_task(self._read(self.sub.next_video, self.video)),
            asyncio.create_task(self._read(self.sub.next_audio, self.audio)),
        ]

    async def _read(self, next_item, into: list) -> None:
        while (item := await next_item()) is not None:
            into.append((self._sent_at[id(item)], item))

    async def done(self) -> None:
        await asyncio.gather(*self.tasks)


async def speak(
    audio_input: AudioInput, seconds: float, block=lambda k: None, clock=time.monotonic
) -> list[float]:
    """Write 20 ms int16 blocks at 48 kHz paced by the clock, like a WebRTC peer; return `clock()` at
    each write. `block(k)` gives block k's samples (None: a quiet noise)."""
    rng = np.random.default_rng(0)
    start, times = time.monotonic(), []
    for k in range(int(seconds * 50)):
        pcm = block(k)
        if pcm is None:
            pcm = (rng.standard_normal(BLOCK) * 3000).astype(np.int16)
        audio_input.write(pcm, RATE)
        times.append(clock())
        await asyncio.sleep(max(0.0, start + (k + 1) * 0.02 - time.monotonic()))
    return times


def contiguous(items: list, step: int) -> bool:
    pts = [it.pts for _, it in items]
    return pts == list(range(pts[0], pts[0] + step * len(pts), step))


def never_early(items: list, stats: dict, seconds_per_pts: float) -> bool:
    """Each item left once the media clock had passed its pts plus the latency (which never goes below
    where it started; the reported start is rounded to 0.1 ms, the clock read in whole samples)."""
    start_s = stats["latency_changes"][0][1] / 1e3 - 1e-4
    return all(t + 1 / AUDIO_SAMPLE_RATE >= start_s + it.pts * seconds_per_pts for t, it in items)


def next_tick_not_due(room: Room, n_ticks: int) -> bool:
    """After n_ticks audio frames the next was not due yet: every tick due by the media clock has left."""
    return media_clock(room) < room.latency.delay_s + n_ticks * AUDIO_FRAME_SAMPLES / RATE


async def wait_until(predicate, what: str, timeout_s: float = 20.0) -> None:
    """Poll predicate() on the event loop until it holds; a generous bound only turns a hang into a failure."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s} s")
        await asyncio.sleep(0.01)


def test_room_makes_frames_and_audio_on_its_clock(scene) -> None:
    async def main():
        room = Room(tiny_model(), scene, steps=2)
        assert room.characters == list(scene.names)
        viewer = Viewer(room)
        await room.start()
        await speak(room.open_input("a"), 2.0)
        await room.stop()
        await viewer.done()
        return room.stats(), viewer, next_tick_not_due(room, room.stats()["audio_frames"])

    stats, viewer, caught_up = asyncio.run(main())
    video, audio = viewer.video, viewer.audio
    assert video[0][1].pts == 0 and audio[0][1].pts == 0
    assert contiguous(video, 1) and contiguous(audio, AUDIO_FRAME_SAMPLES)
    assert len(video) > 10 and abs(len(audio) - 2 * len(video)) <= 1
    assert video[0][1].image.shape == (128, 128, 3) and audio[0][1].pcm.shape == (960,)
    assert audio[0][1].pcm.dtype == np.int16
    # the media clock: frame k leaves at start + latency + 40 ms x k, never before, and every frame and
    # tick due by the time the room stopped has left (how late a busy machine sends them: benchmarks)
    assert never_early(video, stats, 0.04) and never_early(audio, stats, 1 / RATE)
    assert caught_up and stats["audio_frames"] == len(audio)
    assert stats["chunks"] > 0 and stats["audio_underruns"] == 0 and stats["error"] is None
    assert stats["frames"] == len(video) and stats["timings_ms"]["denoise_ms"] > 0
    assert stats["latency_ms"] > 135  # at least the audio a chunk waits for (80 ms + 55 ms lookahead)


def test_overload_fewer_steps_then_repeat_frames_audio_never_stalls(scene) -> None:
    loaded = tiny_model()
    slow = {"on": False}
    denoise = loaded.generator.denoise

    @functools.wraps(denoise)
    def slowed(*args, **kwargs):
        if slow["on"]:
            time.sleep(0.05)  # a step that takes 50 ms more: 4 steps cannot fit an 80 ms chunk
        return denoise(*args, **kwargs)

    loaded.generator.denoise = slowed

    async def main():
        room = Room(loaded, scene, steps=4)
        viewer = Viewer(room, max_frames=256)
        await room.start()
        audio_input = room.open_input("a")
        await speak(audio_input, 1.0)
        slow["on"] = True
        before = room.stats()
        await speak(audio_input, 3.0)
        await room.stop()
        await viewer.done()
        return before, room.stats(), viewer, next_tick_not_due(room, room.stats()["audio_frames"])

    before, after, viewer, caught_up = asyncio.run(main())
    # the policy kicked in: fewer steps first, then skipped chunks whose frames repeat the last one
    used = {int(k): v for k, v in after["steps_used"].items()}
    assert any(s < 4 for s in used) and after["skipped_chunks"] > before["skipped_chunks"]
    assert after["repeated_frames"] > before["repeated_frames"]
    assert after["chunks"] > before["chunks"] + 5  # the picture still moves (every few chunks at least)
    # ... and the audio never waited: every 20 ms frame due on the media clock left, nothing missing
    audio = viewer.audio
    assert contiguous(audio, AUDIO_FRAME_SAMPLES) and after["audio_underruns"] == 0
    assert contiguous(viewer.video, 1)
    assert never_early(audio, after, 1 / RATE) and caught_up and after["audio_frames"] == len(audio)
    loud = [np.abs(it.pcm).max() > 1000 for _, it in audio if it.pts > audio[0][1].pts + 0.3 * RATE]
    assert np.mean(loud) > 0.9  # the speaker is heard throughout, slow model or not


def test_missed_deadlines_raise_the_latency_in_small_bounded_steps(scene) -> None:
    loaded = tiny_model(steps=1)
    slow = {"ms": 0.0}
    denoise = loaded.generator.denoise

    @functools.wraps(denoise)
    def slowed(*args, **kwargs):
        time.sleep(slow["ms"] / 1000)
        return denoise(*args, **kwargs)

    loaded.generator.denoise = slowed

    async def main():
        room = Room(loaded, scene, steps=1)
        viewer = Viewer(room, max_frames=1024)
        await room.start()
        talking = asyncio.create_task(speak(room.open_input("a"), 120.0))  # a peer talking throughout
        try:
            await wait_until(lambda: room.stats()["chunks"] >= 12, "a second of chunks at the model's pace")
            before = room.stats()
            slow["ms"] = 60.0  # every chunk now misses the deadline the warm-up planned for
            await wait_until(
                lambda: room.latency.delay_ms >= before["latency_ms"] + 2 * RAISE_STEP_MS,
                "late chunks to raise the latency two steps",
            )
            raised = room.stats()
        finally:
            talking.cancel()
            await asyncio.gather(talking, return_exceptions=True)
            await room.stop()
            await viewer.done()
        return before, raised, room.stats(), viewer

    # (coming back down needs a spell without misses, which a shared CPU may never give a live room: that
    # half of the policy is checked on a synthetic clock below)
    before, raised, after, viewer = asyncio.run(main())
    changes = after["latency_changes"]
    start = changes[0][1]
    levels = [ms for _, ms in changes]
    assert np.allclose(np.abs(np.diff(levels)), RAISE_STEP_MS)  # one step at a time
    assert raised["latency_ms"] >= before["latency_ms"] + 2 * RAISE_STEP_MS  # late chunks raised it
    assert max(levels) <= start + MAX_RAISE_MS and min(levels) >= start
    frames = [f for f, _ in changes]
    assert frames == sorted(frames)
    # both outputs paused (or went early) together: audio and video contiguous, nothing dropped
    assert contiguous(viewer.audio, AUDIO_FRAME_SAMPLES) and contiguous(viewer.video, 1)
    assert after["audio_underruns"] == 0

    # a fixed latency (latency_ms given) is never changed
    async def fixed():
        room = Room(loaded, scene, steps=1, latency_ms=300)
        await room.start()
        await speak(room.open_input("a"), 1.5)
        await room.stop()
        return room.stats()

    stats = asyncio.run(fixed())
    assert stats["latency_ms"] == 300 and len(stats["latency_changes"]) == 1


def test_a_lone_missed_deadline_does_not_raise_the_latency() -> None:
    """The policy on a synthetic clock (a live run adds the machine's own misses at random): one hiccup's
    burst of misses inside a second is not a trend; misses spread over more than a second are."""
    policy = LatencyPolicy()
    policy.start(0.2, adaptive=True)

    for t in (100.0, 100.05, 100.1, 100.3, 100.6, 100.9):  # a 300 ms stall and the catch-up after it
        policy.missed(t, next_frame=0)
    assert len(policy.changes) == 1 and policy.delay_ms == 200.0  # one miss burst: no trend

    policy.missed(101.5, next_frame=40)  # a miss again, 1.5 s after the first: misses over more than a second
    assert policy.delay_ms == 200.0 + RAISE_STEP_MS and policy.changes[-1] == [40, 210.0]


def test_a_quiet_spell_lowers_the_latency_a_step_at_a_time_never_below_its_start() -> None:
    """The policy on a synthetic clock: raised at most once a second while misses go on, then lowered a
    step after each quiet spell of lower_after_s, down to where it started and no further."""
    policy = LatencyPolicy()
    policy.start(0.2, adaptive=True)
    policy.lower_after_s = 0.4
    for t in (100.0, 100.5, 101.1, 101.6, 102.2, 103.3):
        policy.missed(t, next_frame=round(25 * (t - 100)))
    assert [ms for _, ms in policy.changes] == [200.0, 210.0, 220.0, 230.0]  # 101.1, 102.2, 103.3
    for t in np.arange(103.4, 106.0, 0.1):  # every chunk meets its deadline from now on
        policy.met(float(t), next_frame=round(25 * (t - 100)))
    levels = [ms for _, ms in policy.changes]
    assert levels == [200.0, 210.0, 220.0, 230.0, 220.0, 210.0, 200.0] and policy.delay_ms == 200.0
    frames = [f for f, _ in policy.changes]
    assert frames == sorted(frames) and np.all(np.diff(frames[3:]) >= 10)  # 0.4 s quiet between lowerings


def test_av_offset_a_click_leaves_with_its_frame(scene) -> None:
    click_block = 40  # written 0.8 s into the stream

    def block(k: int) -> np.ndarray:
        pcm = np.zeros(BLOCK, np.int16)
        if k == click_block:
            pcm[:] = 20000
        return pcm

    def clicked(item) -> bool:
        return np.abs(item.pcm).max() > 10000

    async def main():
        room = Room(tiny_model(), scene, steps=1)
        viewer = Viewer(room, max_frames=256)
        await room.start()
        audio_input = room.open_input("a")
        written = await speak(audio_input, 1.6, block, clock=lambda: media_clock(room))
        await wait_until(lambda: any(clicked(it) for _, it in viewer.audio), "the click to leave the room")
        target_ms = room.stats()["inputs"]["a"]["target_ms"]
        await room.stop()
        await viewer.done()
        return room.stats(), viewer, written[click_block], target_ms

    stats, viewer, written, target_ms = asyncio.run(main())
    sent_at, frame = next((t, it) for t, it in viewer.audio if clicked(it))
    i0 = int(np.argmax(np.abs(frame.pcm) > 10000))
    click_pts = frame.pts + i0  # 48 kHz samples since the room started
    # the click leaves while the frame showing that instant is the newest on screen: A/V offset 0
    sent = viewer.sent
    at = next(i for i, it in enumerate(sent) if it is frame)
    on_screen = next(it for it in reversed(sent[:at]) if isinstance(it, VideoFrameOut))
    assert on_screen.pts == click_pts // 1920
    # the click leaves once the media clock has passed its pts plus the latency, never before ...
    assert never_early([(sent_at, frame)], stats, 1 / RATE)
    # ... and it sits in the output where it was written on the media clock, plus the input's jitter
    # buffer (and up to two 20 ms pulls): the whole delay is the room's latency and that buffer
    buffered_ms = 1e3 * (click_pts / RATE - written)
    assert -10 <= buffered_ms <= max(JITTER_MS, target_ms) + 50, buffered_ms


def test_rebinding_moves_speech_and_a_closed_input_idles(scene) -> None:
    async def main():
        room = Room(tiny_model(), scene, steps=1)
        await room.start()
        a = room.open_input("a")  # the next free character: 0
        b = room.open_input("b", character=None)  # the next free: 1 (silent speaker)
        levels = []
        await speak(a, 0.8)
        levels.append((room.binding(), room.stats()["levels"]))
        room.bind("a", 1)
        await speak(a, 0.8)
        levels.append((room.binding(), room.stats()["levels"]))
        a.close()
        frames = room.stats()["frames"]
        await wait_until(
            lambda: room.stats()["frames"] - frames >= 20 and room.stats()["levels"] == [0.0, 0.0],
            "20 more frames (0.8 s) with everyone silent after the input closed",
        )
        levels.append((room.binding(), room.stats()["levels"]))
        idle_frames = room.stats()["frames"] - frames
        with pytest.raises(AudioInputError, match="closed"):
            a.write(np.zeros(BLOCK, np.int16), RATE)
        b.close()
        await room.stop()
        return levels, idle_frames

    levels, idle_frames = asyncio.run(main())
    (bind0, l0), (bind1, l1), (bind2, l2) = levels
    assert bind0 == {"a": 0, "b": 1} and l0[0] > 0.02 and l0[1] == 0
    assert bind1 == {"a": 1, "b": 1} and l1[1] > 0.02 and l1[0] == 0  # the speech moved to character 1
    assert bind2 == {"b": 1} and l2 == [0.0, 0.0]  # closed: everyone silent
    assert idle_frames >= 15  # ... and the scene goes on (0.8 s = 20 frames)


def test_slow_viewer_queue_is_bounded_and_counts_drops(scene) -> None:
    async def main():
        room = Room(tiny_model(), scene, steps=1)
        lazy = room.subscribe(max_frames=4)
        viewer = Viewer(room)
        await room.start()
        await wait_until(lambda: room.stats()["audio_frames"] >= 24, "12 frames for a 4-frame queue")
        sizes = (len(lazy.video), len(lazy.audio))
        stats = room.stats()
        await room.stop()
        await viewer.done()
        rest = [await lazy.next_video() for _ in range(5)]
        return sizes, lazy, stats, viewer, rest

    sizes, lazy, stats, viewer, rest = asyncio.run(main())
    assert sizes == (4, 8)  # 4 frames and the same 160 ms of audio
    assert lazy.dropped_video == stats["frames"] - 4 and lazy.dropped_audio > 0
    assert stats["dropped_video"] == lazy.dropped_video + viewer.sub.dropped_video
    assert viewer.sub.dropped_video == 0 and contiguous(viewer.video, 1)
    assert [r.pts for r in rest[:4]] == list(range(stats["frames"] - 4, stats["frames"])) and rest[4] is None


def test_room_validates_its_inputs_and_bindings(scene) -> None:
    room = Room(tiny_model(), scene, max_inputs=2)
    a = room.open_input("a", 1)
    assert room.binding() == {"a": 1}
    with pytest.raises(BindingError, match="already open"):
        room.open_input("a")
    room.open_input("b")
    with pytest.raises(BindingError, match="2 inputs open"):
        room.open_input("c")
    with pytest.raises(BindingError, match=r"character 2: expected an integer in \[0, 2\)"):
        room.bind("a", 2)
    with pytest.raises(BindingError, match="no open input 'zz'"):
        room.bind("zz", 0)
    room.bind("a", None)
    assert room.binding() == {"a": None, "b": 0}
    for pcm, rate, match in [
        (np.zeros((BLOCK, 2), np.int16), RATE, "mono"),
        (np.zeros(BLOCK, np.int32), RATE, "int16 or float32"),
        (np.full(BLOCK, np.nan, np.float32), RATE, "NaN"),
        (np.zeros(BLOCK, np.int16), 44_000, "sample rate must be one of"),
        ([0, 1, 2], RATE, "numpy array"),
        (np.zeros(11 * 8000, np.int16), 8000, "at most 10 s"),
    ]:
        with pytest.raises(AudioInputError, match=match):
            a.write(pcm, rate)
    a.write(np.zeros((1, BLOCK), np.float32), RATE)  # one channel, any of the two layouts
    with pytest.raises(SceneError, match="64 px"):
        Room(tiny_model(), world_scene(1, size=64), steps=1)
    with pytest.raises(BYAError, match="steps"):
        Room(tiny_model(), scene, steps=0)


def test_audio_input_resamples_to_16k_and_refills_after_running_dry() -> None:
    a = AudioInput("x", 0, lambda key: None, jitter_ms=20)
    t = np.arange(4410) / 44_100
    a.write((np.sin(2 * np.pi * 440 * t) * 0.5).astype(np.float32), 44_100)  # 100 ms at 44.1 kHz
    got = np.concatenate([a.pull(320) for _ in range(4)])
    assert got.shape == (1280,) and 0.3 < np.abs(got[400:1200]).max() <= 0.51
    assert a.pull(640)[-1] == 0 and a.stats()["underruns"] == 1  # ran dry: silence, counted
    a.write(np.zeros(80, np.int16), 8_000)  # a new rate is a new stream; 10 ms is under the jitter buffer
    assert a.stats()["rate"] == 8_000 and not a.pull(10).any()


def test_file_mode_covers_the_audio_in_whole_chunks(scene) -> None:
    loaded = tiny_model(steps=1)
    audio = np.random.default_rng(0).standard_normal((2, 6_000)).astype(np.float32) * 0.1  # 375 ms
    a = render_audio(loaded, scene, audio, SamplingOptions.defaults(loaded, seed=1))
    b = render_audio(loaded, scene, audio, SamplingOptions.defaults(loaded, seed=1))
    assert a.frames.shape == (10, 128, 128, 3) and a.boxes.shape == (10, 2, 4)  # 5 chunks of 2 frames
    assert len(a.timings_ms) == 5 and np.array_equal(a.frames, b.frames)


def test_file_mode_follows_the_scenes_choreography(scene, monkeypatch) -> None:
    """--motion: each chunk is generated from the scene re-posed at its time (the frame before it), the
    skipped chunks' time included; a photo scene is refused."""
    asked = []
    standing = type(scene).standing

    def spy(self, frame):
        asked.append(frame)
        return standing(self, frame)

    monkeypatch.setattr(type(scene), "standing", spy)
    audio = np.random.default_rng(0).standard_normal((2, 6_000)).astype(np.float32) * 0.1
    loaded = tiny_model(steps=1)
    loaded.window = 0  # the student's setting: each chunk's residual starts from the (re-posed) reference
    still = render_audio(loaded, scene, audio, SamplingOptions.defaults(loaded, seed=1))
    assert asked == []
    moving = render_audio(loaded, scene, audio, SamplingOptions.defaults(loaded, seed=1, motion=True))
    assert asked == [0, 1, 3, 5, 7]  # chunks of 2 frames, each from the frame before it
    assert moving.frames.shape == still.frames.shape and not np.array_equal(moving.frames, still.frames)
    monkeypatch.undo()

    from matplotlib import cbook

    from realtime.scene.scenes import photo_scene

    photo = photo_scene(
        cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), boxes=[[200, 170, 320, 300]]
    )
    with pytest.raises(SceneError, match="choreography"):
        render_audio(
            tiny_model(steps=1), photo, np.zeros((1, 3200), np.float32), SamplingOptions(motion=True)
        )
    with pytest.raises(SceneError, match="choreography"):
        Room(tiny_model(steps=1), photo, motion=True)


def test_file_mode_composites_a_photo_scene_onto_the_full_photo() -> None:
    from matplotlib import cbook

    from realtime.scene.scenes import photo_scene

    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    scene = photo_scene(photo, boxes=[[200, 170, 320, 300]])  # a small region: the frame is scaled into it
    x0, y0, x1, y1 = scene.region
    assert (x1 - x0) < 512
    out = render_audio(tiny_model(steps=1), scene, np.zeros((1, 3200), np.float32))
    assert out.frames.shape == (6, 600, 512, 3)
    assert np.array_equal(
        out.frames[:, y1:], np.broadcast_to(scene.background[y1:], out.frames[:, y1:].shape)
    )
    inside = out.boxes[~np.isnan(out.boxes).any(-1)]
    assert ((inside[:, 0] >= x0) & (inside[:, 2] <= x1) & (inside[:, 1] >= y0) & (inside[:, 3] <= y1)).all()


@pytest.mark.parametrize(
    "mode, sustainable, expect",
    [("auto", 1e6, True), ("auto", 0.0, False), ("on", 0.0, True), ("off", 1e6, False)],
)
def test_warm_up_decides_listener_isolation(scene, monkeypatch, mode, sustainable, expect) -> None:
    """auto keeps the voiceless second pass only where a chunk with it fits the budget; on and off obey."""
    import realtime.engine.room as engine

    monkeypatch.setattr(engine, "SUSTAINABLE", sustainable)  # 0: nothing fits; 1e6: everything does
    loaded = tiny_model(1)
    loaded.isolation = mode
    room = Room(loaded, scene)
    assert room.stats()["listener_isolation"] is None
    _, _, live = room._warm_up()
    assert room.isolating is expect and live.session.isolate_listeners is expect
    assert room.stats()["listener_isolation"] == ("on" if expect else "off")


def test_bya_render_with_motion_makes_exactly_what_model_eval_track_scores() -> None:
    """`bya render --motion` on a world dialogue's scene and audio generates the frames `bya model eval
    --track` scores for that dialogue: the same session, re-posed the same way, from the same noise."""
    from distill.world.clip import make_clip
    from realtime.scene.cartoon.render import render_plan, standing_plan
    from realtime.scene.scenes import scene_from_description
    from realtime.stream.sampler import generate

    clip = make_clip(101, n_characters=2, seconds=1.0)
    loaded = tiny_model(steps=1)
    loaded.window = 0
    plan = standing_plan(clip.scene, clip.n_frames, clip.dialogue.fps)
    standing = render_plan(clip.scene, plan, clip.size)
    evaluated = generate(
        loaded.generator,
        loaded.autoencoder,
        clip.render.frames[0],
        clip.render.masks[0],
        clip.dialogue.audio,
        options=SamplingOptions(steps=1, seed=clip.seed, window=0),
        poses=(standing.frames, standing.masks),
    )
    scene = scene_from_description(clip.scene, seed=clip.seed, size=clip.size)
    rendered = render_audio(
        loaded, scene, clip.dialogue.audio, SamplingOptions.defaults(loaded, seed=clip.seed, motion=True)
    )
    t = len(evaluated.frames)
    assert t >= 20 and len(rendered.frames) >= t
    gap = np.abs(rendered.frames[:t].astype(int) - evaluated.frames.astype(int))
    assert gap.max() <= 1 and gap.mean() < 0.01  # decoded per chunk vs in batches: rounding at most
