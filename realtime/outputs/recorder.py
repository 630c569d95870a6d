"""Record or stream a live room through PyAV: an MP4 file, or MPEG-TS over UDP for OBS's Media Source.

A `ContainerSink` reads one engine Subscription and muxes H.264 video and AAC audio on the room's own
timestamps, so the output keeps its A/V sync even when a frame is dropped. Encoding runs in a writer
thread fed by a bounded queue (when it is full the readers wait, and the Subscription's own bounded
queue decides what is dropped). `stop()` flushes both encoders and closes the container, so a file
plays to its last frame; MP4 is written fragmented and flushed fragment by fragment, so even a killed
process leaves a file that plays to within FRAGMENT_US of where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import urllib.parse
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from realtime.errors import OutputPathError
from realtime.media import VIDEO_FPS, WEBRTC_AUDIO_RATE

log = logging.getLogger(__name__)

AAC_FRAME_SAMPLES = 1024  # the AAC encoder takes whole frames of this many samples
SAMPLES_PER_VIDEO_FRAME = WEBRTC_AUDIO_RATE // VIDEO_FPS  # 1920 samples of 48 kHz per 40 ms frame
GOP_FRAMES = VIDEO_FPS  # a keyframe every second: a player can seek to any second
# an MP4 fragment (moof + mdat) is cut at least this often, keyframe or not, and written out at once
# (flush_packets): what a killed process loses. Cut at keyframes only and left in FFmpeg's 32 KB write
# buffer, a 512 px recording lost ~1.7 s and a 128 px one everything (its first seconds fit the buffer).
FRAGMENT_US = 200_000
QUEUE_ITEMS = 4 * VIDEO_FPS * 3  # ~4 s of video + audio frames between the readers and the encoder
MAX_AUDIO_GAP_SAMPLES = WEBRTC_AUDIO_RATE  # a gap up to 1 s is filled with silence to keep A/V sync
TS_PACKET_BYTES = 1316  # 7 TS packets of 188 bytes: one UDP datagram under a 1500-byte MTU


class OutputSinkError(OutputPathError):
    """An output (file, stream URL, device) cannot be opened or written."""


def parse_udp_url(url: str) -> str:
    """Check an MPEG-TS target 'udp://HOST:PORT' and return it with the datagram size set."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "udp" or not parts.hostname or parts.path not in ("", "/"):
        raise OutputSinkError(f"MPEG-TS target must be udp://HOST:PORT, got {url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise OutputSinkError(f"MPEG-TS target {url!r} has an invalid port") from exc
    if port is None or not 1 <= port <= 65535:
        raise OutputSinkError(f"MPEG-TS target {url!r} needs a port in 1-65535")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"udp://{host}:{port}?pkt_size={TS_PACKET_BYTES}"


class ContainerSink:
    """Muxes a room's frames into an MP4 file (`kind='mp4'`) or an MPEG-TS UDP stream (`kind='mpegts'`)."""

    def __init__(self, target: str | Path, kind: str = "mp4") -> None:
        if kind not in ("mp4", "mpegts"):
            raise ValueError(f"kind must be 'mp4' or 'mpegts', got {kind!r}")
        self.kind = kind
        if kind == "mp4":
            path = Path(target)
            if path.is_dir() or not path.parent.is_dir():
                raise OutputSinkError(f"cannot record to {path}: its folder does not exist or it is a folder")
            self.target = str(path)
        else:
            self.target = parse_udp_url(str(target))
        self.frames_written = 0
        self.audio_samples_written = 0
        self._queue: queue.Queue = queue.Queue(QUEUE_ITEMS)
        self._thread: threading.Thread | None = None
        self._tasks: list[asyncio.Task] = []
        self._error: BaseException | None = None
        self._subscription = None

    # -- lifecycle (event loop side) ------------------------------------------------------------------
    def start(self, room) -> None:
        """Subscribe to the room and start muxing; the container opens with the first frame."""
        self._subscription = room.subscribe(max_frames=2 * VIDEO_FPS)
        self._thread = threading.Thread(target=self._write_loop, name=f"{self.kind}-sink", daemon=True)
        self._thread.start()
        self._tasks = [
            asyncio.create_task(self._read(self._subscription.next_video, "video")),
            asyncio.create_task(self._read(self._subscription.next_audio, "audio")),
        ]

    async def stop(self) -> None:
        """Stop reading, flush the encoders and close the container (the file then plays to its end)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._subscription is not None:
            self._subscription.close()
        if self._thread is not None:
            await asyncio.to_thread(self._queue.put, None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._error is not None:
            raise OutputSinkError(f"writing {self.target} failed: {self._error}") from self._error

    async def _read(self, next_frame, kind: str) -> None:
        while self._error is None:
            out = await next_frame()
            if out is None:  # the room stopped
                return
            while self._queue.full():  # back-pressure: the Subscription's bounded queue drops, not us
                await asyncio.sleep(0.005)
            self._queue.put_nowait((kind, out))

    # -- writer thread --------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        container = video = audio = fifo = None
        v0 = None  # first video pts (frames): the origin of both clocks
        next_audio = 0  # next audio sample to write, relative to the origin
        try:
            while (item := self._queue.get()) is not None:
                kind, out = item
                if kind == "video":
                    if container is None:
                        container, video, audio = self._open(out.image.shape)
                        fifo = av.AudioFifo()
                        v0 = out.pts
                    pts = out.pts - v0
                    if pts < self.frames_written:  # a repeated or late frame: time only moves forward
                        continue
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(out.image), format="rgb24")
                    frame.pts, frame.time_base = pts, Fraction(1, VIDEO_FPS)
                    container.mux(video.encode(frame))
                    self.frames_written = pts + 1
                elif container is not None:
                    next_audio = self._write_audio(container, audio, fifo, out, v0, next_audio)
            if container is not None:
                container.mux(video.encode(None))
                self._drain_audio(container, audio, fifo, final=True)
                container.mux(audio.encode(None))
        except Exception as exc:  # reported by stop(); the readers see _error and stop feeding
            log.error("%s sink failed: %r", self.kind, exc)
            self._error = exc
            while self._queue.get() is not None:  # unblock readers until stop() sends the sentinel
                pass
        finally:
            if container is not None:
                container.close()

    def _open(self, shape: tuple[int, ...]):
        height, width = shape[:2]
        try:
            if self.kind == "mp4":
                options = {
                    "movflags": "frag_keyframe+empty_moov+default_base_moof",
                    "frag_duration": str(FRAGMENT_US),
                    "flush_packets": "1",
                }
                container = av.open(self.target, mode="w", format="mp4", options=options)
            else:
                container = av.open(self.target, mode="w", format="mpegts")
        except (OSError, av.error.FFmpegError) as exc:
            raise OutputSinkError(f"cannot open {self.target}: {exc}") from exc
        video = container.add_stream("libx264", rate=VIDEO_FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "tune": "zerolatency", "g": str(GOP_FRAMES), "crf": "20"}
        audio = container.add_stream("aac", rate=WEBRTC_AUDIO_RATE)
        audio.layout = "mono"
        return container, video, audio

    def _write_audio(self, container, stream, fifo, out, v0: int, next_audio: int) -> int:
        start = out.pts - v0 * SAMPLES_PER_VIDEO_FRAME  # samples from the origin
        pcm = np.asarray(out.pcm, dtype=np.int16).reshape(-1)
        if start + len(pcm) <= next_audio:
            return next_audio  # entirely before what was written (or before the first frame)
        if start > next_audio:  # a gap (dropped frames): silence keeps the audio on the video's clock
            gap = min(start - next_audio, MAX_AUDIO_GAP_SAMPLES)
            pcm = np.concatenate((np.zeros(gap, np.int16), pcm))
        else:
            pcm = pcm[next_audio - start :]
        frame = av.AudioFrame.from_ndarray(pcm[None], format="s16", layout="mono")
        frame.sample_rate = WEBRTC_AUDIO_RATE
        fifo.write(frame)
        self._drain_audio(container, stream, fifo, final=False)
        return next_audio + len(pcm)

    def _drain_audio(self, container, stream, fifo, final: bool) -> None:
        while fifo.samples >= AAC_FRAME_SAMPLES or (final and fifo.samples > 0):
            frame = fifo.read(min(AAC_FRAME_SAMPLES, fifo.samples))
            frame.pts, frame.time_base = self.audio_samples_written, Fraction(1, WEBRTC_AUDIO_RATE)
            self.audio_samples_written += frame.samples
            container.mux(stream.encode(frame))
