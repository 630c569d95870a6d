"""A WHIP speaker: publishes one audio track (a file played in real time) as one character of `bya serve`."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import numpy as np
from aiortc import RTCPeerConnection

from clients.python.audio_file import PacedAudioTrack
from clients.python.signaling import RemoteSession, end_session, exchange, wait_connected
from realtime.server.webrtc import rtc_configuration


class WhipSpeaker:
    """Speaks `samples` (48 kHz float32) as character `character` (a name or an index) over WHIP."""

    def __init__(self, samples: np.ndarray, character: str | int, then: str = "silence") -> None:
        self.character = str(character)
        self.track = PacedAudioTrack(samples, then)
        self.pc = RTCPeerConnection(rtc_configuration())
        self.pc.addTransceiver(self.track, direction="sendonly")
        self.session: RemoteSession | None = None

    async def publish(self, http: aiohttp.ClientSession, base_url: str, token: str | None) -> RemoteSession:
        """POST the offer to /whip/<character> and wait until the media flows."""
        self.session = await exchange(
            http, f"{base_url}/whip/{quote(self.character, safe='')}", self.pc, token
        )
        await wait_connected(self.pc)
        return self.session

    async def close(self, http: aiohttp.ClientSession, token: str | None) -> None:
        """End the session on the server (DELETE) and close the peer connection."""
        self.track.stop()
        await end_session(http, self.session, self.pc, token)
