"""The streaming core of `realtime.diarization`: windows, scores, clusters and per-frame decisions.

`DiarizationStream` holds everything one mixed stream needs between pushes (STFT and VAD state, the
scores each 40 ms frame has collected, overlap energies); `SpeakerModel` holds who it scores against.
A window is embedded as soon as its audio is in; frame f is decided once the stream reaches
(f + 1) * 40 ms + lookahead, from exactly the windows that have ended by then, so decisions do not
depend on how the audio was cut into blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from realtime.media import AUDIO_SAMPLE_RATE, SAMPLES_PER_FRAME
from realtime.speaker_encoder import HOP, N_FFT, N_MELS, SpeakerEncoder, level_gain, mel_frames
from realtime.stream_stft import StreamingSTFT
from realtime.vad import FRAME_SAMPLES, VoiceActivity
from realtime.voice_dictionary import VoiceShares

if TYPE_CHECKING:
    from realtime.diarization import Decision, DiarizerConfig

MELS_PER_FRAME = SAMPLES_PER_FRAME // HOP  # 4 mel frames per 40 ms frame
VADS_PER_FRAME = SAMPLES_PER_FRAME // FRAME_SAMPLES  # 2 VAD frames per 40 ms frame
SPEECHY_SHARE = 0.8  # online: only windows this full of speech move or open clusters
BATCH = 64  # windows embedded per encoder call when a long block arrives (split())


class SpeakerModel:
    """Centroids to score windows against: fixed from enrollment, or clusters opened and moved online."""

    def __init__(
        self,
        centroids: list[np.ndarray],
        characters: list[int],
        online: bool,
        config: DiarizerConfig,
        dictionaries: list[np.ndarray] | None,
    ) -> None:
        self.centroids = [c.copy() for c in centroids]
        self.characters = list(characters)  # slot -> character index
        self.online, self.config, self.dictionaries = online, config, dictionaries
        self.slots = config.max_speakers if online else len(centroids)
        self._sums = [c.copy() for c in centroids]  # online: running sums behind each centroid
        self._candidate: list[np.ndarray] = []  # online: consecutive windows far from every centroid

    def scores(self, emb: np.ndarray) -> np.ndarray:
        """(slots,) cosine similarity to each centroid; -1 for a slot with no speaker yet."""
        out = np.full(self.slots, -1.0, np.float32)
        if self.centroids:
            out[: len(self.centroids)] = np.stack(self.centroids) @ emb
        return out

    def observe(self, emb: np.ndarray, speechy: bool) -> None:
        """Online clustering: join the nearest cluster, or open a new one after enough far windows."""
        if not self.online or not speechy or not np.any(emb):
            return
        cfg = self.config
        sims = np.stack(self.centroids) @ emb if self.centroids else np.zeros(0)
        if len(sims) and sims.max() >= cfg.join_similarity:
            k = int(sims.argmax())
            self._sums[k] = self._sums[k] + emb
            self.centroids[k] = self._sums[k] / np.linalg.norm(self._sums[k])
            self._candidate.clear()
            return
        if self._candidate and float(self._unit(self._candidate) @ emb) < cfg.join_similarity:
            self._candidate.clear()  # the far windows are not one voice: start collecting again
        self._candidate.append(emb)
        if len(self._candidate) >= cfg.new_speaker_windows and len(self.centroids) < self.slots:
            self._sums.append(np.sum(self._candidate, axis=0))
            self.centroids.append(self._unit(self._candidate))
            self.characters.append(len(self.characters))
            self._candidate.clear()

    @staticmethod
    def _unit(embs: list[np.ndarray]) -> np.ndarray:
        m = np.sum(embs, axis=0)
        return m / max(float(np.linalg.norm(m)), 1e-9)


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
        self._acc: dict[int, list] = {}  # frame -> [score sum (slots,), windows counted]
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
        speech = self._vad20.get(s // 2, e // 2)
        self.model.observe(emb, bool(len(speech)) and speech.mean() >= SPEECHY_SHARE)
        scores = self.model.scores(emb)
        available = (e - 1) * HOP + N_FFT  # samples the window needed
        first = max(
            -(-(s - 2) // MELS_PER_FRAME),  # frame centres (mel 4f + 2) inside [s, e)
            -(-(available - self._lookahead) // SAMPLES_PER_FRAME) - 1,  # frames whose deadline it meets
            self._next_frame,
        )
        last = (e - 3) // MELS_PER_FRAME
        for f in range(first, last + 1):
            acc = self._acc.setdefault(f, [np.zeros(self.model.slots, np.float64), 0])
            acc[0] += scores
            acc[1] += 1

    # -- decisions ----------------------------------------------------------------------------------------
    def _decide(self) -> list[Decision]:
        labels: list[tuple[int, list[int | None]]] = []
        while (self._next_frame + 1) * SAMPLES_PER_FRAME + self._lookahead <= self.received:
            f = self._next_frame
            labels.append((f, self._label(f)))
            self._acc.pop(f, None)
            self._next_frame += 1
        spread = self.config.vad_spread_frames
        self._vad20.trim((self._next_frame - spread) * VADS_PER_FRAME)
        if self._energy is not None:
            self._energy.trim((self._next_frame - self.config.overlap_smooth_frames) * MELS_PER_FRAME)
        return _runs(labels)

    def _label(self, f: int) -> list[int | None]:
        spread = self.config.vad_spread_frames
        vad = self._vad20.get((f - spread) * VADS_PER_FRAME, (f + spread + 1) * VADS_PER_FRAME)
        acc = self._acc.get(f)
        if not vad.any() or acc is None or acc[1] == 0 or not self.model.centroids:
            return [None]
        scores = acc[0] / acc[1]
        top = int(np.argmax(scores))
        if scores[top] <= -1.0:  # online: no speaker yet
            return [None]
        out = [self.model.characters[top]]
        if self._energy is not None and len(self.model.characters) > 1:
            half = self.config.overlap_smooth_frames // 2
            energy = self._energy.get((f - half) * MELS_PER_FRAME, (f + half + 1) * MELS_PER_FRAME).sum(0)
            share = energy / max(float(energy.sum()), 1e-12)
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
