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


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Generator(GENERATOR_CONFIGS["tiny"]).eval(), FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval()


def test_unpaced_run_reports_throughput_with_and_without_isolation(tiny) -> None:
    g, ae = tiny
    with torch.no_grad():
        on = run_unpaced(g, ae, 2.0, 2, 1, seed=101, window=0, isolate=True)
        off = run_unpaced(g, ae, 2.0, 2, 1, seed=101, window=0, isolate=False)
    for r in (on, off):
        assert r["frames_per_second"] > 0 and r["video_seconds"] == pytest.approx(2.0, abs=0.1)
        assert set(r["stages_ms"]) >= {"features_ms", "denoise_ms", "decode_ms"}
