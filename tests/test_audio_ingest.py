"""The audio front end per stream: resampler continuity, jitter buffer, underruns, VAD, file and mic sources."""

from __future__ import annotations

import importlib.util
import wave

import numpy as np
import pytest
from scipy.signal import resample_poly

from realtime.audio import sources
from realtime.audio.ingest import StreamIngest
from realtime.audio.resampler import PolyphaseResampler
from realtime.audio.sources import FileSource, MicrophoneSource
from realtime.audio.vad import VoiceActivity
from realtime.errors import AudioBackendError, AudioDeviceError, AudioInputError, BYAError

RATES = (8000, 16000, 24000, 32000, 44100, 48000)


def sine(rate: int, seconds: float, hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * hz * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def in_blocks(x: np.ndarray, rng: np.random.Generator, most: int = 2000):
    i = 0
    while i < len(x):
        b = int(rng.integers(1, most))
        yield i, x[i : i + b]
        i += b


# -- resampler --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", RATES)
def test_resampling_in_random_blocks_equals_resampling_whole(rate):
    x = sine(rate, 0.5)
    r = PolyphaseResampler(rate, 16000)
    y = np.concatenate([r.push(b) for _, b in in_blocks(x, np.random.default_rng(rate))] + [r.flush()])
    whole = PolyphaseResampler(rate, 16000)
    np.testing.assert_allclose(y, np.concatenate([whole.push(x), whole.flush()]), atol=1e-6)
    ref = resample_poly(x, r.up, r.down)  # the same filter and alignment as scipy's one-shot resampler
    assert len(y) == len(ref) == -(-len(x) * 16000 // rate)
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_resampler_gives_no_click_at_block_edges():
    x = sine(48000, 0.4, hz=1000)
    r = PolyphaseResampler(48000, 16000)
    y = np.concatenate([r.push(x[i : i + 480]) for i in range(0, len(x), 480)])
    ref = sine(16000, 0.4, hz=1000)[: len(y)]
    body = slice(200, len(y) - 200)  # away from the start transient
    assert np.abs(y[body] - ref[body]).max() < 2e-3  # every 10 ms block edge lies inside `body`
    assert r.delay_s < 0.002


# -- jitter buffer --------------------------------------------------------------------------------------------
def pull_all(ing: StreamIngest, n: int, chunk: int = 320) -> np.ndarray:
    return np.concatenate([ing.pull(chunk) for _ in range(-(-n // chunk))])


def test_reordered_blocks_within_the_jitter_window_come_out_in_order():
    x = sine(48000, 1.0)
    blocks = [(i, x[i : i + 960]) for i in range(0, len(x), 960)]  # 20 ms packets
    order = list(range(len(blocks)))
    for i in range(0, len(order) - 1, 2):  # every pair swapped: each packet 20 ms late or early
        order[i], order[i + 1] = order[i + 1], order[i]
    ing, out = StreamIngest(48000, vad="none", jitter_ms=60), []
    for k in order:
        ing.push(blocks[k][1], pts=blocks[k][0])
        out.append(ing.pull(320))
    stats = ing.stats()
    assert stats["late"] == 0 and stats["gaps"] == 0 and stats["underruns"] == 0
    y = np.concatenate([*out, pull_all(ing, 3200)])  # drain (this last pull may run dry)
    start = int(np.flatnonzero(y)[0])  # pre-buffered silence first, then the stream, untouched
    ref = resample_poly(x, 1, 3)
    np.testing.assert_allclose(y[start : start + 15000], ref[:15000], atol=1e-5)


def test_a_lost_packet_is_a_counted_gap_filled_with_silence_and_a_very_late_one_is_dropped():
    x = sine(16000, 0.5, amp=0.3) + 0.2
    ing = StreamIngest(16000, vad="none", jitter_ms=40)
    for i in range(0, len(x), 320):
        if i != 3200:  # the packet at 200 ms never arrives in time
            ing.push(x[i : i + 320], pts=i)
    ing.push(x[3200:3520], pts=3200)  # ... and arrives 300 ms late
    y = pull_all(ing, len(x) + 1280)
    stats = ing.stats()
    assert stats["gaps"] == 1 and stats["late"] == 1
    start = int(np.flatnonzero(y)[0])
    np.testing.assert_array_equal(y[start + 3200 : start + 3520], 0.0)  # the hole kept its place
    np.testing.assert_allclose(y[start + 3520 : start + 8000], x[3520:8000])


def test_duplicates_are_dropped_and_no_pts_means_arrival_order():
    ing = StreamIngest(16000, vad="none", jitter_ms=0)
    a, b = np.full(320, 0.1, np.float32), np.full(320, 0.2, np.float32)
    ing.push(a, pts=0)
    ing.push(a, pts=0)
    ing.push(b)  # no pts: follows the newest audio
    np.testing.assert_allclose(ing.pull(640), np.concatenate([a, b]))
    assert ing.stats()["late"] == 1


def test_buffer_is_bounded_and_drops_the_oldest():
    ing = StreamIngest(16000, vad="none", jitter_ms=20, capacity_ms=500)
    x = np.arange(3 * 16000, dtype=np.float32) / 48000.0  # a ramp: position is readable from the value
    for i in range(0, len(x), 800):
        ing.push(x[i : i + 800], pts=i)
    stats = ing.stats()
    assert stats["buffered_ms"] <= 500
    assert stats["dropped"] == len(x) - 8000 == 40000
    y = ing.pull(8000)
    np.testing.assert_allclose(y, x[-8000:])  # what is left is the newest half second


def test_underrun_returns_exact_silence_filled_samples_and_counts():
    ing = StreamIngest(16000, vad="none", jitter_ms=40)
    y = ing.pull(640)
    assert y.shape == (640,) and y.dtype == np.float32 and not y.any()
    assert ing.stats()["underruns"] == 0  # still pre-buffering: not an underrun
    ing.push(np.full(1000, 0.5, np.float32))
    y = ing.pull(1600)  # 1000 samples there, 600 short
    assert y.shape == (1600,) and (y[:1000] == 0.5).all() and not y[1000:].any()
    assert ing.stats()["underruns"] == 1
    ing.push(np.full(100, 0.5, np.float32))
    assert not ing.pull(100).any()  # after an underrun it pre-buffers jitter_ms again
    assert ing.pull(0).shape == (0,)
    assert ing.stats()["pulled"] == 640 + 1600 + 100


def test_int16_input_is_scaled_to_float():
    ing = StreamIngest(16000, vad="none", jitter_ms=0)
    ing.push(np.array([16384, -32768, 0], np.int16))
    np.testing.assert_allclose(ing.pull(3), [0.5, -1.0, 0.0])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda ing: ing.push(np.zeros(320)), "dtype must be int16 or float32"),
        (lambda ing: ing.push(np.zeros((320, 2), np.float32)), "mono"),
        (lambda ing: ing.push(np.array([0.0, np.nan], np.float32)), "NaN"),
        (lambda ing: ing.push(np.zeros(48001, np.float32)), "longer than 1000 ms"),
        (lambda ing: ing.push([0.0] * 10), "numpy array"),
        (lambda ing: ing.push(np.zeros(10, np.float32), pts=-5), "pts"),
        (lambda ing: ing.pull(-1), "non-negative"),
        (lambda ing: StreamIngest(22050), "sample rate must be one of"),
        (lambda ing: StreamIngest(48000, jitter_ms=900), "jitter_ms"),
    ],
)
def test_bad_input_raises_one_line_errors(make, match):
    ing = StreamIngest(48000, vad="none")
    with pytest.raises(AudioInputError, match=match) as info:
        make(ing)
    assert isinstance(info.value, BYAError) and "\n" not in str(info.value)


def test_unknown_vad_backend_is_refused():
    with pytest.raises(AudioBackendError, match="unknown VAD backend 'bogus'"):
        StreamIngest(48000, vad="bogus")
    with pytest.raises(AudioBackendError, match="aggressiveness"):
        StreamIngest(48000, aggressiveness=7)


# -- voice activity -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def speech_track():
    """One character's track of the world: speech with pauses, and its per-40 ms truth."""
    from distill.world.clip import make_clip

    clip = make_clip(4, n_characters=1, size=64, seconds=8)
    return clip.dialogue.audio[0], clip.dialogue.active[0]


VADS = ["webrtc", "none"] + (["silero"] if importlib.util.find_spec("silero_vad") else [])


@pytest.mark.parametrize("vad", VADS)
def test_vad_flags_follow_the_worlds_speech(speech_track, vad):
    audio, active = speech_track
    ing = StreamIngest(16000, vad=vad, jitter_ms=0)
    flags = []
    for i in range(0, len(audio), 320):
        ing.push(audio[i : i + 320])
        ing.pull(320)
        flags.append(ing.vad_flags)
    flags = np.concatenate(flags)[: 2 * len(active)].reshape(-1, 2).any(1)  # 20 ms -> 40 ms frames
    active = active[: len(flags)]
    assert flags[active].mean() > 0.9  # speech is heard
    assert flags[~active].mean() < 0.35  # pauses mostly are not (active excludes pauses inside lines)
    assert (~active).sum() > 20  # the clip does have silence to test


def test_speaking_holds_over_short_pauses_and_drops_in_silence(speech_track):
    audio, active = speech_track
    vad = VoiceActivity("webrtc", hangover_ms=200)
    f = int(np.flatnonzero(active)[10])  # inside speech
    vad.process(audio[: (f + 1) * 640])
    assert vad.speaking
    vad.process(np.zeros(160 * 16, np.float32))  # 160 ms of silence: within the hangover
    assert vad.speaking
    vad.process(np.zeros(16000, np.float32))
    assert not vad.speaking


def test_silero_missing_gives_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "silero_vad" else real(name, *a)
    )
    with pytest.raises(AudioBackendError, match="pip install silero-vad"):
        StreamIngest(16000, vad="silero")


# -- sources --------------------------------------------------------------------------------------------------
def write_wav(path, x: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes())


def test_file_source_blocks_feed_an_ingest(tmp_path):
    x = sine(48000, 0.5, hz=300)
    write_wav(tmp_path / "a.wav", x, 48000)
    src = FileSource(tmp_path / "a.wav")
    assert src.sample_rate == 48000
    ing, pts_seen = StreamIngest(src.sample_rate, vad="none", jitter_ms=0), []
    for block, pts in src.blocks():
        assert len(block) <= 960 and block.dtype == np.float32
        pts_seen.append(pts)
        ing.push(block, pts=pts)
    assert pts_seen == list(range(0, len(x), 960))
    y = ing.pull(8000)
    ref = resample_poly(np.round(x * 32767) / 32767, 1, 3)[:8000]
    assert np.abs(y[:7900] - ref[:7900]).max() < 1e-3


class FakeTime:
    """The `time` a FileSource paces itself by: a clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_file_source_realtime_paces_and_odd_rates_become_48k(tmp_path, monkeypatch):
    write_wav(tmp_path / "b.wav", sine(22050, 0.3), 22050)
    clock = FakeTime()
    monkeypatch.setattr(sources, "time", clock)
    src = FileSource(tmp_path / "b.wav", realtime=True)
    assert src.sample_rate == 48000
    start, n, late = clock.now, 0, []
    for block, pts in src.blocks():
        # each block leaves when the clock reaches its position in the file: never before, never after
        late.append(clock.now - start - pts / 48000)
        n += len(block)
    assert np.abs(late).max() < 1e-9 and clock.now - start == pytest.approx(0.28)  # the last block's time
    assert abs(n - 0.3 * 48000) < 960


def test_file_source_errors(tmp_path):
    with pytest.raises(AudioInputError, match="cannot read audio"):
        FileSource(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioInputError, match="cannot read audio"):
        FileSource(tmp_path / "junk.wav")


def _has_input_device() -> bool:
    try:
        import sounddevice as sd

        sd.check_input_settings()
        return True
    except Exception:
        return False


@pytest.mark.skipif(_has_input_device(), reason="this machine has an audio input device")
def test_microphone_without_a_device_is_a_clear_error():
    with pytest.raises(AudioDeviceError, match=r"no (usable )?audio input") as info:
        MicrophoneSource()
    assert "\n" not in str(info.value)
