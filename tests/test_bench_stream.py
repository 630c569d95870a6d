"""`bya bench stream`'s runner on a tiny model: it streams a world dialogue with and without listener
isolation and reports throughput and per-stage timings for both (the timings themselves are the
benchmark's business, not a test's)."""

from __future__ import annotations

import pytest
import torch

from realtime.bench.stream import run_unpaced
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.generator import Generator
from realtime.stream.options import SamplingOptions


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Generator(GENERATOR_CONFIGS["tiny"]).eval(), FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval()


def test_unpaced_run_reports_throughput_with_and_without_isolation(tiny) -> None:
    g, ae = tiny
    with torch.no_grad():
        on = run_unpaced(g, ae, 2.0, 2, SamplingOptions(steps=1, seed=101, window=0, isolation="on"))
        off = run_unpaced(g, ae, 2.0, 2, SamplingOptions(steps=1, seed=101, window=0, isolation="off"))
    for r in (on, off):
        assert r["frames_per_second"] > 0 and r["video_seconds"] == pytest.approx(2.0, abs=0.1)
        assert set(r["stages_ms"]) >= {"features_ms", "denoise_ms", "decode_ms"}
        assert all(ms >= 0 for ms in r["stages_ms"].values()) and r["stages_ms"]["denoise_ms"] > 0
        # the figures agree with each other: frames = fps x wall, and real time = video / wall
        frames = r["video_seconds"] * 25
        assert r["frames_per_second"] * r["wall_seconds"] == pytest.approx(frames, rel=1e-6)
        assert r["real_time_factor"] == pytest.approx(r["video_seconds"] / r["wall_seconds"], rel=1e-6)
        # the stages happen inside the run: a chunk's mean stage time cannot exceed the wall time per chunk
        chunks = frames / 2
        assert sum(r["stages_ms"].values()) <= 1000 * r["wall_seconds"] / chunks * 1.05
    assert on["steps"] == off["steps"] == 1 and on["characters"] == off["characters"] == 2
