"""Pools started from a process that already runs threads must not inherit their held locks.

A forked child copies a lock that another thread holds at the moment of the fork and waits on it
forever; this is how `make test` hung at 92%. The worker below takes a module-level lock that a
thread of the parent holds while the pool starts: with "fork" the task never finishes (and the test
fails on its timeout instead of hanging), with the project's pools it runs.
"""

from __future__ import annotations

import threading

import pytest

from distill.data.worker_pool import process_executor, process_pool

HELD = threading.Lock()


def _take_the_lock(x: int) -> int:
    with HELD:  # in a forked child this lock is a copy of the held one: it is never released
        return x * x


@pytest.fixture
def lock_held_by_a_thread():
    release = threading.Event()
    taken = threading.Event()

    def hold() -> None:
        with HELD:
            taken.set()
            release.wait()

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    taken.wait()
    yield
    release.set()
    t.join()


def test_pool_from_a_threaded_process_does_not_inherit_held_locks(lock_held_by_a_thread) -> None:
    with process_pool(2) as pool:
        assert pool.map_async(_take_the_lock, [1, 2, 3]).get(timeout=60) == [1, 4, 9]


def test_executor_from_a_threaded_process_does_not_inherit_held_locks(lock_held_by_a_thread) -> None:
    with process_executor(2) as pool:
        assert list(pool.map(_take_the_lock, [2, 3], timeout=60)) == [4, 9]


@pytest.mark.parametrize("make", [process_pool, process_executor])
def test_a_pool_needs_a_worker(make) -> None:
    with pytest.raises(ValueError, match="at least 1 worker"):
        make(0)
