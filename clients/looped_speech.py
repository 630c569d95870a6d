"""Dialogue that never runs out, for the load and soak benchmarks: WAV files played on a loop over WHIP.

`dialogue_wavs` writes a 2-character turn-taking dialogue (clients.speech_bursts: espeak phrases with
silent gaps, so every onset is findable again at the viewer) as one WAV per character; the speakers read
them back with the Python client's `load_audio`, as a user's files would be. `LoopingSpeaker` is the
client's WhipSpeaker with a track that starts over at the end instead of falling silent, so a 30-minute
run holds one loop of audio in memory, not 30 minutes of it.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from pathlib import Path

import av
import numpy as np
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from scipy.io import wavfile

from clients.python.audio_file import FRAME_MS, FRAME_SAMPLES, PacedAudioTrack, load_audio
from clients.python.speaker import WhipSpeaker
from clients.speech_bursts import Burst, speech_bursts
from realtime.media import WEBRTC_AUDIO_RATE
from realtime.server.webrtc import rtc_configuration

DIALOGUE_CHARACTERS = 2
DIALOGUE_ONSETS = 8  # phrases per loop, characters in turn: a loop of ~20 s


def dialogue_wavs(folder: Path, onsets: int = DIALOGUE_ONSETS) -> tuple[list[Path], list[Burst], int]:
    """Write one 48 kHz 16-bit WAV per character; return (paths, the bursts in one loop, loop samples)."""
    tracks, bursts = speech_bursts(DIALOGUE_CHARACTERS, onsets)
    paths = []
    for k, track in enumerate(tracks):
        path = folder / f"dialogue-{k}.wav"
        wavfile.write(path, WEBRTC_AUDIO_RATE, np.round(np.clip(track, -1, 1) * 32767).astype(np.int16))
        paths.append(path)
    return paths, bursts, tracks.shape[1]


class LoopedAudioTrack(PacedAudioTrack):
    """PacedAudioTrack that starts over at the end: sample s of the stream is pcm[s % len(pcm)]."""

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.start_time is None:
            self.start_time = time.monotonic()
        wait = self.capture_time(self.sent + FRAME_SAMPLES) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -FRAME_MS / 1000:
            self.late_frames += 1
        chunk = np.take(self.pcm, np.arange(self.sent, self.sent + FRAME_SAMPLES), mode="wrap")
        frame = av.AudioFrame.from_ndarray(chunk[None], format="s16", layout="mono")
        frame.sample_rate, frame.pts = WEBRTC_AUDIO_RATE, self.sent
        frame.time_base = fractions.Fraction(1, WEBRTC_AUDIO_RATE)
        self.sent += FRAME_SAMPLES
        return frame


class LoopingSpeaker(WhipSpeaker):
    """A WHIP speaker (clients.python) whose file plays on a loop for as long as the session lasts."""

    def __init__(self, path: Path, character: str | int) -> None:  # not super(): it builds a one-shot track
        self.character = str(character)
        self.track = LoopedAudioTrack(load_audio(path))
        self.pc = RTCPeerConnection(rtc_configuration())
        self.pc.addTransceiver(self.track, direction="sendonly")
        self.session = None


def rss_mb() -> float:
    """This process's resident memory (VmRSS) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")
