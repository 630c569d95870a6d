"""A WHEP viewer: plays the room of `bya serve`, timestamps every frame on arrival, optionally records it.

Each received video frame is kept as (pts, receive time[, RGB image]) and each audio frame as
(pts, receive time[, mono int16 PCM]); the receive time is time.monotonic() when aiortc handed the
decoded frame over, which is what a player showing frames on arrival would show. A `Mp4Recorder`
writes the same frames to an MP4 with a JSON sidecar of the timestamps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from clients.python.recording import Mp4Recorder
from clients.python.signaling import RemoteSession, end_session, exchange, wait_connected
from realtime.media import RTP_VIDEO_CLOCK_RATE, VIDEO_FPS, WEBRTC_AUDIO_RATE
from realtime.server.rtp_buffers import use_low_latency_buffers
from realtime.server.webrtc import rtc_configuration

log = logging.getLogger(__name__)

TICKS_PER_FRAME = RTP_VIDEO_CLOCK_RATE // VIDEO_FPS  # 3600 ticks of 90 kHz per 25 fps frame


@dataclass(frozen=True)
class ReceivedVideo:
    pts: int  # RTP clock (90 kHz) relative to the first received frame
    received: float  # time.monotonic() on arrival
    image: np.ndarray | None  # (H, W, 3) uint8 RGB, when the viewer keeps images

    @property
    def index(self) -> int:
        """Frame number since the first received frame (gaps mean frames lost on the way)."""
        return round(self.pts / TICKS_PER_FRAME)


@dataclass(frozen=True)
class ReceivedAudio:
    pts: int  # samples at 48 kHz relative to the first received frame
    received: float  # time.monotonic() on arrival
    pcm: np.ndarray | None  # (n,) int16 mono at 48 kHz, when the viewer keeps audio


class WhepViewer:
    """Receives the room's video and mixed audio over WHEP."""

    def __init__(
        self, keep_images: bool = False, keep_audio: bool = False, recorder: Mp4Recorder | None = None
    ) -> None:
        self.keep_images, self.keep_audio, self.recorder = keep_images, keep_audio, recorder
        self.pc = RTCPeerConnection(rtc_configuration())
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        use_low_latency_buffers(self.pc)  # frames on arrival, as a browser shows them (no 40/80 ms hold)
        self.video: list[ReceivedVideo] = []
        self.audio: list[ReceivedAudio] = []
        self.session: RemoteSession | None = None
        self._readers: list[asyncio.Task] = []
        self._video_arrived = asyncio.Event()
        self._mono = av.AudioResampler(format="s16", layout="mono", rate=WEBRTC_AUDIO_RATE)
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        read = self._read_video if track.kind == "video" else self._read_audio
        self._readers.append(asyncio.create_task(read(track), name=f"whep-{track.kind}"))

    async def play(self, http: aiohttp.ClientSession, base_url: str, token: str | None) -> RemoteSession:
        """POST the offer to /whep and wait until the connection is up."""
        session = await self.offer(http, base_url, token)
        await self.connected()
        return session

    async def offer(self, http: aiohttp.ClientSession, base_url: str, token: str | None) -> RemoteSession:
        """The first half of play(): the SDP exchange only (the media starts once connected)."""
        self.session = await exchange(http, f"{base_url}/whep", self.pc, token)
        return self.session

    async def connected(self) -> None:
        """The second half of play(): wait until ICE and DTLS are up."""
        await wait_connected(self.pc)

    async def _read_video(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            received = time.monotonic()
            image = frame.to_ndarray(format="rgb24") if self.keep_images else None
            self.video.append(ReceivedVideo(int(frame.pts), received, image))
            if self.recorder is not None:
                self.recorder.add("video", frame, received)
            self._video_arrived.set()

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            received = time.monotonic()
            pcm = None
            if self.keep_audio:
                pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in self._mono.resample(frame)])
            self.audio.append(ReceivedAudio(int(frame.pts), received, pcm))
            if self.recorder is not None:
                self.recorder.add("audio", frame, received)

    async def wait_frames(self, n: int, timeout_s: float = 20.0) -> None:
        """Wait until at least n video frames have arrived; TimeoutError otherwise."""

        async def wait() -> None:
            while len(self.video) < n:
                self._video_arrived.clear()
                await self._video_arrived.wait()

        await asyncio.wait_for(wait(), timeout_s)

    async def close(self, http: aiohttp.ClientSession, token: str | None) -> None:
        """End the session, stop reading, and finish the recording (the MP4 plays to its last frame)."""
        await end_session(http, self.session, self.pc, token)
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.close)
