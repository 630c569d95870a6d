"""`bya render` end to end with the shipped teacher at 1 step: the MP4, its JSON, and one-line errors."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from matplotlib import cbook

from realtime.cli import main
from realtime.model.default_model import TEACHER
from realtime.scene.scenes import PHOTO_ONLY_NOTE

PHOTO = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


def write_wav(path: Path, seconds: float, rate: int, freq: float, start_s: float = 0.0) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.4 * np.sin(2 * np.pi * freq * t) * (t >= start_s) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("wavs")
    # different rates and lengths: both are resampled to 16 kHz and the shorter one padded
    return [write_wav(d / "a0.wav", 1.0, 16_000, 220.0), write_wav(d / "a1.wav", 0.7, 44_100, 330.0, 0.3)]


def test_render_writes_mp4_and_json(wavs, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out" / "talk.mp4"
    argv = ["render", "--audio", str(wavs[0]), "--audio", str(wavs[1]), "--out", str(out)]
    assert main([*argv, "--model", str(TEACHER), "--steps", "1", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "frames/s" in printed and str(out) in printed
    meta = json.loads(out.with_suffix(".json").read_text())
    frames = meta["frames"]
    assert frames == 26  # 1.0 s of audio -> 13 chunks of 2 frames
    assert (meta["fps"], meta["width"], meta["height"], meta["steps"]) == (25, 128, 128, 1)
    assert [c["index"] for c in meta["characters"]] == [0, 1]
    assert all(isinstance(c["name"], str) and c["name"] for c in meta["characters"])
    for c in meta["characters"]:
        assert len(c["boxes"]) == frames
        for box in c["boxes"]:
            assert box is None or (
                len(box) == 4 and 0 <= box[0] < box[2] <= 128 and 0 <= box[1] < box[3] <= 128
            )
    assert meta["binding"] == [
        {"audio": str(wavs[0]), "character": 0},
        {"audio": str(wavs[1]), "character": 1},
    ]
    assert len(meta["timings_ms"]) == 13 and all(
        t["denoise_ms"] > 0 and t["total_ms"] > 0 for t in meta["timings_ms"]
    )
    with av.open(str(out)) as container:
        kinds = sorted(s.type for s in container.streams)
        video = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert kinds == ["audio", "video"] and len(video) == frames and video[0].shape == (128, 128, 3)


def _error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bya: error: ") and "\n" not in err
    return err


def test_render_rejects_bad_input_with_one_line(wavs, tmp_path: Path, capsys) -> None:
    a0, a1 = str(wavs[0]), str(wavs[1])
    out = str(tmp_path / "o.mp4")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF nonsense")
    bad_scene = tmp_path / "scene.json"
    bad_scene.write_text(json.dumps({"characters": [{"skin": "green"}]}))
    model = ["--model", str(TEACHER), "--steps", "1"]
    cases = [
        (["--audio", str(tmp_path / "none.wav"), "--out", out], "not found"),
        (["--audio", str(junk), "--out", out], "cannot decode audio"),
        (["--audio", a0, "--out", str(tmp_path / "o.avi")], "--out must name an .mp4"),
        (["--out", out], "give 1 to 4 --audio"),
        (["--audio", a0] * 5 + ["--out", out], "give 1 to 4 --audio"),
        (["--mix", a0, "--audio", a1, "--out", out], "either --audio files"),
        (["--audio", a0, "--enroll", a1, "--out", out], "--enroll and --characters go with --mix"),
        (["--mix", a0, "--characters", "5", "--out", out], "--mix binds 1 to 4 characters"),
        (["--audio", a0, "--out", out, "--steps", "0"], "--steps must be in"),
        (
            ["--audio", a0, "--audio", a1, "--audio", a0, "--scene", "studio", "--out", out, *model],
            "3 --audio files for a scene of 2",
        ),
        (
            ["--audio", a0, "--scene", str(bad_scene), "--out", out, *model],
            r"characters[0].skin: expected 3 integers",
        ),
        (["--audio", a0, "--scene", "nowhere", "--out", out, *model], "bundled scene"),
        (
            ["--audio", a0, "--scene", PHOTO, "--face", "150,100,370,330", "--out", out, *model],
            PHOTO_ONLY_NOTE,
        ),
        (["--audio", a0, "--out", out, "--model", str(tmp_path / "none.safetensors")], "not found"),
    ]
    for argv, expected in cases:
        assert expected in _error(["render", *argv], capsys), argv
    assert not Path(out).exists()


def test_render_from_one_mixed_stream(tmp_path: Path) -> None:
    """--mix: one stream with two voices is diarized (online clustering) to the two characters."""
    from distill.world.dialogue import synthesize_dialogue

    dialogue = synthesize_dialogue(2, seconds=1.2, seed=5)
    mix = tmp_path / "mix.wav"
    with wave.open(str(mix), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes((dialogue.mix * 32767).astype("<i2").tobytes())
    out = tmp_path / "mix.mp4"
    assert (
        main(["render", "--mix", str(mix), "--out", str(out), "--model", str(TEACHER), "--steps", "1"]) == 0
    )
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["frames"] == 30 and len(meta["characters"]) == 2
    assert meta["binding"] == [{"mix": str(mix), "speaker": k, "character": k} for k in range(2)]


def test_render_of_a_picture_takes_the_rig_model_and_keeps_the_picture_size(
    wavs, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "duo.mp4"
    argv = ["render", "--scene", "duo", "--audio", str(wavs[0]), "--audio", str(wavs[1]), "--out", str(out)]
    assert main(argv) == 0  # no --model: a picture gets the shipped rig model
    meta = json.loads(out.with_suffix(".json").read_text())
    assert (meta["width"], meta["height"]) == (512, 320) and meta["model"].endswith("rig-s.safetensors")
    assert meta["scene"]["source"] == "photo"
    with av.open(str(out)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert first.shape == (320, 512, 3)
