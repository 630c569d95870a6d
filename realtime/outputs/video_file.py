"""MP4 files in and out: write frames with their audio (H.264 + AAC), read a video back as RGB frames.

Used by `bya demo`/`bya render` to save results, and by `bya eval` to read any video it is asked to score.
Writing goes through a temporary file and a rename, so a crash never leaves a truncated MP4 behind.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from realtime.errors import OutputPathError, VideoInputError
from realtime.media import AUDIO_SAMPLE_RATE, VIDEO_FPS

AAC_FRAME_SAMPLES = 1024  # samples per AAC frame; PyAV's encoder wants whole frames
H264_CRF = 16  # visually lossless at 128-256 px, so the evaluation harness reads mouths, not codec blur


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    audio: np.ndarray | None = None,
    fps: int = VIDEO_FPS,
    sample_rate: int = AUDIO_SAMPLE_RATE,
) -> Path:
    """Encode (T, H, W, 3) uint8 RGB frames, and optionally (S,) float32 mono audio, into an MP4."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(
            f"H.264 with yuv420p needs even frame sizes, got {frames.shape[2]}x{frames.shape[1]}"
        )
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".mp4", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputPathError(f"cannot write to {path.parent}: {exc.strerror or exc}") from exc
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            video = container.add_stream("libx264", rate=fps)
            video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            video.options = {"crf": str(H264_CRF), "preset": "veryfast"}
            sound = None
            if audio is not None:
                sound = container.add_stream("aac", rate=sample_rate)
                sound.layout = "mono"
            for i, frame in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
                vf.pts, vf.time_base = i, Fraction(1, fps)
                container.mux(video.encode(vf))
            container.mux(video.encode(None))
            if sound is not None:
                pcm = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
                pcm = np.pad(pcm, (0, -len(pcm) % AAC_FRAME_SAMPLES))
                for start in range(0, len(pcm), AAC_FRAME_SAMPLES):
                    af = av.AudioFrame.from_ndarray(
                        pcm[None, start : start + AAC_FRAME_SAMPLES], format="flt", layout="mono"
                    )
                    af.sample_rate, af.pts, af.time_base = sample_rate, start, Fraction(1, sample_rate)
                    container.mux(sound.encode(af))
                container.mux(sound.encode(None))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Decode every video frame of a file to (T, H, W, 3) uint8 RGB; return the frames and the frame rate."""
    path = Path(path)
    if not path.is_file():
        raise VideoInputError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoInputError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else float(VIDEO_FPS)
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except av.error.FFmpegError as exc:
        raise VideoInputError(f"{path}: cannot decode video ({exc})") from exc
    if not frames:
        raise VideoInputError(f"{path}: the video stream holds no frames")
    return np.stack(frames), fps
