"""One latency run against a live room: speakers talk over WHIP, a viewer watches over WHEP, a tap
inside the server records when each frame left the engine. Everything the analysis needs is returned
as a `SessionRecord`; nothing here computes a latency (see clients.latency_analysis).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np

from clients.python.speaker import WhipSpeaker
from clients.python.viewer import ReceivedAudio, ReceivedVideo, WhepViewer
from clients.room_tap import LocalServer, RoomTap, whep_first_pts
from clients.speech_bursts import Burst
from realtime.engine.room import Room
from realtime.media import AUDIO_SAMPLE_RATE, FRAME_MS, WEBRTC_AUDIO_RATE

SETTLE_S = 1.0  # after the last burst: its mouth frames must reach the viewer before we stop
SAMPLE_S = 0.2  # how often the inputs' jitter-buffer depth is read from room.stats()


@dataclass
class SessionRecord:
    """What one run saw, on one clock (time.monotonic of this process)."""

    bursts: list[Burst]
    capture_start: list[float]  # per character: when sample 0 of its track was "spoken"
    boxes: np.ndarray  # (N, 4) mouth boxes in canvas pixels
    latency_ms: float  # the room's output delay (media time -> emit time)
    chunk_wait_ms: float  # audio a chunk's first frame waits for: its frames + lookahead + STFT tail
    chunk_frames: int
    lookahead_frames: int  # frames of audio the model hears ahead of a frame
    emitted: dict[int, float]  # engine frame -> emit time
    mix_first: int  # first sample (48 kHz, engine media clock) of `mix`
    mix: np.ndarray  # the room's output mix as the tap received it, float32
    video: list[ReceivedVideo]  # what the WHEP viewer received (with images)
    audio: list[ReceivedAudio]  # with mono PCM
    first_pts: int  # engine frame of the viewer's RTP pts 0
    stats_before: dict  # room.stats() when the speakers started
    stats_after: dict  # room.stats() at the end
    dropped_at_server: int  # frames the viewer's subscription dropped (slow sender)
    late_capture_frames: list[int] = field(default_factory=list)  # per speaker: frames sent late
    buffered_ms: list[float] = field(default_factory=list)  # engine jitter-buffer depth, sampled per input
    input_underruns: int = 0  # pulls that found an input's buffer empty during the run


def chunk_wait_ms(room: Room) -> float:
    """Milliseconds of audio, from the start of a chunk's first frame, that the chunk waits for."""
    from realtime.stream.rig_codec import session_codec
    from realtime.stream.session import StreamingGenerator

    codec = session_codec(room.loaded, room.scene)  # a rig model's session decodes with its scene's codec
    g = StreamingGenerator(room.loaded.generator, codec, room.scene.reference, room.scene.masks)
    return 1000.0 * g.samples_needed(0) / AUDIO_SAMPLE_RATE


async def record_session(
    room: Room, tracks: np.ndarray, bursts: list[Burst], boxes: np.ndarray, timeout_s: float = 600.0
) -> SessionRecord:
    """Serve `room` on 127.0.0.1, play `tracks` (N, S) as N WHIP speakers (speaker k bound to character
    k), watch over WHEP, and return everything observed."""
    cfg = room.loaded.generator.cfg
    wait_ms = await asyncio.to_thread(chunk_wait_ms, room)
    async with LocalServer(room) as local:
        tap = RoomTap(room)
        viewer = WhepViewer(keep_images=True, keep_audio=True)
        speakers = [WhipSpeaker(tracks[k], k) for k in range(len(tracks))]
        try:
            session = await viewer.offer(local.http, local.base, local.token)
            first_pts = whep_first_pts(local.server, session.id, tap)
            await viewer.connected()
            await viewer.wait_frames(1)
            stats_before = room.stats()
            await asyncio.gather(*(s.publish(local.http, local.base, local.token) for s in speakers))
            duration = tracks.shape[1] / WEBRTC_AUDIO_RATE
            end = time.monotonic() + min(duration + SETTLE_S, timeout_s)
            buffered: list[float] = []
            while time.monotonic() < end and not all(s.track.done for s in speakers):
                await asyncio.sleep(SAMPLE_S)
                buffered += [i["buffered_ms"] for i in room.stats()["inputs"].values()]
            await asyncio.sleep(SETTLE_S + room.stats()["latency_ms"] / 1000)
            stats_after = room.stats()
            dropped = local.server.sessions[session.id].subscription.dropped_video
        finally:
            await asyncio.gather(*(s.close(local.http, local.token) for s in speakers))
            await viewer.close(local.http, local.token)
            await tap.close()
    mix_first, mix = tap.mix()
    return SessionRecord(
        bursts=bursts,
        capture_start=[s.track.start_time for s in speakers],
        boxes=boxes,
        latency_ms=stats_after["latency_ms"],
        chunk_wait_ms=wait_ms,
        chunk_frames=cfg.chunk_frames,
        lookahead_frames=-(-cfg.audio_lookahead_ms // FRAME_MS),
        emitted=dict(tap.video_emitted),
        mix_first=mix_first,
        mix=mix,
        video=viewer.video,
        audio=viewer.audio,
        first_pts=first_pts,
        stats_before=stats_before,
        stats_after=stats_after,
        dropped_at_server=dropped,
        late_capture_frames=[s.track.late_frames for s in speakers],
        buffered_ms=buffered,
        input_underruns=sum(i["underruns"] for i in stats_after["inputs"].values()),
    )
