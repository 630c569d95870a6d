"""The soak benchmark's mechanics: a few seconds through the real server with the tiny generator, and its
summary and plot on known samples (memory growth, A/V range, fps minimum against the issue's targets).
"""

from __future__ import annotations

import argparse

import pytest
from test_server import loaded, loopback_ice  # noqa: F401 (fixtures: the tiny generator, 127.0.0.1 ICE)

from clients.bench_soak import check_args, run, summarize, write_plot
from realtime.errors import BYAError


def _sample(t: float, rss: float, fps: float = 25.0, av=(-10.0, 5.0)) -> dict:
    return {
        "t_s": t,
        "rss_mb": rss,
        "fps_delivered": fps,
        "fps_fresh": fps,
        "latency_ms": 250.0,
        "chunk_ms": 60.0,
        "late_chunks": 0,
        "skipped_chunks": 0,
        "repeated_frames": 0,
        "av_offset_ms": list(av),
    }


def test_summary_measures_growth_after_warmup_and_checks_targets(tmp_path) -> None:
    samples = [
        _sample(10, 300.0),
        _sample(130, 400.0),
        _sample(600, 404.0),
        _sample(1800, 410.0, av=(-45.0,)),
    ]
    s = summarize(samples, warmup_s=120.0)
    assert s["rss_mb_after_warmup"]["first"] == 400.0  # the warm-up's growth does not count
    assert s["memory_growth_pct"] == 2.5 and s["meets"]["memory"]
    assert s["av_offset_ms"]["range"] == [-45.0, 5.0] and not s["meets"]["av"]
    assert s["fps_delivered_min"] == 25.0 and s["meets"]["fps"]
    assert not summarize([*samples, _sample(1810, 500.0, fps=20.0)], 120.0)["meets"]["fps"]
    png = write_plot(samples, s, tmp_path / "soak.png")
    assert png.stat().st_size > 10_000


def test_arguments_are_bounded() -> None:
    args = argparse.Namespace(minutes=30.0, sample=10.0, warmup=None, out="x.json")
    check_args(args)
    assert args.warmup == 2.0
    for bad in ({"minutes": 0.0}, {"minutes": 1e4}, {"sample": 0.1}, {"warmup": 31.0}, {"out": "x.png"}):
        with pytest.raises(BYAError):
            check_args(argparse.Namespace(**{**vars(args), "warmup": None, **bad}))


def test_a_short_soak_through_the_server(loaded) -> None:  # noqa: F811 (the fixture)
    args = argparse.Namespace(minutes=0.15, sample=3.0, warmup=0.05, out="unused.json")
    result = run(loaded, args)
    samples = result["samples"]
    assert len(samples) >= 2 and samples[-1]["t_s"] <= 0.15 * 60 + 3
    assert all(s["rss_mb"] > 0 and s["fps_delivered"] > 0 for s in samples)
    assert result["summary"]["samples"] == len(samples)
    assert result["summary"]["av_offset_ms"]["n"] >= 1  # speech onsets were found at the viewer
