"""MP4 writing and reading: frames survive the codec closely, audio is muxed, bad files are named."""

from __future__ import annotations

import av
import numpy as np
import pytest

from realtime.errors import OutputPathError, VideoInputError
from realtime.outputs.video_file import read_video, write_mp4


def test_round_trip_with_audio(tmp_path):
    t = np.arange(20)[:, None, None, None]
    frames = np.broadcast_to((t * 10 + np.arange(32)[None, :, None, None] * 4) % 256, (20, 32, 32, 3)).astype(
        np.uint8
    )
    audio = 0.3 * np.sin(np.linspace(0, 200, 20 * 640)).astype(np.float32)
    path = write_mp4(tmp_path / "a.mp4", frames, audio)
    back, fps = read_video(path)
    assert back.shape == frames.shape and fps == pytest.approx(25)
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 4
    with av.open(str(path)) as c:
        assert len(c.streams.audio) == 1 and c.streams.audio[0].rate == 16000


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(tmp_path / "a.mp4", np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="even frame sizes"):
        write_mp4(tmp_path / "a.mp4", np.zeros((2, 9, 8, 3), np.uint8))
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError):
        write_mp4(tmp_path / "f" / "a.mp4", np.zeros((2, 8, 8, 3), np.uint8))
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(VideoInputError, match=r"bad\.mp4"):
        read_video(tmp_path / "bad.mp4")
    with pytest.raises(VideoInputError, match="not found"):
        read_video(tmp_path / "missing.mp4")
    assert not list(tmp_path.glob("*.mp4.*"))  # no temporary file left behind
