"""A room's output latency: fixed, or measured at start and then adapted to the live load.

The engine Room (realtime.engine.room) owns one LatencyPolicy: it starts it with the latency it measured (or
was given), tells it of every chunk that missed or met its first frame's deadline, and reads `delay_s`
for its deadlines and output ticks. A change moves audio and video together, so they stay aligned.
"""

from __future__ import annotations

import logging
from collections import deque

log = logging.getLogger(__name__)

# The warm-up cannot see the live load (WebRTC, the event loop), so a measured latency is raised by
# RAISE_STEP_MS when chunks keep missing their first frame's deadline (or are skipped): misses spread
# over at least MISS_SPAN_S within MISS_WINDOW_S, at most once per RAISE_INTERVAL_S and MAX_RAISE_MS in
# all (an overloaded machine is the overload policy's job). One hiccup (a page fault, a GC pause, a stall
# of a few hundred ms) makes a burst of misses, not a trend. After LOWER_AFTER_S without a miss it comes
# back down a step, never below the measured start; a raise soon after a lowering doubles that wait (up
# to MAX_LOWER_AFTER_S), so it settles, not swings.
RAISE_STEP_MS = 10  # a multiple of realtime.engine.room.PULL_MS: the output ticks stay on the wake-up grid
RAISE_INTERVAL_S = 1.0
MISS_SPAN_S = 1.0
MISS_WINDOW_S = 10.0
MAX_RAISE_MS = 100
LOWER_AFTER_S = 30.0
MAX_LOWER_AFTER_S = 600.0
LATENCY_LOG = 64  # latency changes kept for stats (the start is always kept)


class LatencyPolicy:
    """The output delay of one room, raised after a trend of missed deadlines and lowered after quiet."""

    def __init__(self) -> None:
        self.delay_s = 0.0  # read by the room's clock and, for deadlines, by its worker thread
        self.adaptive = False  # False: a fixed latency (latency_ms given), never changed
        self.changes: list[list[float]] = []  # [first frame, latency ms] at the start and each change
        self.lower_after_s = LOWER_AFTER_S  # grows when a lowering proves too optimistic
        self._last_change = -1e9  # clock time of the last raise or lowering
        self._last_lower = -1e9
        self._misses: deque[float] = deque(maxlen=256)  # clock times of misses within MISS_WINDOW_S

    @property
    def delay_ms(self) -> float:
        """The output delay as reported (0.1 ms)."""
        return round(1e3 * self.delay_s, 1)

    def start(self, delay_s: float, adaptive: bool) -> None:
        """The latency at media time 0: the floor a measured latency never goes below."""
        self.delay_s, self.adaptive = delay_s, adaptive
        self.changes = [[0, self.delay_ms]]

    def missed(self, now: float, next_frame: int) -> None:
        """Missed deadlines: both outputs pause RAISE_STEP_MS once (A/V stays aligned), later chunks gain it."""
        self._misses.append(now)
        while now - self._misses[0] > MISS_WINDOW_S:
            self._misses.popleft()
        if (
            not self.adaptive
            or now - self._misses[0] < MISS_SPAN_S  # a burst from one hiccup so far
            or 1e3 * self.delay_s + RAISE_STEP_MS > self.changes[0][1] + MAX_RAISE_MS + 1e-6
            or now - self._last_change < RAISE_INTERVAL_S
        ):
            return
        if now - self._last_lower < self.lower_after_s:  # the last lowering went too far: wait longer
            self.lower_after_s = min(2 * self.lower_after_s, MAX_LOWER_AFTER_S)
        self._change(+RAISE_STEP_MS, now, next_frame, "raised after missed deadlines")

    def met(self, now: float, next_frame: int) -> None:
        """LOWER_AFTER_S without a miss: the output goes out a step earlier (no audio or frame is dropped)."""
        quiet = now - max(self._last_change, self._misses[-1] if self._misses else -1e9)
        above_start = 1e3 * self.delay_s - RAISE_STEP_MS >= self.changes[0][1] - 1e-6
        if self.adaptive and quiet >= self.lower_after_s and above_start:
            self._last_lower = now
            self._change(-RAISE_STEP_MS, now, next_frame, "lowered after a quiet spell")

    def _change(self, step_ms: float, now: float, next_frame: int, why: str) -> None:
        self.delay_s += step_ms / 1000
        self._last_change = now
        self.changes.append([next_frame, self.delay_ms])
        if len(self.changes) > LATENCY_LOG:
            del self.changes[1]  # the start stays: it is the floor
        log.info("room latency %s: %.0f ms", why, 1e3 * self.delay_s)
