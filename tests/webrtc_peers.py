"""Test peers for `bya serve`: an aiortc WHIP speaker that streams a waveform in real time, a WHEP viewer.

Both use the loopback-only configuration from NOTES.md (no STUN, max-bundle, 127.0.0.1 candidates) and
can vanish without a goodbye (their sockets closed, no DTLS close) to test what the server does then.
"""

from __future__ import annotations

import asyncio

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from clients.python.audio_file import PacedAudioTrack
from realtime.server.webrtc import rtc_configuration


async def post_offer(http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection, token: str | None):
    """Send pc's offer (all candidates in it), apply the answer; return the HTTP response."""
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = await http.post(url, data=pc.localDescription.sdp, headers=headers)
    if response.status == 201:
        await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
    return response


class Speaker:
    """A WHIP client publishing one audio track."""

    def __init__(self, audio: np.ndarray) -> None:
        self.pc = RTCPeerConnection(rtc_configuration())
        self.track = PacedAudioTrack(audio)  # the Python client's microphone-paced track
        self.pc.addTransceiver(self.track, direction="sendonly")
        self.location: str | None = None

    async def publish(self, http, base: str, character: str | int, token: str | None) -> int:
        response = await post_offer(http, f"{base}/whip/{character}", self.pc, token)
        self.location = response.headers.get("Location")
        return response.status

    @property
    def session_id(self) -> str:
        return self.location.rsplit("/", 1)[1]

    def vanish(self) -> None:
        vanish(self.pc)

    async def close(self) -> None:
        await self.pc.close()


class Viewer:
    """A WHEP client receiving the room's video and audio."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(rtc_configuration())
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.pc.on("track", lambda track: self.tracks.__setitem__(track.kind, track))
        self.location: str | None = None

    async def play(self, http, base: str, token: str | None) -> int:
        response = await post_offer(http, f"{base}/whep", self.pc, token)
        self.location = response.headers.get("Location")
        return response.status

    async def frames(self, n: int, timeout_s: float = 20.0) -> list[av.VideoFrame]:
        """The next n video frames (fails if they do not come within timeout_s)."""

        async def take() -> list[av.VideoFrame]:
            return [await self.tracks["video"].recv() for _ in range(n)]

        return await asyncio.wait_for(take(), timeout_s)

    async def audio_frames(self, n: int, timeout_s: float = 20.0) -> list[av.AudioFrame]:
        async def take() -> list[av.AudioFrame]:
            return [await self.tracks["audio"].recv() for _ in range(n)]

        return await asyncio.wait_for(take(), timeout_s)

    def vanish(self) -> None:
        vanish(self.pc)

    async def close(self) -> None:
        await self.pc.close()


def vanish(pc: RTCPeerConnection) -> None:
    """Drop off the network like a crashed process: close the UDP sockets, send no DTLS close_notify."""
    for transceiver in pc.getTransceivers():
        connection = transceiver.sender.transport.transport._connection  # aioice Connection
        for protocol in connection._protocols:
            protocol.transport.close()
