"""Who a mixed stream's windows are scored against: enrolled centroids, or clusters found online.

With enrollment the centroids are fixed. Online (leader-follower clustering): a speech window close to
a centroid joins it, and only very close ones move it, so windows that straddle two voices cannot blur
a centroid into a blend; a run of windows far from every centroid, and alike, opens a new speaker, up to
`max_speakers`; windows in between (ambiguous) do neither. Frames are scored against the centroids at
decision time, so a speaker opened online also claims the frames of the windows that opened it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from realtime.audio.diarizer_config import DiarizerConfig


def unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


class SpeakerModel:
    """Centroids by slot (slot i = character i): fixed from enrollment, or opened and moved online."""

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
        self._sums = [c.copy() for c in centroids]  # online: the member windows behind each centroid
        self._candidate: list[np.ndarray] = []  # online: consecutive far windows that may be a new voice

    def scores(self, emb: np.ndarray) -> np.ndarray:
        """(slots,) cosine similarity to each centroid; -1 for a slot with no speaker yet."""
        out = np.full(self.slots, -1.0, np.float32)
        if self.centroids:
            out[: len(self.centroids)] = np.stack(self.centroids) @ emb
        return out

    def observe(self, emb: np.ndarray, speechy: bool) -> None:
        """Online clustering step for one window (enroll mode ignores it)."""
        if not self.online or not speechy or not np.any(emb):
            return
        cfg = self.config
        sims = np.stack(self.centroids) @ emb if self.centroids else np.zeros(0)
        best = float(sims.max()) if len(sims) else -1.0
        if best >= cfg.join_similarity:
            k = int(sims.argmax())
            if best >= cfg.update_similarity:
                self._sums[k] = self._sums[k] + emb
                self.centroids[k] = unit(self._sums[k])
            self._candidate.clear()
        elif best >= cfg.new_speaker_similarity:  # ambiguous: neither join nor open
            self._candidate.clear()
        else:
            if self._candidate and float(unit(np.sum(self._candidate, axis=0)) @ emb) < cfg.join_similarity:
                self._candidate.clear()  # the far windows are not one voice: collect again
            self._candidate.append(emb)
            needed = max(1, cfg.new_speaker_ms // cfg.hop_ms)
            if len(self._candidate) >= needed and len(self.centroids) < self.slots:
                self._sums.append(np.sum(self._candidate, axis=0))
                self.centroids.append(unit(self._sums[-1]))
                self.characters.append(len(self.characters))
                self._candidate.clear()
