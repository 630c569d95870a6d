"""How many rooms and viewers one `bya serve` process takes, decided from what this machine measures.

Every room generates a chunk every chunk duration whether anyone speaks or not, so a room's cost is its
chunk cost: measured here at start the way the Room measures it while warming up (a throwaway
ChunkScheduler on one voice with the others silent (scheduler.probe_audio: the dearest chunk, listener
isolation's two passes), realtime.engine.scheduler.CostModel, the first chunk not counted). Rooms fit while
their chunks fit in ROOM_SHARE of the chunk duration; viewers while their VP8 encoding fits in
ENCODE_SHARE of the cores. Past either limit a request gets 503 + Retry-After and nothing starts, so the
running rooms keep their frame rate. Explicit limits (`bya serve --max-rooms ...`) replace the measured ones.
"""

from __future__ import annotations

import fractions
import time
from dataclasses import asdict, dataclass

import numpy as np
from aiohttp import web

from realtime.engine.threads import available_cores
from realtime.media import FRAME_MS, RTP_VIDEO_CLOCK_RATE, VIDEO_FPS

ROOM_SHARE = 0.8  # of each chunk duration for the rooms' model work; the rest: event loop, Opus, clock
ENCODE_SHARE = 0.25  # of the cores for VP8 encoding (aiortc encodes in its own threads, ~1 per viewer)
PROBE_CHUNKS = (
    6  # chunks timed on scheduler.probe_audio; the first pays torch's lazy set-up and is not counted
)
ENCODE_FRAMES = 12  # frames timed through the VP8 encoder (the first, a key frame, not counted)
RETRY_AFTER_S = 10  # what a refused client is told to wait: rooms and viewers come and go in seconds


def unavailable(reason: str) -> web.HTTPServiceUnavailable:
    """503 with Retry-After: nothing was started, the running rooms are untouched."""
    return web.HTTPServiceUnavailable(text=f"{reason}\n", headers={"Retry-After": str(RETRY_AFTER_S)})


@dataclass(frozen=True)
class Capacity:
    """What this machine measured at start, and the limits derived from it."""

    chunk_ms: float  # real-time budget of one chunk (chunk_frames x 40 ms)
    room_chunk_ms: float  # one room's measured chunk cost (CostModel.estimate at its steps)
    encode_ms: float  # VP8 encode of one frame of the canvas, one viewer
    cores: int
    max_rooms: int  # max(1, floor(ROOM_SHARE x chunk_ms / room_chunk_ms))
    max_viewers: int  # host-wide: max(1, floor(ENCODE_SHARE x cores x 40 ms / encode_ms))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["rule"] = (
            f"rooms = max(1, floor({ROOM_SHARE} x chunk_ms / room_chunk_ms)); "
            f"viewers = max(1, floor({ENCODE_SHARE} x cores x {FRAME_MS} ms / encode_ms))"
        )
        return d


def rooms_that_fit(chunk_ms: float, room_chunk_ms: float) -> int:
    return max(1, int(ROOM_SHARE * chunk_ms / max(room_chunk_ms, 1e-3)))


def viewers_that_fit(cores: int, encode_ms: float) -> int:
    return max(1, int(ENCODE_SHARE * cores * FRAME_MS / max(encode_ms, 1e-3)))


def measure_capacity(loaded, scene, steps: int, seed: int = 0, motion: bool = False) -> Capacity:
    """Time one room's chunks and one viewer's encoding on this machine (blocking: call off the loop)."""
    chunk_ms, cost_ms = chunk_cost_ms(loaded, scene, steps, seed, motion)
    encode = vp8_encode_ms(scene)
    cores = available_cores()  # this process's CPU affinity, not the machine's cores
    return Capacity(
        chunk_ms=chunk_ms,
        room_chunk_ms=round(cost_ms, 2),
        encode_ms=round(encode, 3),
        cores=cores,
        max_rooms=rooms_that_fit(chunk_ms, cost_ms),
        max_viewers=viewers_that_fit(cores, encode),
    )


def chunk_cost_ms(loaded, scene, steps: int, seed: int = 0, motion: bool = False) -> tuple[float, float]:
    """(chunk duration, estimated cost of one chunk at `steps`) in ms, from PROBE_CHUNKS probe chunks
    (with `motion`, each re-posed as a moving room's are)."""
    from realtime.engine.scheduler import ChunkScheduler, CostModel, probe_audio
    from realtime.stream.options import SamplingOptions

    options = SamplingOptions.defaults(loaded, steps=steps, seed=seed, motion=motion)
    probe = ChunkScheduler(loaded, scene, options)
    session = probe.session
    audio = probe_audio(scene.n_characters, session.samples_needed(PROBE_CHUNKS - 1))
    first = session.samples_needed(0)
    probe.feed(audio[:, :first])
    probe.cost = CostModel()
    probe.feed(audio[:, first:])
    return float(probe.chunk_frames * FRAME_MS), probe.cost.estimate(steps)


def vp8_encode_ms(scene) -> float:
    """Mean ms aiortc's VP8 encoder (what WHEP negotiates with aiortc) takes per frame of this canvas."""
    import av
    from aiortc.codecs import get_encoder
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    from realtime.engine.compositor import composite

    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=RTP_VIDEO_CLOCK_RATE, payloadType=96)
    encoder = get_encoder(codec)
    rng = np.random.default_rng(0)
    times = []
    for i in range(ENCODE_FRAMES):
        # the generated square changes every frame; noise there makes the estimate err on the safe side
        patch = np.clip(scene.reference.astype(np.int16) + rng.integers(-8, 9, scene.reference.shape), 0, 255)
        image = composite(scene.background, patch.astype(np.uint8), scene.region)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = i * (RTP_VIDEO_CLOCK_RATE // VIDEO_FPS), fractions.Fraction(1, 90000)
        start = time.perf_counter()
        encoder.encode(frame)
        times.append(1e3 * (time.perf_counter() - start))
    return float(np.mean(times[1:]))
