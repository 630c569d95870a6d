"""Speaker embeddings for diarization: resemblyzer's GE2E encoder (256-d) on short windows of a stream.

resemblyzer ships its weights (`pretrained.pt`) in the wheel, so nothing is fetched at run time. Its
input is a 40-band power mel spectrogram (25 ms / 10 ms) of audio at -30 dBFS; here the mel comes from a
streaming STFT and each window is level-normalised by scaling its mel (power scales with gain squared),
so embeddings are computed per window as audio arrives instead of per utterance.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from realtime.errors import AudioBackendError
from realtime.media import AUDIO_SAMPLE_RATE

N_FFT = 400  # samples (25 ms): resemblyzer's mel_window_length
HOP = 160  # samples (10 ms): resemblyzer's mel_window_step
N_MELS = 40  # resemblyzer's mel_n_channels
EMBED_DIM = 256
TARGET_DBFS = -30.0  # resemblyzer's audio_norm_target_dBFS: the level it was trained on
MIN_RMS = 1e-4  # a window quieter than -80 dBFS is not amplified further (it is silence anyway)


@functools.cache
def _encoder() -> torch.nn.Module:
    try:
        from resemblyzer import VoiceEncoder
    except ImportError as e:  # the Makefile installs it with --no-deps; see docs/audio.md
        raise AudioBackendError(
            f"speaker embeddings need resemblyzer (pip install --no-deps resemblyzer): {e}"
        ) from e
    encoder = VoiceEncoder("cpu", verbose=False)
    encoder.eval()
    return encoder


@functools.cache
def mel_basis() -> np.ndarray:
    """(N_FFT//2 + 1, N_MELS) Slaney mel filters, exactly what resemblyzer's librosa call uses."""
    import librosa

    return librosa.filters.mel(sr=AUDIO_SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).T.astype(np.float32)


def mel_frames(power_spec: np.ndarray) -> np.ndarray:
    """(T, N_FFT//2 + 1) power spectrogram -> (T, N_MELS) mel power."""
    return power_spec @ mel_basis()


def level_gain(audio: np.ndarray) -> float:
    """The power gain that brings a window to TARGET_DBFS RMS (applied to its mel, not its samples)."""
    rms = max(float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))), MIN_RMS)
    return (10.0 ** (TARGET_DBFS / 20.0) / rms) ** 2


@functools.cache
def _one_thread_worker() -> ThreadPoolExecutor:
    # torch's intra-op thread count is per calling thread: this worker's is 1, whatever the caller's is.
    # A batch-of-one LSTM gains nothing from a second thread, and on the shared 2-core CPU the second
    # one spins: the diarization tests took 271 s with 2 threads against 12 s with 1 under similar load.
    return ThreadPoolExecutor(
        1, thread_name_prefix="speaker-encoder", initializer=torch.set_num_threads, initargs=(1,)
    )


class SpeakerEncoder:
    """Batches of level-normalised mel windows -> unit-norm 256-d speaker embeddings (numpy)."""

    def __init__(self) -> None:
        self._model = _encoder()  # one shared instance: loading is cheap, but the weights need not repeat

    def embed(self, mels: np.ndarray) -> np.ndarray:
        """(B, T, N_MELS) float32 mel power (already level-normalised) -> (B, EMBED_DIM) float32."""
        if mels.ndim != 3 or mels.shape[2] != N_MELS:
            raise ValueError(f"mels must be (batch, frames, {N_MELS}), got {mels.shape}")
        if len(mels) == 0:
            return np.zeros((0, EMBED_DIM), np.float32)
        return _one_thread_worker().submit(self._run, np.ascontiguousarray(mels, np.float32)).result()

    def _run(self, mels: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self._model(torch.from_numpy(mels)).numpy()
        return np.nan_to_num(out)  # an all-silent window has a zero embedding, not NaN
