"""Turn a SessionRecord into latencies: per speech onset, glass-to-glass and its stages; per run, delivery.

Clocks. Speaker k "spoke" sample s at capture_start[k] + s / 48 kHz. The room's media clock starts at
t0 (estimated from the tap: frame f leaves at t0 + latency + f x 40 ms, never earlier); the output mix
finds where the onset landed on it (m_on). Received frame j is engine frame first_pts + j.

Per onset (f_on = the frame whose 40 ms hold m_on):
  pipeline  = receive time of f_on - capture time: the first frame that carries the onset's audio
  glass     = receive time of the first frame in which the bound mouth moves - capture time
  response  = glass - pipeline (the model's own reaction, in frames of 40 ms; may be < 0 by lookahead)
  pipeline  = ingest + chunk_wait + tick + features + denoise + cache + decode + composite + headroom
              + clock_late + transport, exactly (compute stages are the room's mean timings; headroom
              is what remains of the room's fixed latency, see STAGE_NOTES)
"""

from __future__ import annotations

import numpy as np

from clients.latency_session import SessionRecord
from clients.mouth_motion import MotionConfig, detect_motion_onset
from clients.speech_bursts import find_onset
from realtime.engine.room import PULL_MS
from realtime.engine.subscription import AUDIO_FRAME_MS
from realtime.media import FRAME_MS, WEBRTC_AUDIO_RATE

COMPUTE = ("features", "denoise", "cache", "decode", "composite")  # the room's timings_ms, per chunk
PER_FRAME = ("decode", "composite")  # done frame by frame; the rest once per chunk, before frame 0
STAGES = ("ingest", "chunk_wait", "tick", *COMPUTE, "headroom", "clock_late", "transport")
INGEST_PARTS = ("mic_packet", "engine_jitter_buffer", "network_opus_aiortc")
STAGE_NOTES = {
    "ingest": "capture -> the room's media clock: 20 ms mic packet, Opus, RTP, the engine's jitter buffer",
    "chunk_wait": "audio still to come after the onset before its chunk can run: rest of the chunk + lookahead + STFT tail",
    "tick": "audio reaches the worker on the room's next pull (every PULL_MS = 5 ms)",
    "features": "log-mel + audio encoder + window keys (audio encoding)",
    "denoise": "sampling steps of the denoiser",
    "decode": "latent -> RGB (autoencoder decoder), frame by frame: the onset's frame and those before it in its chunk",
    "cache": "rolling K/V cache update",
    "composite": "paste onto the canvas",
    "headroom": "room latency minus the above: the margin a frame waits in the output queue (negative: late/skipped chunks)",
    "clock_late": "the room's clock tick emitting the frame after its due time (event-loop load)",
    "transport": "emit -> received by the WHEP client: VP8 encode, RTP over loopback, frame-complete buffer, decode",
    "ingest_parts": "mic_packet: onset to the end of its 20 ms packet; engine_jitter_buffer: mean depth of the "
    "inputs' playout buffers (sampled); network_opus_aiortc: the rest (Opus, loopback, RTP receive)",
    "response": "frames between the onset's frame and the first frame whose mouth moves (the model's reaction)",
}
MOUTH_VALID = {
    "min_detected": 0.8,
    "max_control": 0.2,
}  # a mouth measurement counts only when it beats chance
PACKET_SAMPLES = WEBRTC_AUDIO_RATE * AUDIO_FRAME_MS // 1000  # a speaker's 20 ms packet, 960 samples
AUDIO_SEARCH_S = 2.0  # the onset must reach the viewer's audio within this long after it was spoken


def latency_at(rec: SessionRecord, frame: int) -> float:
    """The room's output delay (ms) when `frame` left: it starts as measured and may be raised live."""
    lat = rec.latency_ms
    for first, ms in rec.stats_after.get("latency_changes") or []:
        if first <= frame:
            lat = ms
    return lat


def clock_origin(rec: SessionRecord) -> float:
    """t0: min over emitted frames of emit - latency - f x 40 ms (every emit is at or after its due time)."""
    return min(t - (latency_at(rec, f) + f * FRAME_MS) / 1000 for f, t in rec.emitted.items())


def pct(values, q: float) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.percentile(values, q)), 1) if values else None


def summary(values) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0}
    a = np.asarray(values, float)
    return {
        "n": len(a),
        "mean": round(float(a.mean()), 1),
        "p50": round(float(np.percentile(a, 50)), 1),
        "p95": round(float(np.percentile(a, 95)), 1),
        "min": round(float(a.min()), 1),
        "max": round(float(a.max()), 1),
    }


def _frames_window(received: dict, first: int, last: int) -> tuple[np.ndarray | None, int]:
    """(T, H, W, 3) images of engine frames first..last as received; a lost frame repeats the one before
    it (what a player shows). Returns (frames or None if none arrived, number of lost frames)."""
    images, lost, previous = [], 0, None
    for f in range(first, last + 1):
        v = received.get(f)
        if v is None:
            lost += 1
            images.append(previous)
        else:
            previous = v.image
            images.append(previous)
    if previous is None:
        return None, lost
    fill = next(i for i in images if i is not None)
    return np.stack([fill if i is None else i for i in images]), lost


def _audio_arrival(rec: SessionRecord, peak: float, after: float) -> float | None:
    """When the onset's first loud sample reached the viewer's audio (played on arrival), or None."""
    for a in rec.audio:
        if a.received < after or a.pcm is None:
            continue
        if a.received > after + AUDIO_SEARCH_S:
            return None
        hit = find_onset(a.pcm.astype(np.float32) / 32768.0, peak)
        if hit is not None:
            return a.received + hit / WEBRTC_AUDIO_RATE
    return None


def analyze_onsets(rec: SessionRecord, motion: MotionConfig | None = None) -> list[dict]:
    motion = motion or MotionConfig()
    t0 = clock_origin(rec)
    received: dict[int, object] = {}
    for v in rec.video:
        received.setdefault(rec.first_pts + v.index, v)
    timings = rec.stats_after["timings_ms"]
    compute = {s: float(timings.get(f"{s}_ms") or 0.0) for s in COMPUTE}
    buffer_ms = float(np.mean(rec.buffered_ms)) if rec.buffered_ms else 0.0
    n = len(rec.boxes)
    out = []
    for b in rec.bursts:
        r: dict = {"character": b.character, "text": b.text}
        out.append(r)
        t_cap = rec.capture_start[b.character] + b.onset / WEBRTC_AUDIO_RATE
        lo = max(0, round((t_cap - t0) * WEBRTC_AUDIO_RATE) - rec.mix_first)
        hit = find_onset(rec.mix, b.peak, lo, lo + WEBRTC_AUDIO_RATE)
        if hit is None:
            r["error"] = "the onset never reached the room's output mix"
            continue
        m_on_ms = 1000.0 * (rec.mix_first + hit) / WEBRTC_AUDIO_RATE
        f_on = int(m_on_ms // FRAME_MS)
        in_frame = m_on_ms - f_on * FRAME_MS
        pos = f_on % rec.chunk_frames
        if f_on not in received or f_on not in rec.emitted:
            r["error"] = (
                f"frame {f_on} carrying the onset was {'not emitted' if f_on not in rec.emitted else 'lost'}"
            )
            continue
        recv_on, emit_on = received[f_on].received, rec.emitted[f_on]
        lat = latency_at(rec, f_on)
        # frames are decoded one by one: frame `pos` of its chunk waited for its own and earlier decodes
        done = (pos + 1) / rec.chunk_frames
        work = {s: v * done if s in PER_FRAME else v for s, v in compute.items()}
        stages = {
            "ingest": 1000.0 * (t0 - t_cap) + m_on_ms,
            "chunk_wait": rec.chunk_wait_ms - FRAME_MS * pos - in_frame,
            "tick": float(PULL_MS),
            **work,
            "headroom": lat - rec.chunk_wait_ms - PULL_MS - sum(work.values()) + FRAME_MS * pos,
            "clock_late": 1000.0 * (emit_on - t0) - lat - FRAME_MS * f_on,
            "transport": 1000.0 * (recv_on - emit_on),
        }
        r.update(frame=f_on, pipeline_ms=1000.0 * (recv_on - t_cap), stages_ms=stages)
        packet = 1000.0 * (PACKET_SAMPLES - b.onset % PACKET_SAMPLES) / WEBRTC_AUDIO_RATE
        r["ingest_parts_ms"] = {
            "mic_packet": packet,
            "engine_jitter_buffer": buffer_ms,
            "network_opus_aiortc": stages["ingest"] - packet - buffer_ms,
        }

        # the mouth: baseline ends where the model may first hear the onset (its lookahead)
        start = f_on - rec.lookahead_frames
        first = start - motion.baseline_frames
        frames, lost = _frames_window(received, first, f_on + motion.search_frames + motion.hold)
        r["lost_in_window"] = lost
        mouth = {}
        for k in range(n):
            found = (
                detect_motion_onset(frames, rec.boxes[k], start - first, motion)
                if frames is not None
                else None
            )
            mouth[k] = None if found is None or found.frame is None else first + found.frame
            if k == b.character and found is not None:
                r["detector"] = {
                    "threshold": round(found.threshold, 2),
                    "idle_mean": round(found.idle_mean, 2),
                    "idle_std": round(found.idle_std, 2),
                    "peak": round(found.peak, 2),
                }
        f_mouth = mouth[b.character]
        r["controls_moved"] = sum(mouth[k] is not None for k in range(n) if k != b.character)
        arrival = _audio_arrival(rec, b.peak, t_cap)
        r["av_same_instant_ms"] = (
            None if arrival is None else 1000.0 * (recv_on + in_frame / 1000.0 - arrival)
        )
        if f_mouth is not None:
            shown = next((received[f] for f in range(f_mouth, f_mouth + 10) if f in received), None)
            if shown is not None:
                r["mouth_frame"] = f_mouth
                r["glass_ms"] = 1000.0 * (shown.received - t_cap)
                r["response_ms"] = r["glass_ms"] - r["pipeline_ms"]
                r["av_mouth_ms"] = None if arrival is None else 1000.0 * (shown.received - arrival)
    return out


def _delta(before: dict, after: dict, key: str) -> int:
    return int(after[key]) - int(before[key])


def delivery(rec: SessionRecord) -> dict:
    """Frames as the viewer got them: rate, regularity, losses; and the room's own counters for the run."""
    times = np.array([v.received for v in rec.video])
    index = np.array([rec.first_pts + v.index for v in rec.video])
    intervals = np.diff(times) * 1000.0
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    gaps = np.diff(index)
    transport = [
        1000.0 * (v.received - rec.emitted[f])
        for v, f in zip(rec.video, index, strict=True)
        if f in rec.emitted
    ]
    b, a = rec.stats_before, rec.stats_after
    frames = _delta(b, a, "frames")
    repeated = _delta(b, a, "repeated_frames")
    return {
        "frames_received": len(times),
        "fps_delivered": round((len(times) - 1) / span, 2) if len(times) > 1 else None,
        "fps_fresh": round(1000.0 / FRAME_MS * (1 - repeated / frames), 2) if frames else None,
        "interval_ms": summary(intervals),
        "interval_jitter_ms": round(float(np.std(intervals)), 1) if len(intervals) else None,
        "interval_dev_p95_ms": pct(np.abs(intervals - FRAME_MS), 95),
        "lost_in_transport": int(np.clip(gaps - 1, 0, None).sum()) if len(gaps) else 0,
        "out_of_order": int((gaps <= 0).sum()) if len(gaps) else 0,
        "dropped_at_server": rec.dropped_at_server,
        "engine_frames": frames,
        "engine_repeated_frames": repeated,
        "skipped_chunks": _delta(b, a, "skipped_chunks"),
        "late_chunks": _delta(b, a, "late_chunks"),
        "chunks": _delta(b, a, "chunks"),
        "transport_all_frames_ms": summary(transport),
        "late_capture_frames": rec.late_capture_frames,
    }


def summarize(rec: SessionRecord, onsets: list[dict]) -> dict:
    """Per-run figures from the per-onset results."""
    ok = [o for o in onsets if "pipeline_ms" in o]
    detected = [o for o in ok if "glass_ms" in o]
    controls = sum(len(rec.boxes) - 1 for _ in ok)
    control_moved = sum(o["controls_moved"] for o in ok)
    rate = len(detected) / len(ok) if ok else 0.0
    control_rate = control_moved / controls if controls else None
    # with one character there is no other mouth to tell mouth motion from a picture that changes anyway
    valid = (
        None
        if control_rate is None
        else bool(rate >= MOUTH_VALID["min_detected"] and control_rate <= MOUTH_VALID["max_control"])
    )
    stages = {s: round(float(np.mean([o["stages_ms"][s] for o in ok])), 1) for s in STAGES} if ok else {}
    ingest = (
        {k: round(float(np.mean([o["ingest_parts_ms"][k] for o in ok])), 1) for k in INGEST_PARTS}
        if ok
        else {}
    )
    if detected:
        stages["response"] = round(float(np.mean([o["response_ms"] for o in detected])), 1)
    return {
        "onsets": len(onsets),
        "measured": len(ok),
        "errors": sorted({o["error"] for o in onsets if "error" in o}),
        "mouth": {
            "detected_rate": round(rate, 3),
            "controls_moved_rate": None if control_rate is None else round(control_rate, 3),
            "valid": valid,
            "rule": f"valid when the bound mouth moves after >= {MOUTH_VALID['min_detected']:.0%} of onsets "
            f"and the other mouths after <= {MOUTH_VALID['max_control']:.0%}; null: one character, no control",
        },
        "glass_to_glass_ms": summary([o["glass_ms"] for o in detected]),
        "pipeline_ms": summary([o["pipeline_ms"] for o in ok]),
        "response_ms": summary([o["response_ms"] for o in detected]),
        "stages_ms": stages,
        "ingest_parts_ms": ingest,
        "engine_input_underruns": rec.input_underruns,
        "av_offset_ms": {
            "same_instant": summary([o.get("av_same_instant_ms") for o in ok]),
            "mouth_onset": summary([o.get("av_mouth_ms") for o in detected]),
            "sign": "positive: the video is late against the audio",
        },
        "room": {
            "latency_ms": rec.latency_ms,
            "chunk_wait_ms": round(rec.chunk_wait_ms, 1),
            "timings_ms": rec.stats_after["timings_ms"],
            "steps_used": rec.stats_after["steps_used"],
            "engine_av_offset_ms": rec.stats_after["av_offset_ms"],
        },
        "delivery": delivery(rec),
    }
