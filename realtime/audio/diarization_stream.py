"""The streaming core of `realtime.audio.diarization`: windows, scores, clusters and per-frame decisions.

`DiarizationStream` holds everything one mixed stream needs between pushes (STFT and VAD state, the
windows each 40 ms frame will be scored on, overlap energies); `SpeakerModel` holds who it scores against.
A window is embedded as soon as its audio is in; frame f is decided once the stream reaches
(f + 1) * 40 ms + lookahead, from exactly the windows that have ended by then, so decisions do not
depend on how the audio was cut into blocks.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from realtime.audio.speaker_encoder import HOP, N_FFT, N_MELS, SpeakerEncoder, level_gain, mel_frames
from realtime.audio.speaker_model import SpeakerModel
from realtime.audio.stream_stft import StreamingSTFT
from realtime.audio.vad import FRAME_SAMPLES, VoiceActivity
from realtime.audio.voice_dictionary import VoiceShares
from realtime.media import AUDIO_SAMPLE_RATE, SAMPLES_PER_FRAME

if TYPE_CHECKING:
    from realtime.audio.diarizer_config import Decision, DiarizerConfig

MELS_PER_FRAME = SAMPLES_PER_FRAME // HOP  # 4 mel frames per 40 ms frame
VADS_PER_FRAME = SAMPLES_PER_FRAME // FRAME_SAMPLES  # 2 VAD frames per 40 ms frame
SPEECHY_SHARE = 0.8  # online: only windows this full of speech move or open clusters
BATCH = 64  # windows embedded per encoder call when a long block arrives (split())


class _Series:
    """An append-only array indexed by absolute position, trimmed from the front as it is consumed."""

    def __init__(self, width: tuple[int, ...] = (), dtype: type = np.float32) -> None:
        self.data = np.zeros((0, *width), dtype)
        self.start = 0

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def append(self, values: np.ndarray) -> None:
        self.data = np.concatenate([self.data, values.astype(self.data.dtype)])

    def get(self, a: int, b: int) -> np.ndarray:
        return self.data[max(a, self.start) - self.start : max(b, self.start) - self.start]

    def trim(self, before: int) -> None:
        cut = min(max(0, before - self.start), len(self.data))
        self.data, self.start = self.data[cut:], self.start + cut


class DiarizationStream:
    """One mixed stream's state: push 16 kHz audio, get per-frame decisions lookahead_ms late."""

    def __init__(self, config: DiarizerConfig, model: SpeakerModel, encoder: SpeakerEncoder) -> None:
        self.config, self.model, self.encoder = config, model, encoder
        self.received = 0
        self._wf, self._hf = config.window_ms // 10, config.hop_ms // 10  # window and hop, mel frames
        self._lookahead = AUDIO_SAMPLE_RATE * config.lookahead_ms // 1000  # samples
        self._vad = VoiceActivity(config.vad, hangover_ms=0)
        self._vad20 = _Series(dtype=bool)
        self._stft = StreamingSTFT(N_FFT, HOP)
        self._mel = _Series((N_MELS,))
        self._hop_energy = _Series()  # mean square of samples [j*HOP, (j+1)*HOP): window levels
        self._pending = np.zeros(0, np.float32)  # samples not yet in a whole hop
        self._next_window = 0  # window w ends at mel frame (w + 1) * hop
        self._windows_kept: deque[tuple[int, int, np.ndarray]] = deque()  # (first, last frame, embedding)
        dicts = model.dictionaries
        self._shares = VoiceShares(dicts) if dicts else None
        self._energy = _Series((len(dicts),)) if dicts else None  # (10 ms frame, speaker) energy
        self._next_frame = 0

    # -- input --------------------------------------------------------------------------------------------
    def push(self, audio: np.ndarray) -> list[Decision]:
        self.received += len(audio)
        self._vad20.append(self._vad.process(audio))
        self._pending = np.concatenate([self._pending, audio])
        n = len(self._pending) // HOP
        hops = self._pending[: n * HOP].reshape(n, HOP).astype(np.float64)
        self._hop_energy.append(np.mean(hops**2, axis=1))
        self._pending = self._pending[n * HOP :]
        self._mel.append(mel_frames(self._stft.push(audio)))
        if self._shares is not None:
            self._energy.append(self._shares.push(audio).T)
        self._windows()
        return self._decide()

    def flush(self) -> list[Decision]:
        """Pad with silence until every real frame is decided; drop what the padding alone produced."""
        real = self.received
        frames = -(-real // SAMPLES_PER_FRAME)
        pad = max(0, frames * SAMPLES_PER_FRAME + self._lookahead - real)
        out = []
        for start, end, character in self.push(np.zeros(pad, np.float32)):
            if start < real:
                out.append((start, min(end, real), character))
        return out

    # -- windows ------------------------------------------------------------------------------------------
    def _windows(self) -> None:
        ready = []
        min_frames = self.config.min_window_ms // 10
        while (self._next_window + 1) * self._hf <= self._mel.end:
            e = (self._next_window + 1) * self._hf
            s = max(0, e - self._wf)
            self._next_window += 1
            if e - s >= min_frames:
                ready.append((s, e))
        # windows of one length batch together (only the first second has shorter ones)
        for i in range(0, len(ready), BATCH):
            group = ready[i : i + BATCH]
            for length in sorted({e - s for s, e in group}):
                same = [(s, e) for s, e in group if e - s == length]
                mels = np.stack([self._mel.get(s, e) * self._gain(s, e) for s, e in same])
                for (s, e), emb in zip(same, self.encoder.embed(mels), strict=True):
                    self._score_window(s, e, emb)
        self._mel.trim((self._next_window + 1) * self._hf - self._wf)
        self._hop_energy.trim((self._next_window + 1) * self._hf - self._wf)

    def _gain(self, s: int, e: int) -> float:
        energy = self._hop_energy.get(s, e)
        return level_gain(np.sqrt(energy)) if len(energy) else 1.0

    def _score_window(self, s: int, e: int, emb: np.ndarray) -> None:
        """Let the model see the window, and keep it for the frames it covers and reaches in time."""
        speech = self._vad20.get(s // 2, e // 2)
        self.model.observe(emb, bool(len(speech)) and speech.mean() >= SPEECHY_SHARE)
        available = (e - 1) * HOP + N_FFT  # samples the window needed
        first = max(
            -(-(s - 2) // MELS_PER_FRAME),  # frame centres (mel 4f + 2) inside [s, e)
            -(-(available - self._lookahead) // SAMPLES_PER_FRAME) - 1,  # frames whose deadline it meets
            self._next_frame,
        )
        last = (e - 3) // MELS_PER_FRAME
        if first <= last:
            self._windows_kept.append((first, last, emb))

    # -- decisions ----------------------------------------------------------------------------------------
    def _decide(self) -> list[Decision]:
        labels: list[tuple[int, list[int | None]]] = []
        while (self._next_frame + 1) * SAMPLES_PER_FRAME + self._lookahead <= self.received:
            f = self._next_frame
            labels.append((f, self._label(f)))
            self._next_frame += 1
            while self._windows_kept and self._windows_kept[0][1] < self._next_frame:
                self._windows_kept.popleft()  # windows end in order, so the oldest end first
        spread = self.config.vad_spread_frames
        self._vad20.trim((self._next_frame - spread) * VADS_PER_FRAME)
        if self._energy is not None:
            self._energy.trim((self._next_frame - self.config.overlap_smooth_frames) * MELS_PER_FRAME)
        return _runs(labels)

    def _label(self, f: int) -> list[int | None]:
        spread = self.config.vad_spread_frames
        vad = self._vad20.get((f - spread) * VADS_PER_FRAME, (f + spread + 1) * VADS_PER_FRAME)
        embs = [emb for first, last, emb in self._windows_kept if first <= f <= last]
        if not vad.any() or not embs or not self.model.centroids:
            return [None]
        # scored now, not when embedded: a speaker opened online meanwhile also claims its first windows
        scores = np.mean([self.model.scores(emb) for emb in embs], axis=0)
        share = None
        if self._energy is not None:
            half = self.config.overlap_smooth_frames // 2
            energy = self._energy.get((f - half) * MELS_PER_FRAME, (f + half + 1) * MELS_PER_FRAME).sum(0)
            share = energy / max(float(energy.sum()), 1e-12)
            scores = scores + self.config.share_weight * share
        top = int(np.argmax(scores))
        if scores[top] <= -1.0:  # online: no speaker yet
            return [None]
        out = [self.model.characters[top]]
        if share is not None and self.config.overlap and len(self.model.characters) > 1:
            share[top] = -1.0
            second = int(np.argmax(share))
            if share[second] > self.config.overlap_threshold:
                out.append(self.model.characters[second])
        return out


def _runs(labels: list[tuple[int, list[int | None]]]) -> list[Decision]:
    """Per-frame labels -> (start_sample, end_sample, label) runs of consecutive frames, sorted by start."""
    open_runs: dict[int | None, list[int]] = {}
    out: list[Decision] = []
    for f, frame_labels in labels:
        for label in list(open_runs):
            if label not in frame_labels:
                a, b = open_runs.pop(label)
                out.append((a * SAMPLES_PER_FRAME, b * SAMPLES_PER_FRAME, label))
        for label in frame_labels:
            run = open_runs.setdefault(label, [f, f + 1])
            run[1] = f + 1
    out += [(a * SAMPLES_PER_FRAME, b * SAMPLES_PER_FRAME, label) for label, (a, b) in open_runs.items()]
    return sorted(out, key=lambda d: (d[0], -1 if d[2] is None else d[2]))
