"""Listening conditions for training voices: what a live voice goes through before the engine hears it.

The world's voices are clean espeak-ng. A live voice arrives through a microphone in a room, often with
music or other people behind it, and always through Opus (every WebRTC voice is Opus). `degrade` draws
one condition per dialogue from a seed: speed (tempo and pitch together, by resampling), level, room
reverberation, noise (white, pink or hum), a music bed, and an Opus round trip at a call bitrate. Every
character's track gets its own noise (each speaker has their own microphone); the room and the codec are
shared. Mouth truth is unchanged except for speed, which `stretch_frames` applies to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.media import AUDIO_SAMPLE_RATE

OPUS_BITRATES = (12_000, 16_000, 24_000, 32_000)  # bit/s: narrow to wideband call settings


@dataclass(frozen=True)
class Condition:
    """One drawn condition (what `degrade` applied), for logs and model cards."""

    speed: float  # > 1 faster (and higher)
    gain_db: float
    reverb_s: float  # RT60-like decay time, 0 = dry
    noise: str  # none | white | pink | hum
    snr_db: float
    music_db: float  # music bed level relative to speech, -inf = none
    opus_bps: int  # 0 = no codec


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    x = np.fft.irfft(spec, n)
    return (x / (np.std(x) + 1e-9)).astype(np.float32)


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "white":
        return rng.standard_normal(n).astype(np.float32)
    if kind == "pink":
        return _pink(n, rng)
    t = np.arange(n) / AUDIO_SAMPLE_RATE
    base = rng.choice([50.0, 60.0])
    hum = sum(np.sin(2 * np.pi * base * h * t + rng.uniform(0, 6.3)) / h for h in (1, 2, 3, 5))
    return (hum / np.std(hum)).astype(np.float32)


def music_bed(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) a unit-RMS synthetic music bed: chords of plucked partials with a beat, changing every bar."""
    sr = AUDIO_SAMPLE_RATE
    out = np.zeros(n, np.float64)
    bpm = rng.uniform(70, 140)
    beat = int(sr * 60 / bpm)
    root = rng.uniform(110, 220)
    for start in range(0, n, beat):
        if rng.random() < 0.15:
            continue
        chord = root * 2 ** (rng.choice([0, 3, 4, 5, 7, 9, 12], 3) / 12)
        m = min(n - start, 2 * beat)
        t = np.arange(m) / sr
        env = np.exp(-t * rng.uniform(3, 8))
        out[start : start + m] += env * sum(np.sin(2 * np.pi * f * t) for f in chord)
        if rng.random() < 0.5:  # a drum: a short noise burst
            d = min(m, sr // 20)
            out[start : start + d] += rng.standard_normal(d) * np.exp(-np.arange(d) / (d / 4)) * 0.8
    return (out / (np.std(out) + 1e-9)).astype(np.float32)


def room_impulse(reverb_s: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: direct sound, early reflections, an exponential tail."""
    sr = AUDIO_SAMPLE_RATE
    n = max(1, int(reverb_s * sr))
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / reverb_s)  # -60 dB at reverb_s
    ir[0] = 1.0 / max(0.05, 0.5 * np.abs(ir).sum() / np.sqrt(n))
    for _ in range(4):
        k = int(rng.uniform(0.003, 0.03) * sr)
        if k < n:
            ir[k] += rng.uniform(0.2, 0.6)
    return (ir / np.sqrt((ir**2).sum())).astype(np.float32)


def resample(x: np.ndarray, speed: float) -> np.ndarray:
    """(..., S) -> (..., round(S / speed)): played `speed` times faster (tempo and pitch together)."""
    s = x.shape[-1]
    n = max(1, round(s / speed))
    pos = np.arange(n) * speed
    return (
        np.stack([np.interp(pos, np.arange(s), row) for row in x.reshape(-1, s)])
        .reshape(*x.shape[:-1], n)
        .astype(np.float32)
    )


def stretch_frames(x: np.ndarray, speed: float, frames: int) -> np.ndarray:
    """(..., T) per-frame truth of audio played `speed` times faster -> (..., frames)."""
    t = x.shape[-1]
    pos = np.clip(np.arange(frames) * speed, 0, t - 1)
    flat = x.reshape(-1, t).astype(np.float32)
    return np.stack([np.interp(pos, np.arange(t), row) for row in flat]).reshape(*x.shape[:-1], frames)


def opus_roundtrip(x: np.ndarray, bitrate: int) -> np.ndarray:
    """(S,) 16 kHz audio through an Opus encoder and decoder (PyAV's libopus at 48 kHz) -> (S,)."""
    import av

    src = np.interp(np.arange(len(x) * 3) / 3, np.arange(len(x)), x).astype(np.float32)  # 48 kHz
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = 48_000, "mono", "s16", bitrate
    dec = av.CodecContext.create("libopus", "r")
    dec.sample_rate, dec.layout = 48_000, "mono"
    pcm = (np.clip(src, -1, 1) * 32767).astype(np.int16)
    out = []
    step = 960  # 20 ms
    try:
        for i in range(0, len(pcm) - step + 1, step):
            frame = av.AudioFrame.from_ndarray(pcm[None, i : i + step], format="s16", layout="mono")
            frame.sample_rate, frame.pts = 48_000, i
            for pkt in enc.encode(frame):
                out.extend(f.to_ndarray().reshape(-1) for f in dec.decode(pkt))
        for pkt in enc.encode(None):
            out.extend(f.to_ndarray().reshape(-1) for f in dec.decode(pkt))
    finally:
        enc.close() if hasattr(enc, "close") else None
    y = np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)
    if y.dtype.kind == "i" or np.abs(y).max(initial=0) > 2:
        y = y / 32768.0
    delay = enc.delay if getattr(enc, "delay", 0) else 312  # libopus pre-skip at 48 kHz
    y = y[delay:][: len(src)]
    y = np.pad(y, (0, len(src) - len(y)))
    return y[::3][: len(x)].astype(np.float32)


def draw_condition(rng: np.random.Generator, clean_share: float = 0.2) -> Condition:
    if rng.random() < clean_share:
        return Condition(1.0, 0.0, 0.0, "none", np.inf, -np.inf, 0)
    return Condition(
        speed=float(rng.uniform(0.88, 1.14)),
        gain_db=float(rng.uniform(-18, 3)),
        reverb_s=float(rng.choice([0.0, rng.uniform(0.15, 0.8)])),
        noise=str(rng.choice(["none", "white", "pink", "hum"], p=[0.25, 0.25, 0.35, 0.15])),
        snr_db=float(rng.uniform(5, 35)),
        music_db=float(rng.choice([-np.inf, rng.uniform(-20, -4)], p=[0.6, 0.4])),
        opus_bps=int(rng.choice([0, *OPUS_BITRATES], p=[0.3, 0.15, 0.2, 0.2, 0.15])),
    )


def degrade(audio: np.ndarray, condition: Condition, rng: np.random.Generator) -> np.ndarray:
    """(N, S) clean per-character tracks -> (N, S') as heard live (S' = S / speed)."""
    x = resample(audio, condition.speed) if condition.speed != 1.0 else audio.astype(np.float32).copy()
    speech_rms = float(np.sqrt(np.mean(x[np.abs(x) > 1e-4] ** 2))) if np.any(np.abs(x) > 1e-4) else 0.1
    if condition.reverb_s > 0:
        ir = room_impulse(condition.reverb_s, rng)
        x = np.stack([np.convolve(row, ir)[: x.shape[1]] for row in x]).astype(np.float32)
    n = x.shape[1]
    if condition.music_db > -np.inf:  # the same music in every microphone of the room
        x = x + music_bed(n, rng)[None] * speech_rms * 10 ** (condition.music_db / 20)
    if condition.noise != "none":
        level = speech_rms * 10 ** (-condition.snr_db / 20)
        x = x + np.stack([_noise(condition.noise, n, rng) for _ in range(x.shape[0])]) * level
    x = x * 10 ** (condition.gain_db / 20)
    if condition.opus_bps:
        x = np.stack([opus_roundtrip(row, condition.opus_bps) for row in x])
    return np.clip(x, -1.0, 1.0).astype(np.float32)
