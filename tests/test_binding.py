"""The binding table: validated changes, the (S, N) matrix the generator takes, and thread safety."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from realtime.audio.binding import BindingTable, speaker_key
from realtime.errors import BindingError, BYAError


def test_matrix_is_one_hot_rows_and_zero_when_muted():
    table = BindingTable(3, {"whip:0": 2, "whip:1": 0, "mic": None})
    m = table.matrix(["whip:0", "whip:1", "mic"], 3)
    assert m.dtype == np.float32 and m.shape == (3, 3)
    np.testing.assert_array_equal(m, [[0, 0, 1], [1, 0, 0], [0, 0, 0]])
    # the order of rows follows the keys asked for, not the table
    np.testing.assert_array_equal(table.matrix(["whip:1", "whip:0"], 3), [[1, 0, 0], [0, 0, 1]])


def test_matrix_feeds_the_streaming_generator_check():
    from realtime.stream.session import check_binding

    table = BindingTable(2, {"a": 1, "b": 0})
    bind = table.matrix(["a", "b"], 2)
    np.testing.assert_array_equal(check_binding(bind, 2, 2), bind)


def test_rebinding_while_running_changes_the_matrix_and_version():
    table = BindingTable(2, {"mix#0": 0, "mix#1": 1})
    seen = []
    table.subscribe(lambda version, snap: seen.append((version, snap)))
    v0 = table.version
    table.update({"mix#0": 1, "mix#1": 0})  # swap who drives whom in one change
    np.testing.assert_array_equal(table.matrix(["mix#0", "mix#1"], 2), [[0, 1], [1, 0]])
    table.bind("mix#1", None)
    assert table.get("mix#1") is None
    assert table.version == v0 + 2
    assert seen == [(v0 + 1, {"mix#0": 1, "mix#1": 0}), (v0 + 2, {"mix#0": 1, "mix#1": None})]


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (lambda t: t.bind("nobody", 0), "unknown binding key 'nobody'"),
        (lambda t: t.bind("a", 2), "character 2 is out of range"),
        (lambda t: t.bind("a", -1), "out of range"),
        (lambda t: t.bind("a", 1.0), "integer index or None"),
        (lambda t: t.bind("a", True), "integer index or None"),
        (lambda t: t.add("a", 0), "already exists"),
        (lambda t: t.add("", 0), "non-empty string"),
        (lambda t: t.remove("nobody"), "unknown binding key"),
        (lambda t: t.matrix(["a", "ghost"], 2), "unknown binding key 'ghost'"),
        (lambda t: t.matrix(["a"], 5), "number of characters"),
    ],
)
def test_bad_changes_raise_one_line_binding_errors(action, match):
    table = BindingTable(2, {"a": 1})
    with pytest.raises(BindingError, match=match) as info:
        action(table)
    assert isinstance(info.value, BYAError) and "\n" not in str(info.value)


def test_a_bad_update_changes_nothing():
    table = BindingTable(2, {"a": 0, "b": 1})
    with pytest.raises(BindingError):
        table.update({"a": 1, "b": 7})
    assert table.snapshot() == {"a": 0, "b": 1}


def test_matrix_refuses_a_binding_beyond_a_smaller_scene():
    table = BindingTable(4, {"a": 3})
    with pytest.raises(BindingError, match="bound to character 3"):
        table.matrix(["a"], 2)


def test_speaker_keys_and_remove():
    table = BindingTable(2)
    table.add(speaker_key("mix", 0), 0)
    table.add(speaker_key("mix", 1))
    assert table.keys() == ("mix#0", "mix#1") and table.get("mix#1") is None
    table.remove("mix#0")
    assert table.keys() == ("mix#1",)


def test_concurrent_rebinding_keeps_every_row_one_hot():
    table = BindingTable(4, {f"s{i}": i for i in range(4)})
    keys = table.keys()
    stop, errors = threading.Event(), []

    def writer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        while not stop.is_set():
            table.bind(keys[int(rng.integers(4))], int(rng.integers(4)))

    def reader() -> None:
        for _ in range(2000):
            m = table.matrix(keys, 4)
            if not np.all(m.sum(1) == 1.0):
                errors.append(m)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    reader()
    stop.set()
    for t in threads:
        t.join()
    assert not errors
