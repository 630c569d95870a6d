"""The harness's acceptance checks (ground truth, swapped tracks, 3-frame delay), bad input and the CLI.

Clips come from held-out seeds (< 1000, never used to train the mouth reader), 5 s at 128 px.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from distill.eval.harness import evaluate, main, save_plot, write_json
from distill.eval.mouth_reader import MouthReader, load_reader
from distill.world.clip import Clip, make_clip
from realtime.errors import OutputPathError, VideoInputError

# (seed, characters): every clip has turns, overlaps and silences; seed 13 has a character who never speaks.
GT_CLIPS = [(11, 2), (12, 3), (13, 4)]
SECONDS = 5.0


@cache
def clip_of(seed: int, n: int) -> Clip:
    return make_clip(seed, n_characters=n, size=128, seconds=SECONDS)


@pytest.fixture(scope="module")
def reader() -> MouthReader:
    return load_reader()


def _values(report: dict, key: str) -> list[float]:
    return [c[key] for c in report["characters"] if c[key] is not None]


@pytest.mark.parametrize(("seed", "n"), GT_CLIPS)
def test_ground_truth_render_scores_near_perfect(seed: int, n: int, reader: MouthReader) -> None:
    clip = clip_of(seed, n)
    rep = evaluate(clip.render.frames, clip, masks=clip.render.masks, reader=reader)
    assert rep["lip_sync"]["r_mean"] >= 0.95
    assert min(_values(rep, "lip_sync_r")) >= 0.9
    assert rep["lip_sync"]["offset_frames"] == 0
    assert all(c["offset_frames"] in (0, None) for c in rep["characters"])
    assert rep["binding"]["auc_own_mean"] >= 0.95
    assert rep["binding"]["auc_other_mean"] <= 0.6
    assert rep["binding"]["wrong_person_rate"] <= 0.1
    assert rep["masks"]["iou_mean"] == 1.0 and rep["masks"]["soft_iou_mean"] == 1.0
    assert rep["masks"]["flicker_mean"] == pytest.approx(rep["masks"]["truth_flicker_mean"])
    # Pixels with a faint (<= 0.05) character fringe count as background, so not exactly 100 dB.
    assert rep["background"]["psnr_db"] >= 50.0 and rep["background"]["ssim"] >= 0.999
    assert rep["colour_drift"]["max"] == 0.0
    json.dumps(rep, allow_nan=False)  # strict JSON: nan and inf were turned into null


def test_swapped_tracks_are_detected(reader: MouthReader) -> None:
    clip = clip_of(11, 2)
    d = clip.dialogue
    perm = [1, 0]
    swapped = replace(
        d, audio=d.audio[perm], openness=d.openness[perm], viseme=d.viseme[perm], active=d.active[perm]
    )
    from realtime.scene.cartoon.render import render_scene

    frames = render_scene(clip.scene, swapped, size=clip.size, seed=clip.seed).frames
    good = evaluate(clip.render.frames, clip, reader=reader)
    bad = evaluate(frames, clip, reader=reader)
    # Each mouth now moves with the other character's speech: the binding figures invert.
    assert bad["binding"]["auc_own_mean"] < 0.4 < 0.95 <= good["binding"]["auc_own_mean"]
    assert bad["binding"]["auc_other_mean"] > 0.7
    assert bad["binding"]["wrong_person_rate"] > 0.8
    assert bad["lip_sync"]["r_mean"] < 0.3


def test_three_frame_delay_reports_offset_3(reader: MouthReader) -> None:
    clip = clip_of(12, 3)
    f = clip.render.frames
    delayed = np.concatenate([np.repeat(f[:1], 3, axis=0), f[:-3]])  # video lags audio by 3 frames
    rep = evaluate(delayed, clip, reader=reader)
    assert rep["lip_sync"]["offset_frames"] == 3
    assert rep["lip_sync"]["offset_ms"] == pytest.approx(120.0)
    assert rep["lip_sync"]["r_at_offset"] >= 0.9
    assert rep["lip_sync"]["r_mean"] < rep["lip_sync"]["r_at_offset"]


def test_bad_frames_are_rejected(reader: MouthReader) -> None:
    clip = clip_of(11, 2)
    f = clip.render.frames
    with pytest.raises(VideoInputError, match=f"video has {len(f) - 1} frames, ground truth .* has {len(f)}"):
        evaluate(f[:-1], clip, reader=reader)
    with pytest.raises(VideoInputError, match="64x64"):
        evaluate(f[:, ::2, ::2], clip, reader=reader)
    with pytest.raises(VideoInputError, match="uint8"):
        evaluate(f.astype(np.float32), clip, reader=reader)
    with pytest.raises(VideoInputError, match=r"\(T, H, W, 3\)"):
        evaluate(f[..., 0], clip, reader=reader)
    with pytest.raises(VideoInputError, match="masks have shape"):
        evaluate(f, clip, masks=clip.render.masks[:, :1], reader=reader)
    with pytest.raises(VideoInputError, match=r"\[0, 1\]"):
        evaluate(f, clip, masks=clip.render.masks * 2.0, reader=reader)


def _write_mp4(frames: np.ndarray, path: Path) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "18"}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())


def test_cli_truth_only_and_video(tmp_path: Path) -> None:
    from distill.data.shards import save_clip

    clip = clip_of(11, 2)
    truth = save_clip(clip, tmp_path / "clip.npz")
    assert main(["--truth", str(truth), "--truth-only", "--out", str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["lip_sync"]["offset_frames"] == 0 and rep["masks"]["iou_mean"] == 1.0

    video = tmp_path / "clip.mp4"
    _write_mp4(clip.render.frames, video)
    args = ["--truth", str(truth), "--video", str(video), "--out", str(tmp_path / "v.json")]
    assert main([*args, "--plot", str(tmp_path / "v.png")]) == 0
    rep = json.loads((tmp_path / "v.json").read_text())
    assert rep["lip_sync"]["r_mean"] >= 0.9 and rep["masks"] is None
    assert (tmp_path / "v.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    _write_mp4(clip.render.frames[:, :64, :64].copy(), tmp_path / "small.mp4")
    with pytest.raises(VideoInputError, match="64x64"):
        main(["--truth", str(truth), "--video", str(tmp_path / "small.mp4")])
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoInputError, match="cannot decode"):
        main(["--truth", str(truth), "--video", str(tmp_path / "junk.mp4")])


def test_plot_and_unwritable_report(tmp_path: Path, reader: MouthReader) -> None:
    clip = clip_of(13, 4)
    rep = evaluate(clip.render.frames, clip, masks=clip.render.masks, reader=reader)
    assert save_plot(rep, clip, tmp_path / "p.png").stat().st_size > 10_000
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputPathError):
        write_json(rep, tmp_path / "file" / "r.json")
