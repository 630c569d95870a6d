"""Sessions leave no threads behind: after WHEP viewers and WHIP speakers join and leave the live server,
the process runs as many native threads as before. FFmpeg's pools (filter graphs, scalers, codecs) are
native threads that threading.active_count() does not see, so /proc/self/task is counted.

Cyclic garbage collection is off while the sessions come and go: what a session holds must end with
it, not when the collector happens to run (PyAV's filter graphs are reference cycles).
"""

from __future__ import annotations

import asyncio
import gc
import os

import numpy as np
import pytest
import torch
from test_server import AUTH, TOKEN, served, wait_for
from webrtc_peers import Speaker, Viewer

from realtime.media import WEBRTC_AUDIO_RATE
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.default_model import LoadedModel
from realtime.model.generator import Generator
from realtime.server.webrtc import restrict_ice_addresses, tune_consent

CYCLES = 8  # join/leave cycles of one viewer and one speaker; each leaked 6 threads on 2 cores before
SPARE_THREADS = 2  # the asyncio executor may add a worker or two under load (shared, bounded by its size)

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    torch.manual_seed(0)
    gen = Generator(GENERATOR_CONFIGS["tiny"]).eval()
    return LoadedModel(gen, FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval(), 1, None)


@pytest.fixture(autouse=True)
def loopback_ice():
    restrict_ice_addresses(["127.0.0.1"])
    tune_consent(0.4, 3)
    yield
    tune_consent(5, 6)


def native_threads() -> int:
    """Every thread of this process, native ones (FFmpeg, libvpx, x264, BLAS) included."""
    return len(os.listdir("/proc/self/task"))


async def join_and_leave(server, base: str, http, speech: np.ndarray) -> None:
    """A viewer that receives a few frames and a speaker the engine hears, both ended by DELETE."""
    viewer, speaker = Viewer(), Speaker(speech)
    try:
        assert await viewer.play(http, base, TOKEN) == 201
        assert await speaker.publish(http, base, 0, TOKEN) == 201
        await viewer.frames(3)
        await viewer.audio_frames(3)
        whip = server.sessions[speaker.session_id]
        await wait_for(lambda: whip.audio_s > 0.1, 10.0)
        for peer in (viewer, speaker):
            assert (await http.delete(base + peer.location, headers=AUTH)).status == 200
    finally:
        await viewer.close()
        await speaker.close()


def test_sessions_leave_no_threads_behind(loaded) -> None:
    t = np.arange(2 * WEBRTC_AUDIO_RATE) / WEBRTC_AUDIO_RATE
    speech = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    async def go() -> None:
        async with served(loaded) as (server, base, http):
            # the first session starts what lives as long as the process (executor workers, per-thread state)
            await join_and_leave(server, base, http, speech)
            baseline, after = native_threads(), []
            for _ in range(CYCLES):
                await join_and_leave(server, base, http, speech)
                assert server.sessions == {}
                after.append(native_threads())
            try:  # a peer's last native thread may end just after its close() returned: poll, bounded
                await wait_for(lambda: native_threads() <= baseline + SPARE_THREADS, 10.0)
            except AssertionError:
                pytest.fail(f"{baseline} threads before, {after} after each session, {native_threads()} now")

    gc.disable()
    try:
        asyncio.run(go())
    finally:
        gc.enable()
