"""Mixed streams in the live server: `POST /whip/mix` diarized live into one room input per speaker.

The end-to-end test sends a 2-speaker world dialogue (distill.world.dialogue, seed 3) through WHIP with both
voices enrolled from other sentences (realtime.bench.diarization.enrollment_audio), taps what the room
feeds each character, and scores it against the dialogue's truth; a plain WHIP speaker sending the same
audio alongside gives the baseline for the added latency. The MixInput unit tests use a scripted
diarizer and recording inputs, so they need neither WebRTC nor resemblyzer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import correlate, resample_poly
from test_server import AUTH, SDP, TOKEN, loaded, loopback_ice, served, wait_for  # noqa: F401 (fixtures)
from webrtc_peers import Speaker

from realtime.audio.inputs import AudioInput
from realtime.audio.mix_input import MIX_JITTER_MS, MixDiarizer, MixInput
from realtime.cli import main
from realtime.errors import AudioInputError
from realtime.media import AUDIO_SAMPLE_RATE, SAMPLES_PER_FRAME, WEBRTC_AUDIO_RATE
from realtime.server.app import ServerLimits

SEED, SECONDS = 3, 12.0  # both voices speak in both halves (the re-binding happens half-way)
LIMITS = ServerLimits(idle_timeout_s=5.0, max_rooms=1, max_viewers_total=4)  # no capacity measurement
UP = WEBRTC_AUDIO_RATE // AUDIO_SAMPLE_RATE
TICK = AUDIO_SAMPLE_RATE // 50  # 16 kHz samples in one 20 ms tick of the room's clock


@pytest.fixture(scope="module")
def mix_world(tmp_path_factory):
    """The dialogue, and a MixDiarizer enrolled from WAV files as `bya serve --enroll` makes it."""
    from distill.world.dialogue import synthesize_dialogue
    from realtime.bench.diarization import enrollment_audio

    dialogue = synthesize_dialogue(2, seconds=SECONDS, seed=SEED)
    said = {s.text for s in dialogue.segments}
    folder = tmp_path_factory.mktemp("enroll")
    specs = []
    for k in range(2):
        path = folder / f"voice{k}.wav"
        audio = enrollment_audio(SEED, 2, k, said, seconds=4.0)
        wavfile.write(path, AUDIO_SAMPLE_RATE, np.round(audio * 32767).astype(np.int16))
        specs.append(f"{k}={path}")
    mix = MixDiarizer.from_arguments(specs, None)  # pays resemblyzer's first-call warm-up once
    mix.warm_up()
    return dialogue, mix


# -- the room's feed, tapped ----------------------------------------------------------------------------
class FeedTap:
    """What the room pulls from each input and feeds each character, on its 16 kHz sample clock."""

    def __init__(self, room, monkeypatch) -> None:
        self.pulls: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)
        self.fed: list[tuple[int, np.ndarray]] = []
        self.written: dict[str, int] = defaultdict(int)  # 16 kHz samples written to each input
        tap, pull, write, feed = self, AudioInput.pull, AudioInput.write, room._feed

        def tapped_pull(audio_input, n):
            x = pull(audio_input, n)
            tap.pulls[audio_input.key].append((room._pulled - n, x))  # the room counts a pull first
            return x

        def tapped_write(audio_input, pcm, sample_rate):
            write(audio_input, pcm, sample_rate)
            tap.written[audio_input.key] += len(pcm) * AUDIO_SAMPLE_RATE // sample_rate

        class Feed:  # the worker's queue, teed
            def put(self, block) -> None:
                if block is not None:
                    tap.fed.append((room._pulled - block.shape[1], block))
                feed.put(block)

            def get(self, *args, **kwargs):
                return feed.get(*args, **kwargs)

            def get_nowait(self):
                return feed.get_nowait()

        monkeypatch.setattr(AudioInput, "pull", tapped_pull)
        monkeypatch.setattr(AudioInput, "write", tapped_write)
        room._feed = Feed()

    def timeline(self, blocks: list[tuple[int, np.ndarray]]) -> np.ndarray:
        end = max(start + b.shape[-1] for start, b in blocks)
        out = np.zeros((*blocks[0][1].shape[:-1], end), np.float32)
        for start, b in blocks:
            out[..., start : start + b.shape[-1]] = b
        return out


def landing(timeline: np.ndarray, reference: np.ndarray) -> int:
    """The room sample at which `reference`'s first sample arrived (peak of the cross-correlation)."""
    c = correlate(timeline.astype(np.float64), reference.astype(np.float64), mode="full", method="fft")
    return int(np.argmax(c)) - (len(reference) - 1)


def routing_accuracy(fed, truth, reference, start, switch) -> dict[str, tuple[int, int]]:
    """Speech frames whose fed audio went >= 90% to a true speaker's character, before and after the
    re-binding that swapped the two speakers' characters at room sample `switch`."""
    counts = {"before": [0, 0], "after": [0, 0], "moved": [0, 0]}
    for f in np.flatnonzero(truth.any(0)):
        a = start + f * SAMPLES_PER_FRAME
        b = a + SAMPLES_PER_FRAME
        if a < switch < b or b > fed.shape[1]:
            continue
        phase = "after" if a >= switch else "before"
        expected = truth[::-1, f] if phase == "after" else truth[:, f]
        energy = (fed[:, a:b].astype(np.float64) ** 2).sum(1)
        floor = 0.01 * float((reference[f * SAMPLES_PER_FRAME :][:SAMPLES_PER_FRAME] ** 2).sum())
        right = energy.sum() > max(floor, 1e-9) and energy[expected].sum() >= 0.9 * energy.sum()
        counts[phase][0] += int(right)
        counts[phase][1] += 1
        if phase == "after" and truth[0, f] and not truth[1, f]:  # speaker 0 alone, now on character 1
            counts["moved"][0] += int(right)
            counts["moved"][1] += 1
    return {k: tuple(v) for k, v in counts.items()}


# -- end to end -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_mixed_stream_drives_each_speakers_character_and_rebinds(loaded, mix_world, monkeypatch) -> None:  # noqa: F811
    dialogue, mix = mix_world
    reference = dialogue.mix  # 16 kHz
    lead = np.zeros(AUDIO_SAMPLE_RATE, np.float32)  # the plain speaker's first second: time to unbind it
    result = {}

    async def go() -> None:
        async with served(loaded, limits=LIMITS, mix=mix) as (server, base, http):
            room = server.room
            tap = FeedTap(room, monkeypatch)
            mixed = Speaker(resample_poly(reference, UP, 1).astype(np.float32))
            plain = Speaker(resample_poly(np.concatenate([lead, reference]), UP, 1).astype(np.float32))
            try:
                assert await mixed.publish(http, base, "mix", TOKEN) == 201
                assert mixed.location.startswith("/sessions/")
                assert await plain.publish(http, base, 0, TOKEN) == 201
                r = await http.put(f"{base}/binding", json={"inputs": {plain.session_id: None}}, headers=AUTH)
                assert r.status == 200, await r.text()
                sid = mixed.session_id
                s0, s1 = f"{sid}/speaker0", f"{sid}/speaker1"
                view = await (await http.get(f"{base}/binding", headers=AUTH)).json()
                assert view["speakers"] == {s0: 0, s1: 1, plain.session_id: None}
                assert view["binding"] == {sid: None, s0: 0, s1: 1, plain.session_id: None}

                session = server.sessions[sid]
                await wait_for(lambda: session.audio_s > SECONDS / 2 + 0.5, 30.0)
                names = room.characters
                r = await http.put(f"{base}/binding", json={"inputs": {s0: 1, s1: names[0]}}, headers=AUTH)
                assert r.status == 200, await r.text()
                result["switch"] = room._pulled
                assert (await r.json())["speakers"] == {s0: 1, s1: 0, plain.session_id: None}

                # every second of the mix decided and routed to the inputs, ...
                routed = int((SECONDS + 0.2) * AUDIO_SAMPLE_RATE)
                await wait_for(lambda: all(tap.written[k] >= routed for k in (sid, s0, s1)), 30.0)
                # ... then played out of their pre-buffer: the room's clock has pulled what they held
                # (a FIFO, so all written before it), and a tick more for the drift control's time-scaling
                inputs = room.stats()["inputs"]
                held = max(inputs[k]["buffered_ms"] for k in (sid, s0, s1))
                played = room._pulled + int(held * AUDIO_SAMPLE_RATE / 1000) + TICK
                await wait_for(lambda: room._pulled >= played, 30.0)
                stats = await (await http.get(f"{base}/stats", headers=AUTH)).json()
                (mixed_view,) = [s for s in stats["sessions"] if "mix" in s]
                result["mix_stats"] = mixed_view["mix"]
                result["inputs"] = {k: stats["room"]["inputs"][k] for k in (sid, s0, s1, plain.session_id)}
                result["latency"] = {
                    "t0": room._t0,
                    "mixed": mixed.track.start_time,
                    "plain": plain.track.start_time,
                }

                r = await http.delete(base + mixed.location, headers=AUTH)
                assert r.status == 200 and sid not in server.sessions
                await wait_for(lambda: not {sid, s0, s1} & set(room.binding()), 5.0)  # played out, closed
                assert plain.session_id in server.sessions  # the other session goes on
            finally:
                await mixed.close()
                await plain.close()
            result["tap"] = tap
            result["keys"] = (sid, s0, s1, plain.session_id)

    asyncio.run(go())
    tap, (sid, s0, s1, pid) = result["tap"], result["keys"]
    start = landing(tap.timeline(tap.pulls[sid]), reference)
    speakers = tap.timeline(tap.pulls[s0]) + tap.timeline(tap.pulls[s1])  # opened and closed together
    assert abs(landing(speakers, reference) - start) <= 16  # the speakers' inputs run in step with the mix
    plain_start = landing(tap.timeline(tap.pulls[pid]), np.concatenate([lead, reference]))
    t = result["latency"]
    mixed_ms = 1000 * (t["t0"] + start / AUDIO_SAMPLE_RATE - t["mixed"])
    plain_ms = 1000 * (t["t0"] + plain_start / AUDIO_SAMPLE_RATE - t["plain"])
    counts = routing_accuracy(tap.timeline(tap.fed), dialogue.active, reference, start, result["switch"])
    share = {k: right / max(total, 1) for k, (right, total) in counts.items()}
    print(
        f"\nmixed stream: speech frames routed right {share['before']:.1%} of {counts['before'][1]} before, "
        f"{share['after']:.1%} of {counts['after'][1]} after re-binding (speaker 0 on character 1: "
        f"{share['moved']:.1%} of {counts['moved'][1]}); capture -> character feed {mixed_ms:.0f} ms "
        f"(plain WHIP {plain_ms:.0f} ms): +{mixed_ms - plain_ms:.0f} ms; mix {result['mix_stats']}; "
        f"inputs {result['inputs']}"
    )
    assert share["before"] >= 0.9 and share["after"] >= 0.9, counts
    assert share["moved"] >= 0.8 and counts["moved"][1] >= 10, counts  # speaker 0 drives character 1
    assert counts["before"][1] >= 100 and counts["after"][1] >= 80, counts
    lookahead = mix.latency_ms
    assert lookahead <= mixed_ms - plain_ms <= lookahead + 400, (mixed_ms, plain_ms)
    assert result["mix_stats"]["error"] is None and result["mix_stats"]["queued_ms"] < 100


def test_whip_mix_needs_a_diarizer(loaded) -> None:  # noqa: F811
    async def go() -> None:
        async with served(loaded, limits=LIMITS) as (server, base, http):
            speaker = Speaker(np.zeros(WEBRTC_AUDIO_RATE, np.float32))
            try:
                await speaker.pc.setLocalDescription(await speaker.pc.createOffer())
                offer = speaker.pc.localDescription.sdp
                for path in ("/whip/mix", "/rooms/default/whip/mix"):
                    r = await http.post(base + path, data=offer, headers={**AUTH, **SDP})
                    assert r.status == 409, (path, r.status)
                    assert "no diarizer" in await r.text() and "--enroll" in await r.text()
                r = await http.post(f"{base}/whip/mix", data=offer, headers=SDP)
                assert r.status == 401  # the token is checked first, as everywhere
                assert server.sessions == {} and server.peer_connections_created == 0
                assert (await (await http.get(f"{base}/rooms/default", headers=AUTH)).json())[
                    "whip_mix"
                ] is None
            finally:
                await speaker.close()

    asyncio.run(go())


@pytest.mark.slow
def test_a_mix_over_the_rooms_input_limit_is_a_503_and_leaves_nothing_open(loaded, mix_world) -> None:  # noqa: F811
    _, mix = mix_world

    async def go() -> None:  # 2 enrolled speakers take 3 inputs: the whole mix and one per speaker
        async with served(loaded, limits=LIMITS, mix=mix, max_inputs=2) as (server, base, http):
            speaker = Speaker(np.zeros(WEBRTC_AUDIO_RATE, np.float32))
            try:
                assert await speaker.publish(http, base, "mix", TOKEN) == 503
                assert server.sessions == {} and server.room.binding() == {}
                r = await http.post(f"{base}/whip/mix", data=b"v=0\r\n", headers={**AUTH, **SDP})
                assert r.status == 400  # the offer is checked before capacity
                view = await (await http.get(f"{base}/rooms/default", headers=AUTH)).json()
                assert view["whip_mix"] == "/whip/mix"
            finally:
                await speaker.close()

    asyncio.run(go())


# -- MixInput with a scripted diarizer --------------------------------------------------------------------
class ScriptedDiarizer:
    """Frame f is decided 2 frames late: speaker 0 before frame `turn`, speaker 1 from it on."""

    config = SimpleNamespace(mode="enroll")
    latency_ms = 80

    def __init__(self, turn: int, fail: bool = False, gate: threading.Event | None = None) -> None:
        self.turn, self.fail, self.gate = turn, fail, gate
        self.received = self.next = 0

    def push(self, audio: np.ndarray) -> list:
        if self.fail:
            raise RuntimeError("scripted failure")
        if self.gate is not None:
            self.gate.wait(10.0)
        self.received += len(audio)
        return self._decide(self.received - 2 * SAMPLES_PER_FRAME)

    def flush(self) -> list:
        out = self._decide(self.received + SAMPLES_PER_FRAME - 1)
        return [(a, min(b, self.received), k) for a, b, k in out]

    def _decide(self, limit: int) -> list:
        out = []
        while (self.next + 1) * SAMPLES_PER_FRAME <= limit:
            f = self.next
            out.append((f * SAMPLES_PER_FRAME, (f + 1) * SAMPLES_PER_FRAME, 0 if f < self.turn else 1))
            self.next += 1
        return out


class RecordingInput:
    """Stands in for a room input: keeps every write."""

    def __init__(self, key: str) -> None:
        self.key, self.closed, self.writes = key, False, []

    def write(self, pcm: np.ndarray, rate: int) -> None:
        assert rate == AUDIO_SAMPLE_RATE and not self.closed
        self.writes.append(pcm.copy())

    def stats(self) -> dict:
        return {"buffered_ms": 0.0}

    def close(self) -> None:
        self.closed = True

    @property
    def audio(self) -> np.ndarray:
        return np.concatenate(self.writes) if self.writes else np.zeros(0, np.float32)


async def handed_over(inputs: list[RecordingInput], timeout_s: float = 10.0) -> None:
    """Wait for the worker's last hand-over, which closes its inputs on the loop (after its deliveries)."""
    for _ in range(int(timeout_s / 0.01)):
        if all(i.closed for i in inputs):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the mix worker had not closed its inputs on the loop {timeout_s} s after it ended")


@contextlib.asynccontextmanager
async def scripted_mix(diarizer: ScriptedDiarizer):
    inputs = [RecordingInput(k) for k in ("s", "s/speaker0", "s/speaker1")]
    mix = MixInput("s", diarizer, inputs[0], {0: inputs[1], 1: inputs[2]}, asyncio.get_running_loop())
    try:
        yield mix, inputs
    finally:
        mix.close()
        await asyncio.to_thread(mix._worker.join, 10.0)
        assert not mix._worker.is_alive(), "the mix worker did not end within 10 s of close()"
        await handed_over(inputs)


def test_mix_input_routes_every_accepted_sample() -> None:
    rng = np.random.default_rng(0)
    signal = (0.3 * rng.standard_normal(2 * WEBRTC_AUDIO_RATE)).astype(np.float32)  # 2 s at 48 kHz
    pcm = np.round(signal * 32767).astype(np.int16)
    turn = 20  # frame 20 = 0.8 s

    async def go():
        async with scripted_mix(ScriptedDiarizer(turn)) as (mix, inputs):
            for i in range(0, len(pcm), 960):  # 20 ms WebRTC packets
                mix.write(pcm[i : i + 960], WEBRTC_AUDIO_RATE)
        with pytest.raises(AudioInputError, match="closed"):
            mix.write(pcm[:960], WEBRTC_AUDIO_RATE)
        return mix, inputs

    mix, inputs = asyncio.run(go())
    whole, s0, s1 = (i.audio for i in inputs)
    assert all(i.closed for i in inputs)
    expected = resample_poly(pcm.astype(np.float64) / 32768.0, 1, UP)
    pad = AUDIO_SAMPLE_RATE * MIX_JITTER_MS // 1000
    assert len(whole) == len(s0) == len(s1) == len(expected) + pad  # nothing lost, all in step
    np.testing.assert_allclose(whole[: len(expected)], expected, atol=1e-5)
    assert not whole[len(expected) :].any()
    edge, ramp = turn * SAMPLES_PER_FRAME, AUDIO_SAMPLE_RATE * 5 // 1000
    np.testing.assert_array_equal(s0[ramp:edge], whole[ramp:edge])  # speaker 0's turn, after its fade-in
    assert not s1[:edge].any() and not s0[edge + ramp :].any()
    np.testing.assert_array_equal(s1[edge + ramp : len(expected)], whole[edge + ramp : len(expected)])
    ramp_gain = s0[edge : edge + ramp] / np.where(
        whole[edge : edge + ramp] == 0, 1, whole[edge : edge + ramp]
    )
    assert np.all(np.diff(ramp_gain) < 0)  # a fade, not a click
    assert mix.stats()["routed_s"] == pytest.approx(len(expected) / AUDIO_SAMPLE_RATE, abs=0.01)


def test_mix_input_refuses_audio_past_its_backlog_and_keeps_what_it_took() -> None:
    gate = threading.Event()
    second = np.zeros(WEBRTC_AUDIO_RATE, np.int16)

    async def go():
        async with scripted_mix(ScriptedDiarizer(0, gate=gate)) as (mix, inputs):
            accepted = 0
            with pytest.raises(AudioInputError, match="behind"):
                for _ in range(20):  # the worker is stuck in its first push: the queue fills
                    mix.write(second, WEBRTC_AUDIO_RATE)
                    accepted += 1
            assert 10 <= accepted <= 11
            gate.set()
        return accepted, inputs

    accepted, inputs = asyncio.run(go())
    pad = AUDIO_SAMPLE_RATE * MIX_JITTER_MS // 1000
    assert len(inputs[0].audio) == accepted * AUDIO_SAMPLE_RATE + pad


def test_a_failing_diarizer_ends_its_stream_only() -> None:
    async def go():
        async with scripted_mix(ScriptedDiarizer(0, fail=True)) as (mix, inputs):
            mix.write(np.zeros(960, np.int16), WEBRTC_AUDIO_RATE)
            await asyncio.to_thread(mix._worker.join, 10.0)
            await handed_over(inputs)  # its inputs leave the room
            with pytest.raises(AudioInputError, match="failed"):  # and its session ends on the next packet
                mix.write(np.zeros(960, np.int16), WEBRTC_AUDIO_RATE)
            assert "scripted failure" in mix.stats()["error"]

    asyncio.run(go())


# -- bya serve's arguments ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def enroll_files(tmp_path_factory):
    from realtime.bench.diarization import enrollment_audio

    folder = tmp_path_factory.mktemp("bad-enroll")
    short = enrollment_audio(SEED, 2, 0, set(), seconds=0.5)[: AUDIO_SAMPLE_RATE // 2]
    for name, audio in (("short", short), ("silent", np.zeros(3 * AUDIO_SAMPLE_RATE, np.float32))):
        wavfile.write(folder / f"{name}.wav", AUDIO_SAMPLE_RATE, np.round(audio * 32767).astype(np.int16))
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage" * 10)
    return folder


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--enroll", "0"], "expected K=FILE.wav"),
        (["--enroll", "x=voice.wav"], "expected K=FILE.wav"),
        (["--enroll", "4=voice.wav"], "character index 0-3"),
        (["--enroll", "0={d}/missing.wav"], "not found"),
        (["--enroll", "0={d}/corrupt.wav"], "cannot decode"),
        (["--enroll", "0={d}/short.wav"], "needs >= 2 s of speech"),
        (["--enroll", "1={d}/silent.wav"], "character 1 needs >= 2 s of speech"),
        (["--enroll", "0={d}/short.wav", "--enroll", "0={d}/silent.wav"], "enrolled twice"),
        (["--mix-speakers", "5"], "--mix-speakers must be 1-4"),
        (["--mix-speakers", "2", "--mix-lookahead-ms", "10"], "lookahead_ms must be in [160, 5000], got 10"),
        (["--mix-speakers", "3", "--enroll", "0={d}/short.wav"], "one speaker per voice"),
    ],
)
def test_bad_enroll_arguments_give_one_line(enroll_files, capsys, argv, message) -> None:
    argv = [a.format(d=enroll_files) for a in argv]
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bya: error: ") and "\n" not in err, err
    assert message in err, err
