"""Process pools for the world's CPU work (rendering clips, synthesizing dialogues) that never fork.

Every caller already runs threads by the time it wants a pool (torch's intra-op pool, asyncio, the
speaker encoder), and a forked child can inherit one of their locks held and wait on it forever: a
`ProcessPoolExecutor` with the default "fork" hung `make test` at 92% on 2 of 2 fresh runs. The
"forkserver" start method forks workers from a clean single-threaded server process instead.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from multiprocessing.pool import Pool
from typing import Any

START_METHOD = "forkserver"  # "spawn" is as safe but re-imports torch per worker: ~1 s more each


def pool_context() -> BaseContext:
    """The multiprocessing context every pool of this project is made from."""
    return mp.get_context(START_METHOD)


def process_pool(workers: int, initializer: Callable[[], Any] | None = None) -> Pool:
    """A `multiprocessing.Pool` of `workers` processes that are safe to start from a threaded process."""
    if workers < 1:
        raise ValueError(f"a pool needs at least 1 worker, got {workers}")
    return pool_context().Pool(workers, initializer=initializer)


def process_executor(workers: int, initializer: Callable[[], Any] | None = None) -> ProcessPoolExecutor:
    """A `ProcessPoolExecutor` of `workers` processes that are safe to start from a threaded process."""
    if workers < 1:
        raise ValueError(f"a pool needs at least 1 worker, got {workers}")
    return ProcessPoolExecutor(max_workers=workers, initializer=initializer, mp_context=pool_context())
