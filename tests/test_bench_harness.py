"""`bya bench harness`: the instrument measured against the ground truth itself."""

from __future__ import annotations

from distill.eval.bench_harness import measure, table
from realtime.cli import main


def test_the_truth_read_where_the_tracker_puts_it_scores_like_the_truth() -> None:
    rep = measure("realtime/weights/ae-s.safetensors", (101,), (2,), 3.0)
    s = rep["summary"]
    assert s["truth, truth boxes"]["lip_sync_r"] > 0.9  # the reader reads true mouths
    assert s["truth, tracked"]["lip_sync_r"] > s["truth, truth boxes"]["lip_sync_r"] - 0.1
    assert s["truth via AE, truth boxes"]["lip_sync_r"] < s["truth, truth boxes"]["lip_sync_r"]
    assert 0.7 < s["truth, truth boxes"]["mouth_motion"] < 1.3  # the truth read back moves like the truth
    assert rep["tracker"]["median_error_px"] < 2.0
    assert "| truth, tracked |" in table(rep)


def test_bench_harness_refuses_bad_seconds_in_one_line(tmp_path, capsys) -> None:
    assert main(["bench", "harness", "--seconds", "0", "--out", str(tmp_path / "h.json")]) != 0
    err = capsys.readouterr().err.strip()
    assert "--seconds must be positive" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "h.json").exists()
