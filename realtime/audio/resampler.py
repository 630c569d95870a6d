"""A stateful polyphase resampler: audio in blocks of any size, the same output as resampling it whole.

`scipy.signal.resample_poly` zero-pads every call, so calling it per block clicks at block edges. This
keeps the filter's history between blocks and computes each output sample exactly once, with the same
Kaiser-windowed FIR filter and alignment as `resample_poly`: the concatenated output of `push` + `flush`
equals `resample_poly(x_whole, up, down)` up to float rounding. The audio front end (`realtime.audio.ingest`)
runs one per incoming stream to bring 8-48 kHz input to the engine's 16 kHz.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import firwin

HALF_LEN_PER_RATE = 10  # filter half-length in units of max(up, down): resample_poly's default
KAISER_BETA = 5.0  # resample_poly's default window ("kaiser", 5.0): ~-45 dB stop band


class PolyphaseResampler:
    """Resample a mono stream from in_rate to out_rate block by block, without block-edge artefacts."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        g = math.gcd(in_rate, out_rate)
        self.in_rate, self.out_rate = in_rate, out_rate
        self.up, self.down = out_rate // g, in_rate // g
        up, down = self.up, self.down
        if up == down:  # same rate: a pass-through (push only converts to float32)
            h, self._skip = np.ones(1), 0
        else:
            half_len = HALF_LEN_PER_RATE * max(up, down)
            h = firwin(2 * half_len + 1, 1.0 / max(up, down), window=("kaiser", KAISER_BETA)) * up
            # resample_poly's alignment: pre-pad so that the filter's centre falls on an output sample
            pre_pad = down - half_len % down
            self._skip = (half_len + pre_pad) // down  # leading outputs that are filter delay, not signal
            h = np.concatenate([np.zeros(pre_pad), h])
        self.taps = math.ceil(len(h) / up)  # taps per polyphase branch
        h = np.concatenate([h, np.zeros(self.taps * up - len(h))])
        self._bank = h.reshape(self.taps, up).T.copy()  # (up, taps): bank[p, i] = h[p + i*up]
        self.reset()

    @property
    def delay_s(self) -> float:
        """How far input must run ahead of an output sample's time before it is emitted (seconds)."""
        return self._skip / self.out_rate

    def reset(self) -> None:
        """Forget the stream: the next push starts a new one (zero history, like resample_poly's padding)."""
        self._hist = np.zeros(self.taps - 1, np.float64)  # input samples from global index _hist_start on
        self._hist_start = -(self.taps - 1)
        self._n_in = 0  # input samples seen
        self._next = self._skip  # next index of upfirdn's full output to emit
        self._n_out = 0  # output samples emitted

    def push(self, x: np.ndarray) -> np.ndarray:
        """Feed input samples (1-D float); return every output sample that is now complete (float32)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"resampler input must be 1-D, got shape {x.shape}")
        if self.up == self.down:
            self._n_in += len(x)
            self._n_out += len(x)
            return x.astype(np.float32)
        self._hist = np.concatenate([self._hist, x])
        self._n_in += len(x)
        return self._emit(self._n_in)

    def flush(self) -> np.ndarray:
        """End of stream: the remaining outputs, so that the total is ceil(n_in * up / down) samples."""
        total = -(-self._n_in * self.up // self.down)
        if self.up == self.down or self._n_out >= total:
            return np.zeros(0, np.float32)
        last_j = self._skip + total - 1
        need = last_j * self.down // self.up + 1  # input index range the last output reads
        pad = max(0, need - self._n_in)
        self._hist = np.concatenate([self._hist, np.zeros(pad)])
        return self._emit(self._n_in + pad, limit=total)

    def _emit(self, available: int, limit: int | None = None) -> np.ndarray:
        # output j of upfirdn reads inputs m_hi - i for i < taps, with m_hi = floor(j * down / up)
        stop = (available * self.up - 1) // self.down + 1  # first j whose m_hi is not yet available
        if limit is not None:
            stop = min(stop, self._skip + limit)
        if stop <= self._next:
            return np.zeros(0, np.float32)
        j = np.arange(self._next, stop)
        m_hi = j * self.down // self.up
        phase = j * self.down % self.up
        idx = (m_hi - self._hist_start)[:, None] - np.arange(self.taps)[None, :]  # (n_out, taps)
        y = np.einsum("ot,ot->o", self._bank[phase], self._hist[idx])
        self._next = stop
        self._n_out += len(y)
        keep_from = self._next * self.down // self.up - (self.taps - 1)  # oldest input still needed
        drop = keep_from - self._hist_start
        if drop > 0:
            self._hist = self._hist[drop:]
            self._hist_start = keep_from
        return y.astype(np.float32)
