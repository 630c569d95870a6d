"""Overlapped-speech detection with per-speaker spectral dictionaries (supervised NMF).

A speaker embedding of a window says who dominates it, not whether a second voice speaks under the
first. With enrollment audio, each speaker also gets a small non-negative dictionary of magnitude
spectra (NMF, KL divergence); the mix's spectrum is then explained frame by frame as a sum of all the
dictionaries' atoms, and each speaker's share of the energy says who is audible in that 10 ms frame.
Each frame is solved on its own with the dictionaries fixed, so it streams with no lookahead.
"""

from __future__ import annotations

import contextlib
import functools
import itertools

import numpy as np

from realtime.audio.stream_stft import StreamingSTFT

N_FFT = 512  # samples (32 ms): enough resolution to separate the harmonics of two voices
HOP = 160  # samples (10 ms): 4 frames per 40 ms video frame
ATOMS = 20  # spectra per speaker: more fits the other speakers' voices too
LEARN_ITERS = 150  # multiplicative updates when learning a dictionary (~0.1 s for 6 s of audio)
SOLVE_ITERS = 60  # multiplicative updates per block of mix frames (activations only)
ACTIVE_FRACTION = 0.05  # enrollment frames quieter than this share of the loudest are not learned
EPS = 1e-9


@functools.cache
def _blas() -> object:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager:
    """These products are small: extra OpenBLAS threads only spin and steal the engine's two cores
    (measured: 20x slower NMF while the generator runs), so they run on the calling thread."""
    return _blas().limit(limits=1, user_api="blas")


def magnitude(audio: np.ndarray) -> np.ndarray:
    """(frames, N_FFT//2 + 1) magnitude spectrogram of a whole signal (the streaming STFT's framing)."""
    return StreamingSTFT(N_FFT, HOP, power=1.0).push(audio)


def learn_dictionary(audio: np.ndarray, atoms: int = ATOMS, seed: int = 0) -> np.ndarray:
    """(N_FFT//2 + 1, atoms) unit-sum spectra that explain one speaker's enrollment audio."""
    v = magnitude(audio).T.astype(np.float64)  # (F, T)
    energy = v.sum(0)
    v = v[:, energy > ACTIVE_FRACTION * max(float(energy.max()), EPS)]
    if v.shape[1] < atoms:
        raise ValueError(f"need at least {atoms} voiced frames to learn a voice dictionary, got {v.shape[1]}")
    rng = np.random.default_rng(seed)
    w = rng.random((v.shape[0], atoms)) + 0.1
    h = rng.random((atoms, v.shape[1])) + 0.1
    with one_blas_thread():
        for _ in range(LEARN_ITERS):  # Lee & Seung KL updates, renormalising atoms to unit sum
            h *= (w.T @ (v / (w @ h + EPS))) / (w.sum(0)[:, None] + EPS)
            w *= ((v / (w @ h + EPS)) @ h.T) / (h.sum(1)[None, :] + EPS)
            scale = w.sum(0, keepdims=True)
            w /= scale
            h *= scale.T
    return w.astype(np.float32)


class VoiceShares:
    """Streams a mix through fixed per-speaker dictionaries: each speaker's energy per 10 ms frame."""

    def __init__(self, dictionaries: list[np.ndarray]) -> None:
        self.k = len(dictionaries)
        self._atoms = [d.shape[1] for d in dictionaries]
        self._w = np.concatenate(dictionaries, axis=1).astype(np.float64)  # (F, K*atoms)
        self._wsum = self._w.sum(0)[:, None]
        self._stft = StreamingSTFT(N_FFT, HOP, power=1.0)

    @property
    def frames(self) -> int:
        return self._stft.frames

    def push(self, audio: np.ndarray) -> np.ndarray:
        """(K, new frames) float32: each speaker's explained energy in every frame the audio completes."""
        v = self._stft.push(audio).T.astype(np.float64)  # (F, T)
        if v.shape[1] == 0:
            return np.zeros((self.k, 0), np.float32)
        h = np.full((self._w.shape[1], v.shape[1]), max(float(v.sum(0).mean()), EPS) / self._w.shape[1])
        with one_blas_thread():
            for _ in range(SOLVE_ITERS):
                h *= (self._w.T @ (v / (self._w @ h + EPS))) / (self._wsum + EPS)
        energy = h * self._wsum  # atoms have unit sum, so this is each atom's share of the magnitude
        bounds = np.cumsum([0, *self._atoms])
        return np.stack([energy[a:b].sum(0) for a, b in itertools.pairwise(bounds)]).astype(np.float32)
