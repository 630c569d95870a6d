"""What a diarizer is asked to do (`DiarizerConfig`) and what it answers (`Decision`), apart from the
diarizer itself so that its streaming core and speaker model can name them without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from realtime.errors import DiarizationError
from realtime.media import DIARIZER_LOOKAHEAD_MS, MAX_CHARACTERS

MODES = ("enroll", "online")


@dataclass(frozen=True)
class DiarizerConfig:
    """How the diarizer trades accuracy, latency and CPU (defaults chosen on world seeds 1-12 with
    `python -m realtime.bench.diarization --tuning`; held-out scores in docs/audio.md)."""

    mode: str = "enroll"  # "enroll": centroids from each character's voice; "online": clusters as it goes
    window_ms: int = 1000  # embedding window: 0.4 s is noisy, 1.2 s already blurs turn changes
    hop_ms: int = 80  # a window every 2 video frames: 40 costs 1.7x the CPU for the same accuracy
    lookahead_ms: int = DIARIZER_LOOKAHEAD_MS  # a frame is decided this long after it ends: added latency
    max_speakers: int = MAX_CHARACTERS  # online mode opens at most this many clusters
    overlap: bool = False  # enroll: also bind a second speaker in overlapped speech (costs single frames)
    overlap_threshold: float = 0.375  # share of a frame's energy that makes the second speaker audible
    overlap_smooth_frames: int = 7  # frames (centred) the energy shares are averaged over: 280 ms
    share_weight: float = 0.4  # enroll: energy shares added to the embedding score for the top (+3 points)
    vad: str = "webrtc"  # backend of realtime.audio.vad that gates silence
    vad_spread_frames: int = 0  # a frame is speech if VAD heard speech within this many frames of it
    join_similarity: float = 0.85  # online: a window this close to a centroid is that speaker
    update_similarity: float = 0.9  # online: only windows this close move the centroid (no drift to a blend)
    new_speaker_similarity: float = 0.75  # online: windows below this for every centroid may open a speaker
    new_speaker_ms: int = 400  # online: consecutive such windows spanning this long open one
    min_window_ms: int = 200  # windows are shorter than window_ms only at the stream start; never this short

    def check(self) -> DiarizerConfig:
        """Return self if every field is usable, else raise DiarizationError naming the field."""
        if self.mode not in MODES:
            raise DiarizationError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not (400 <= self.window_ms <= 3000 and self.window_ms % 10 == 0):
            raise DiarizationError(
                f"window_ms must be a multiple of 10 in [400, 3000], got {self.window_ms!r}"
            )
        if not (10 <= self.hop_ms <= self.window_ms and self.hop_ms % 10 == 0):
            raise DiarizationError(f"hop_ms must be a multiple of 10 in [10, window_ms], got {self.hop_ms!r}")
        need = 40 * max(self.vad_spread_frames, self.overlap_smooth_frames // 2 + 1, 1)
        if not need <= self.lookahead_ms <= 5000:
            raise DiarizationError(f"lookahead_ms must be in [{need}, 5000], got {self.lookahead_ms!r}")
        if not 1 <= self.max_speakers <= MAX_CHARACTERS:
            raise DiarizationError(
                f"max_speakers must be in [1, {MAX_CHARACTERS}], got {self.max_speakers!r}"
            )
        if not 0.0 < self.overlap_threshold < 1.0:
            raise DiarizationError(f"overlap_threshold must be in (0, 1), got {self.overlap_threshold!r}")
        return self


Decision = tuple[int, int, int | None]  # (start_sample, end_sample, character or None for silence)
