"""The Python client of `bya serve` (clients/python): audio files in, paced like a microphone; WHIP
speakers and a recording WHEP viewer against the live server on 127.0.0.1; the command line.

The server side is the real LiveServer around a Room with the tiny generator (tests/test_server.py).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from test_server import TOKEN, loaded, loopback_ice, served, wait_for  # noqa: F401 (fixtures)

from clients.python import (
    AudioFileError,
    Mp4Recorder,
    PacedAudioTrack,
    WhepViewer,
    WhipSpeaker,
    audio_file,
    load_audio,
)
from clients.python.__main__ import main as client_main
from realtime.media import RTP_VIDEO_CLOCK_RATE
from realtime.outputs.video_file import read_video

ROOT = Path(__file__).resolve().parent.parent


def _write_wav(path: Path, rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = 0.4 * np.sin(2 * np.pi * 440 * t)
    pcm = np.repeat((x * 32767).astype("<i2")[:, None], channels, 1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return x


@pytest.mark.parametrize(("rate", "channels"), [(48_000, 1), (44_100, 2), (16_000, 1), (22_050, 1)])
def test_load_audio_gives_48_khz_mono(tmp_path, rate: int, channels: int) -> None:
    path = tmp_path / "tone.wav"
    _write_wav(path, rate, 1.0, channels)
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - 48_000) <= 64  # one second, whatever the file's rate
    spectrum = np.abs(np.fft.rfft(x[2000:-2000]))
    assert abs(np.argmax(spectrum) * 48_000 / len(x[2000:-2000]) - 440) < 3  # the tone survives resampling
    assert 0.35 < np.abs(x).max() < 0.45


def test_load_audio_names_what_is_wrong(tmp_path) -> None:
    with pytest.raises(AudioFileError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio" * 10)
    with pytest.raises(AudioFileError, match=r"cannot decode|no audio"):
        load_audio(junk)


class FakeClock:
    """time.monotonic and asyncio.sleep for clients.python.audio_file: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(audio_file, "time", SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(audio_file, "asyncio", SimpleNamespace(sleep=fake.sleep))
    return fake


def test_paced_track_plays_in_real_time_like_a_microphone(clock: FakeClock) -> None:
    samples = np.linspace(-0.5, 0.5, 48_000 // 5, dtype=np.float32)  # 200 ms

    async def go():
        track = PacedAudioTrack(samples, then="end")
        frames, times = [], []
        while True:
            try:
                frames.append(await track.recv())
            except MediaStreamError:
                break
            times.append(clock.now)
        return track, frames, times

    track, frames, times = asyncio.run(go())
    assert len(frames) == 10 and all(f.samples == 960 and f.sample_rate == 48_000 for f in frames)
    assert [f.pts for f in frames] == [960 * i for i in range(10)]
    assert track.start_time == 1000.0
    for i, t in enumerate(times):  # frame i leaves exactly when its last sample was "captured"
        assert t == pytest.approx(track.capture_time(960 * (i + 1)), abs=1e-9)
    assert clock.sleeps == pytest.approx([0.02] * 10)  # it waited for each frame, never more
    assert track.late_frames == 0
    pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    assert np.abs(pcm / 32767 - samples).max() < 1e-3
    assert track.done and track.readyState == "ended"


def test_paced_track_catches_up_after_a_stall_and_counts_late_frames(clock: FakeClock) -> None:
    async def go():
        track = PacedAudioTrack(np.zeros(960 * 10, np.float32))
        await track.recv()  # frame 0: due at start + 20 ms
        clock.now += 0.09  # the event loop was busy for 90 ms: frames 1-4 are due, 1-3 over 20 ms late
        clock.sleeps.clear()
        frames = [await track.recv() for _ in range(5)]
        return track, frames

    track, frames = asyncio.run(go())
    assert clock.sleeps == pytest.approx([0.01])  # frames 1-4 leave at once, frame 5 waits for its time
    assert [f.pts for f in frames] == [960 * i for i in range(1, 6)]  # nothing skipped: media time is kept
    assert track.late_frames == 3  # frames 1, 2 and 3 were more than one frame (20 ms) late


def test_paced_track_refuses_bad_input() -> None:
    with pytest.raises(AudioFileError, match="floating-point"):
        PacedAudioTrack(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="silence"):
        PacedAudioTrack(np.zeros(10, np.float32), then="loop")


def test_speakers_and_a_recording_viewer_against_the_live_server(loaded, tmp_path) -> None:  # noqa: F811
    speech = [
        0.3 * np.sin(np.arange(48_000 * 3) * 2 * np.pi * f / 48_000).astype(np.float32) for f in (220, 330)
    ]

    async def go() -> None:
        async with served(loaded) as (server, base, http):
            speakers = [WhipSpeaker(speech[0], 0), WhipSpeaker(speech[1], server.room.characters[1])]
            viewer = WhepViewer(keep_images=True, recorder=Mp4Recorder(tmp_path / "room.mp4"))
            try:
                await viewer.play(http, base, TOKEN)
                for s in speakers:
                    await s.publish(http, base, TOKEN)
                ids = [s.session.id for s in speakers]
                assert server.room.binding() == {ids[0]: 0, ids[1]: 1}
                await wait_for(lambda: all(server.sessions[i].audio_s > 1.0 for i in ids), 15)
                await viewer.wait_frames(50)
            finally:
                for s in speakers:
                    await s.close(http, TOKEN)
                await viewer.close(http, TOKEN)
            await wait_for(lambda: not server.sessions, 5)  # every session ended with DELETE
            assert len(viewer.video) >= 50 and len(viewer.audio) >= 50
            assert all(v.image.shape == server.room.scene.background.shape for v in viewer.video)

    asyncio.run(go())
    frames, fps = read_video(tmp_path / "room.mp4")
    side = json.loads((tmp_path / "room.json").read_text())
    assert abs(fps - 25) < 1.5 and len(frames) >= 45 and side["frames_written"] == len(frames)
    assert len(side["video"]) >= len(frames) and {"pts", "t", "unix", "recorded"} <= set(side["video"][0])
    times = [v["t"] for v in side["video"]]
    assert times == sorted(times)  # recorded in the order received
    ticks = np.diff([v["pts"] for v in side["video"]]) % 2**32  # RTP timestamps start anywhere and wrap
    assert np.median(ticks) == RTP_VIDEO_CLOCK_RATE // 25  # 25 fps on the media clock (40 ms at 90 kHz)
    import av

    with av.open(str(tmp_path / "room.mp4")) as c:
        assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "nothing to do"),
        (["--speak", "0"], "CHARACTER=FILE"),
        (["--speak", "0={tmp}/missing.wav"], "not found"),
        (["--url", "ftp://x", "--record", "{tmp}/a.mp4", "--seconds", "1"], "http://HOST:PORT"),
        (["--url", "http://127.0.0.1:8080/whip", "--record", "{tmp}/a.mp4", "--seconds", "1"], "no path"),
        (["--record", "{tmp}/a.avi", "--seconds", "1"], ".mp4 file"),
        (["--record", "{tmp}/a.mp4"], "needs --seconds"),
        (["--record", "{tmp}/a.mp4", "--seconds", "0"], "--seconds must be"),
    ],
)
def test_command_line_refuses_bad_arguments(tmp_path, capsys, argv, message) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert client_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_command_line_speaks_and_records_against_a_server(loaded, tmp_path) -> None:  # noqa: F811
    wav = tmp_path / "a.wav"
    _write_wav(wav, 44_100, 2.0)

    async def go() -> tuple[int, str, str, float]:
        async with served(loaded) as (server, base, _http):
            heard = []
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "clients.python", "--url", base, "--token", TOKEN,
                "--speak", f"1={wav}", "--record", str(tmp_path / "out.mp4"), "--tail", "0.5",
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip

            async def watch() -> None:
                while proc.returncode is None:
                    heard.extend(s.audio_s for s in server.sessions.values() if s.kind == "whip")
                    await asyncio.sleep(0.1)

            watcher = asyncio.create_task(watch())
            try:
                out, err = await asyncio.wait_for(proc.communicate(), 60)
            finally:
                if proc.returncode is None:  # timed out (or interrupted): never leave the client running
                    proc.kill()
                    await proc.wait()
                await watcher
            return proc.returncode, out.decode(), err.decode(), max(heard, default=0.0)

    rc, out, err, heard = asyncio.run(go())
    assert rc == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["speakers"][0]["character"] == "1" and summary["speakers"][0]["seconds_sent"] >= 2.0
    assert summary["viewer"]["frames"] > 25 and heard > 1.0  # the server received the file's audio
    frames, _ = read_video(tmp_path / "out.mp4")
    assert len(frames) > 25 and (tmp_path / "out.json").is_file()
