"""The benchmark's view from inside the server: `bya serve`'s LiveServer in-process on 127.0.0.1, and a
tap on its room that records when every output frame left the engine.

`LocalServer` runs the real LiveServer (WHIP, WHEP, token, ICE on 127.0.0.1 only) on a free port.
`RoomTap` is one more subscriber of the room: the room hands every frame to all subscribers in the same
tick, so the tap's receive time is the engine's emit time, and its audio is the room's output mix on
the engine's media clock (48 kHz samples since the room started). `whep_first_pts` tells which engine
frame a WHEP session's RTP clock starts at, so received frames map back to engine frames.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import aiohttp
import numpy as np
from aiohttp import web

from realtime.engine.room import Room
from realtime.engine.subscription import Subscription
from realtime.media import FRAME_MS
from realtime.server.app import LiveServer, ServerLimits
from realtime.server.http_guard import GuardConfig
from realtime.server.webrtc import restrict_ice_addresses

TAP_FRAMES = 10_000  # the room's bound on one subscription; the tap drains it at once, so it never fills


class LocalServer:
    """`async with LocalServer(room) as s:` a LiveServer on 127.0.0.1:<free port>; s.base, s.token, s.http."""

    def __init__(self, room: Room, limits: ServerLimits | None = None) -> None:
        self.room = room
        self.token = secrets.token_urlsafe(18)
        guard = GuardConfig.build(self.token, False, "127.0.0.1")
        self.server = LiveServer(room, guard, limits or ServerLimits())
        self.base = ""
        self.http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> LocalServer:
        restrict_ice_addresses(["127.0.0.1"])  # media stays on loopback like `bya serve --host 127.0.0.1`
        self._runner = web.AppRunner(self.server.app, handle_signals=False)
        await self._runner.setup()  # starts the room: it warms up and measures its latency here
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self.http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc) -> None:
        if self.http is not None:
            await self.http.close()
        if self._runner is not None:
            await self._runner.cleanup()  # closes every peer, then stops the room


class RoomTap:
    """Records the emit time of every video frame and the output mix of a running room."""

    def __init__(self, room: Room, keep_images: bool = False) -> None:
        self.room = room
        self.subscription: Subscription = room.subscribe(max_frames=TAP_FRAMES)
        self.video_emitted: dict[int, float] = {}  # engine frame -> time.monotonic() it left the engine
        self.images: dict[int, np.ndarray] = {}  # engine frame -> its image, when asked to keep them
        self.keep_images = keep_images
        self.audio: list[tuple[int, np.ndarray]] = []  # (first sample at 48 kHz, int16 PCM)
        self._tasks = [
            asyncio.create_task(self._read_video(), name="tap-video"),
            asyncio.create_task(self._read_audio(), name="tap-audio"),
        ]

    async def _read_video(self) -> None:
        while (out := await self.subscription.next_video()) is not None:
            self.video_emitted[out.pts] = time.monotonic()
            if self.keep_images:
                self.images[out.pts] = out.image

    async def _read_audio(self) -> None:
        while (out := await self.subscription.next_audio()) is not None:
            self.audio.append((out.pts, out.pcm))

    def last_emitted(self) -> int:
        """The newest engine frame any subscriber has been handed (-1 before the first)."""
        queued = [v.pts for v in self.subscription.video]
        return max([*self.video_emitted, *queued], default=-1)

    def mix(self) -> tuple[int, np.ndarray]:
        """(first sample, (S,) float32 PCM in [-1, 1]) of the output mix recorded so far, gaps as silence."""
        if not self.audio:
            return 0, np.zeros(0, np.float32)
        first = self.audio[0][0]
        end = self.audio[-1][0] + len(self.audio[-1][1])
        out = np.zeros(end - first, np.float32)
        for pts, pcm in self.audio:
            out[pts - first : pts - first + len(pcm)] = pcm / 32768.0
        return first, out

    def clock_origin(self, latency_ms: float) -> float:
        """The room's media-time origin t0 on time.monotonic: frame f is due at t0 + latency + f x 40 ms.

        Estimated from the least-late frame: every emit happens at or after its due time.
        """
        if not self.video_emitted:
            raise RuntimeError("no frame has been emitted yet")
        return min(t - (latency_ms + f * FRAME_MS) / 1000 for f, t in self.video_emitted.items())

    async def close(self) -> None:
        self.subscription.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def whep_first_pts(server: LiveServer, session_id: str, tap: RoomTap) -> int:
    """Engine frame that a new WHEP session's video will start with (its RTP pts 0).

    Call it after the session's POST returned and before its connection is up: aiortc's sender reads the
    session's subscription only once DTLS is established, so the oldest frame queued there now is the
    first one it sends (or, with none queued yet, the next one the room emits).
    """
    subscription = server.sessions[session_id].subscription
    if subscription.dropped_video:
        raise RuntimeError("the WHEP subscription dropped frames before it connected: its start is unknown")
    if subscription.video:
        return subscription.video[0].pts
    return tap.last_emitted() + 1
