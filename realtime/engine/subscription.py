"""What a room's viewers receive: output video and audio frames, through a bounded Subscription queue.

A Subscription belongs to one viewer (a WHEP peer, a recorder, a virtual camera). The room's clock puts
every frame into every subscription as it leaves; a viewer that falls behind loses its oldest frames,
counted, so one slow viewer never holds up the room or the others.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from realtime.media import FRAME_MS, WEBRTC_AUDIO_RATE

AUDIO_FRAME_MS = 20  # output audio frames: WebRTC's Opus packet time
AUDIO_FRAME_SAMPLES = WEBRTC_AUDIO_RATE * AUDIO_FRAME_MS // 1000  # 960 at 48 kHz
AUDIO_FRAMES_PER_VIDEO_FRAME = FRAME_MS // AUDIO_FRAME_MS  # 2: every other audio tick carries a frame


@dataclass(frozen=True)
class VideoFrameOut:
    """One output video frame (shared by every subscriber: do not modify)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, the scene's canvas
    pts: int  # frame index since the room started, 25 fps


@dataclass(frozen=True)
class AudioFrameOut:
    """20 ms of the output mix, delayed to meet its frames."""

    pcm: np.ndarray  # (960,) int16 mono at 48 kHz
    pts: int  # samples at 48 kHz since the room started


class Subscription:
    """A viewer of a room. Its queues are bounded: when the viewer is slow the oldest frames are dropped
    (counted in dropped_video / dropped_audio). next_video / next_audio return None once it is closed or
    the room has stopped and the queue is drained."""

    def __init__(self, max_frames: int, on_close: Callable[[Subscription], None]) -> None:
        self._on_close = on_close
        self.video: deque[VideoFrameOut] = deque()
        self.audio: deque[AudioFrameOut] = deque()
        self.max_video, self.max_audio = max_frames, max_frames * AUDIO_FRAMES_PER_VIDEO_FRAME
        self.dropped_video = self.dropped_audio = 0
        self.closed = self.ended = False
        self._video_ready, self._audio_ready = asyncio.Event(), asyncio.Event()

    def _put(self, item: VideoFrameOut | AudioFrameOut) -> None:
        video = isinstance(item, VideoFrameOut)
        q, cap = (self.video, self.max_video) if video else (self.audio, self.max_audio)
        if len(q) >= cap:
            q.popleft()
            if video:
                self.dropped_video += 1
            else:
                self.dropped_audio += 1
        q.append(item)
        (self._video_ready if video else self._audio_ready).set()

    async def _next(self, q: deque, ready: asyncio.Event):
        while not q:
            if self.closed or self.ended:
                return None
            ready.clear()
            await ready.wait()
        return None if self.closed else q.popleft()

    async def next_video(self) -> VideoFrameOut | None:
        return await self._next(self.video, self._video_ready)

    async def next_audio(self) -> AudioFrameOut | None:
        return await self._next(self.audio, self._audio_ready)

    def _end(self) -> None:
        self.ended = True
        self._video_ready.set()
        self._audio_ready.set()

    def close(self) -> None:
        """Stop receiving; pending next_* calls return None."""
        self.closed = True
        self.video.clear()
        self.audio.clear()
        self._on_close(self)
        self._end()
