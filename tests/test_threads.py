"""Thread pools are sized from the cores this process may use (its CPU affinity), not the machine's."""

from __future__ import annotations

import os

import pytest

from realtime.engine import threads


@pytest.mark.parametrize(("cores", "live"), [({0}, 1), ({0, 1}, 1), ({0, 2, 5, 7}, 3)])
def test_pools_follow_the_cpu_affinity(monkeypatch, cores: set[int], live: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cores, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)  # the machine's count must not leak in
    assert threads.available_cores() == len(cores)
    assert threads.live_threads() == live


def test_without_an_affinity_call_the_cpu_count_is_used(monkeypatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert (threads.available_cores(), threads.live_threads()) == (6, 5)


def test_onnx_sessions_get_the_available_cores_and_do_not_spin(monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    opts = threads.onnx_session_options(None)
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (3, 1)
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert threads.onnx_session_options(2).intra_op_num_threads == 2


def test_passive_wait_keeps_a_users_own_policy(monkeypatch) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads.wait_passively()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    threads.wait_passively()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_the_contention_benchmark_expects_a_fair_share_of_the_cores() -> None:
    from realtime.bench.contention import fair_ratio

    assert fair_ratio(threads=2, cores=2, competitors=0) == 1.0
    assert fair_ratio(threads=2, cores=2, competitors=2) == 0.5  # 4 busy threads on 2 cores: half each
    assert fair_ratio(threads=1, cores=2, competitors=1) == 1.0  # a core each
    assert fair_ratio(threads=1, cores=2, competitors=2) == pytest.approx(2 / 3)
