"""How many threads the model gets in a live engine (torch and ONNX Runtime intra-op pools).

Kept free of torch so command lines can show the default without loading it.
"""

from __future__ import annotations

import os


def live_threads() -> int:
    """Every core but one, which the event loop needs (WebRTC encode and decode, RTP, the room's clock).

    On the 2-core CPU one model thread beat two: glass-to-glass p50 268 vs 294 ms at the same 25 fps
    (`bya bench latency --threads 1` / `--threads 2`, docs/benchmarks.md); two threads fight the loop.
    """
    return max(1, (os.cpu_count() or 2) - 1)
