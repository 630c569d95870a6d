"""Record what a WHEP viewer receives: H.264 + AAC in an MP4, and a JSON sidecar of receive timestamps.

Frames are handed over from the event loop and encoded in a writer thread behind a bounded queue; when
the encoder falls behind, the newest frames are dropped and counted (the viewer must never stall). The
file keeps each stream's own RTP timing; the two streams are placed against each other by when their
first frames arrived (aiortc does no RTCP lip-sync). The sidecar lists every received frame with its
RTP pts and its receive time (time.monotonic and Unix time), recorded or dropped.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from realtime.errors import OutputPathError
from realtime.media import RTP_VIDEO_CLOCK_RATE, VIDEO_FPS, WEBRTC_AUDIO_RATE

log = logging.getLogger(__name__)

AAC_FRAME_SAMPLES = 1024  # PyAV's AAC encoder takes whole frames of this many samples
QUEUE_ITEMS = 3 * VIDEO_FPS * 3  # ~3 s of video + 20 ms audio frames between the receiver and the encoder
MAX_GAP_SAMPLES = WEBRTC_AUDIO_RATE  # an audio gap up to 1 s is filled with silence; longer ones are cut
TICKS_PER_FRAME = RTP_VIDEO_CLOCK_RATE // VIDEO_FPS  # 3600 ticks of 90 kHz per 25 fps frame


class Mp4Recorder:
    """Writes received video (av.VideoFrame, 90 kHz pts) and audio (av.AudioFrame, 48 kHz pts) to `path`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise OutputPathError(f"recording must be a .mp4 file, got {self.path}")
        if self.path.is_dir() or not self.path.parent.is_dir():
            raise OutputPathError(
                f"cannot record to {self.path}: its folder does not exist or it is a folder"
            )
        self.sidecar = self.path.with_suffix(".json")
        self.log: dict[str, list[dict]] = {"video": [], "audio": []}
        self.dropped = {"video": 0, "audio": 0}
        self.frames_written = 0
        self._queue: queue.Queue = queue.Queue(QUEUE_ITEMS)
        self._first_received: float | None = None
        self._audio_written = 0  # samples muxed so far
        self._mono: av.AudioResampler | None = None
        self._size: tuple[int, int] = (0, 0)  # even (width, height) of the video stream
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_loop, name="mp4-recorder", daemon=True)
        self._thread.start()

    def add(self, kind: str, frame: av.VideoFrame | av.AudioFrame, received: float) -> None:
        """Queue one received frame (kind 'video' or 'audio'); `received` is its time.monotonic()."""
        if self._first_received is None:
            self._first_received = received
        entry = {"pts": int(frame.pts), "t": round(received, 6), "unix": round(time.time(), 6)}
        if kind == "audio":
            entry["samples"] = frame.samples
        try:
            self._queue.put_nowait((kind, frame, received))
            entry["recorded"] = True
        except queue.Full:
            self.dropped[kind] += 1
            entry["recorded"] = False
        self.log[kind].append(entry)

    def close(self) -> None:
        """Flush the encoders, close the MP4 and write the sidecar (blocking: call it off the event loop)."""
        self._queue.put(None)
        self._thread.join()
        self.sidecar.write_text(
            json.dumps(
                {
                    "file": self.path.name,
                    "clock": "time.monotonic() of the receiving process; unix = time.time() at receipt",
                    "video_clock_hz": RTP_VIDEO_CLOCK_RATE,
                    "audio_clock_hz": WEBRTC_AUDIO_RATE,
                    "frames_written": self.frames_written,
                    "dropped": self.dropped,
                    **self.log,
                },
                indent=0,
            )
        )
        if self._error is not None:
            raise OutputPathError(f"recording {self.path} failed: {self._error}") from self._error

    # -- writer thread ------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        container = video = audio = fifo = None
        origin: dict[str, float] = {}  # kind -> file time (s) its RTP pts 0 maps to
        next_audio = 0  # next audio sample of the file
        last_video = -1
        try:
            while (item := self._queue.get()) is not None:
                kind, frame, received = item
                if kind not in origin:  # placed by arrival against the first frame of either kind
                    clock = RTP_VIDEO_CLOCK_RATE if kind == "video" else WEBRTC_AUDIO_RATE
                    origin[kind] = received - self._first_received - frame.pts / clock
                if kind == "video":
                    if container is None:
                        container, video, audio = self._open(frame.width, frame.height)
                        fifo = av.AudioFifo()
                    index = round(origin["video"] * VIDEO_FPS + frame.pts / TICKS_PER_FRAME)
                    if index <= last_video:  # time only moves forward in the file
                        continue
                    out = frame.reformat(width=self._size[0], height=self._size[1], format="yuv420p")
                    out.pts, out.time_base = index, Fraction(1, VIDEO_FPS)
                    container.mux(video.encode(out))
                    last_video = index
                    self.frames_written += 1
                elif container is not None:
                    next_audio = self._write_audio(container, audio, fifo, frame, origin["audio"], next_audio)
            if container is not None:
                container.mux(video.encode(None))
                self._drain(container, audio, fifo, final=True)
                container.mux(audio.encode(None))
        except Exception as exc:  # reported by close()
            log.error("recording %s failed: %r", self.path, exc)
            self._error = exc
            while self._queue.get() is not None:  # keep add() from filling a queue nobody reads
                pass
        finally:
            if container is not None:
                container.close()

    def _open(self, width: int, height: int):
        try:
            options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
            container = av.open(str(self.path), mode="w", format="mp4", options=options)
        except (OSError, av.error.FFmpegError) as exc:
            raise OutputPathError(f"cannot open {self.path}: {exc}") from exc
        video = container.add_stream("libx264", rate=VIDEO_FPS)
        self._size = (width // 2 * 2, height // 2 * 2)  # yuv420p needs even sides
        video.width, video.height, video.pix_fmt = *self._size, "yuv420p"
        video.options = {"preset": "veryfast", "tune": "zerolatency", "crf": "18", "g": str(VIDEO_FPS)}
        audio = container.add_stream("aac", rate=WEBRTC_AUDIO_RATE)
        audio.layout = "mono"
        self._mono = av.AudioResampler(format="s16", layout="mono", rate=WEBRTC_AUDIO_RATE)
        return container, video, audio

    def _write_audio(self, container, stream, fifo, frame, origin_s: float, next_audio: int) -> int:
        start = round(origin_s * WEBRTC_AUDIO_RATE) + int(frame.pts)
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in self._mono.resample(frame)] or [[]])
        pcm = pcm.astype(np.int16)
        if start + len(pcm) <= next_audio:
            return next_audio
        if start > next_audio:  # a gap: silence keeps the audio on its clock
            pcm = np.concatenate((np.zeros(min(start - next_audio, MAX_GAP_SAMPLES), np.int16), pcm))
        else:
            pcm = pcm[next_audio - start :]
        out = av.AudioFrame.from_ndarray(pcm[None], format="s16", layout="mono")
        out.sample_rate = WEBRTC_AUDIO_RATE
        fifo.write(out)
        self._drain(container, stream, fifo, final=False)
        return next_audio + len(pcm)

    def _drain(self, container, stream, fifo, final: bool) -> None:
        while fifo.samples >= AAC_FRAME_SAMPLES or (final and fifo.samples > 0):
            frame = fifo.read(min(AAC_FRAME_SAMPLES, fifo.samples))
            frame.pts, frame.time_base = self._audio_written, Fraction(1, WEBRTC_AUDIO_RATE)
            self._audio_written += frame.samples
            container.mux(stream.encode(frame))
