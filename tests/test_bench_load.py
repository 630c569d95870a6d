"""The load benchmark's mechanics, in seconds, through the real server with the tiny generator: rooms up
to the limit, the refused one's 503 + Retry-After, then viewers up to the per-room limit and its 503."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import pytest
from test_server import loaded, loopback_ice  # noqa: F401 (fixtures: the tiny generator, 127.0.0.1 ICE)

from clients.bench_load import check_args, run_load
from realtime.errors import BYAError


def test_a_short_load_run_refuses_one_room_and_one_viewer_too_many(loaded) -> None:  # noqa: F811
    from clients.looped_speech import dialogue_wavs

    args = argparse.Namespace(window=2.0, settle=0.5, max_tries=3, max_rooms=1, out="unused.json")
    with tempfile.TemporaryDirectory() as tmp:
        wavs, _, _ = dialogue_wavs(Path(tmp))
        result = asyncio.run(run_load(loaded, args, wavs))
    assert [s["rooms"] for s in result["steps"]] == [1]
    assert result["refusal"]["status"] == 503 and result["refusal"]["retry_after"]
    assert result["acceptance"]["refused_with_503_and_retry_after"]
    viewers = result["viewers"]
    limit = result["server_limits"]["max_viewers_per_room"]
    assert [s["viewers"] for s in viewers["steps"]] == list(range(2, limit + 1))  # one was there already
    assert viewers["refusal"]["status"] == 503 and viewers["refusal"]["retry_after"]
    assert len(viewers["after_refusal_fps"]) == limit and min(viewers["after_refusal_fps"]) > 0
    assert result["acceptance"]["viewer_refused_with_503_and_retry_after"]


def test_arguments_are_bounded() -> None:
    good = {"window": 20.0, "settle": 5.0, "max_tries": 8, "max_rooms": None, "out": "x.json"}
    check_args(argparse.Namespace(**good))
    for bad in ({"window": 1.0}, {"settle": 61.0}, {"max_tries": 0}, {"max_rooms": 99}, {"out": "x.png"}):
        with pytest.raises(BYAError):
            check_args(argparse.Namespace(**{**good, **bad}))
