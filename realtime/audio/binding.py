"""The binding table: which character each audio stream (or diarized speaker) drives, changeable live.

Keys are strings: a stream ("whip:0", "mic", "file:a.wav") or a speaker inside a mixed stream
(`speaker_key("mix", 1)` -> "mix#1"). A key binds to one character index or to None (muted). The HTTP
API and the page change bindings while the engine runs; the engine reads `matrix(stream_keys, n)`, the
(S, N) audio-to-character matrix that `realtime.stream.session.StreamingGenerator.set_binding` takes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from realtime.errors import BindingError
from realtime.media import MAX_CHARACTERS, MIN_CHARACTERS

Listener = Callable[[int, dict[str, int | None]], None]  # (version, snapshot) after every change


def speaker_key(stream: str, speaker: int) -> str:
    """The binding key of one diarized speaker inside a mixed stream."""
    return f"{stream}#{int(speaker)}"


def _check_n(n: int) -> int:
    if (
        isinstance(n, bool)
        or not isinstance(n, int | np.integer)
        or not MIN_CHARACTERS <= n <= MAX_CHARACTERS
    ):
        raise BindingError(
            f"number of characters must be an integer in [{MIN_CHARACTERS}, {MAX_CHARACTERS}], got {n!r}"
        )
    return int(n)


class BindingTable:
    """Thread-safe map key -> character index or None; every change is validated and bumps `version`."""

    def __init__(self, n_characters: int, bindings: Mapping[str, int | None] | None = None) -> None:
        self.n_characters = _check_n(n_characters)
        self._lock = threading.Lock()
        self._table: dict[str, int | None] = {}
        self._listeners: list[Listener] = []
        self.version = 0
        for key, character in (bindings or {}).items():
            self.add(key, character)

    def _check_key(self, key: str) -> str:
        if not isinstance(key, str) or not key or len(key) > 200:
            raise BindingError(
                f"a binding key must be a non-empty string of at most 200 characters, got {key!r}"
            )
        return key

    def _check_character(self, character: int | None) -> int | None:
        if character is None:
            return None
        if isinstance(character, bool) or not isinstance(character, int | np.integer):
            raise BindingError(f"character must be an integer index or None (muted), got {character!r}")
        if not 0 <= character < self.n_characters:
            raise BindingError(f"character {character} is out of range: the scene has {self.n_characters}")
        return int(character)

    # -- changes ------------------------------------------------------------------------------------------
    def add(self, key: str, character: int | None = None) -> None:
        """Register a new stream or speaker (muted unless a character is given)."""
        key, character = self._check_key(key), self._check_character(character)
        with self._lock:
            if key in self._table:
                raise BindingError(f"binding key {key!r} already exists")
            self._table[key] = character
        self._changed()

    def remove(self, key: str) -> None:
        """Forget a stream or speaker (it left)."""
        with self._lock:
            if key not in self._table:
                raise BindingError(f"unknown binding key {key!r}; known: {sorted(self._table)}")
            del self._table[key]
        self._changed()

    def bind(self, key: str, character: int | None) -> None:
        """Bind a known key to a character (None mutes it)."""
        self.update({key: character})

    def update(self, changes: Mapping[str, int | None]) -> None:
        """Apply several bindings at once: all are validated first, so a bad one changes nothing."""
        checked = {}
        with self._lock:
            for key, character in changes.items():
                if key not in self._table:
                    raise BindingError(f"unknown binding key {key!r}; known: {sorted(self._table)}")
                checked[key] = self._check_character(character)
            self._table.update(checked)
        self._changed()

    def subscribe(self, listener: Listener) -> None:
        """Call listener(version, snapshot) after every change (on the changing thread)."""
        with self._lock:
            self._listeners.append(listener)

    def _changed(self) -> None:
        with self._lock:
            self.version += 1
            version, snapshot, listeners = self.version, dict(self._table), list(self._listeners)
        for listener in listeners:
            listener(version, snapshot)

    # -- reads --------------------------------------------------------------------------------------------
    def get(self, key: str) -> int | None:
        """The character a key drives, or None when muted."""
        with self._lock:
            if key not in self._table:
                raise BindingError(f"unknown binding key {key!r}; known: {sorted(self._table)}")
            return self._table[key]

    def keys(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._table)

    def snapshot(self) -> dict[str, int | None]:
        """A copy of the table (JSON-able: what the HTTP API returns)."""
        with self._lock:
            return dict(self._table)

    def matrix(self, stream_keys: Iterable[str], n_characters: int) -> np.ndarray:
        """(S, N) float32: row s is one-hot on the character stream_keys[s] drives, all zero when muted."""
        keys, n = list(stream_keys), _check_n(n_characters)
        out = np.zeros((len(keys), n), np.float32)
        with self._lock:
            for s, key in enumerate(keys):
                if key not in self._table:
                    raise BindingError(f"unknown binding key {key!r}; known: {sorted(self._table)}")
                character = self._table[key]
                if character is None:
                    continue
                if character >= n:
                    raise BindingError(f"{key!r} is bound to character {character}, but the matrix has {n}")
                out[s, character] = 1.0
        return out


ISOLATION = ("auto", "on", "off")  # --listener-isolation


def add_isolation_argument(p) -> None:
    """`--listener-isolation auto|on|off` for every command that generates (serve, render, model eval)."""
    p.add_argument(
        "--listener-isolation",
        choices=ISOLATION,
        default="auto",
        help="on: a character none of whose streams makes a sound is generated from a voiceless pass of the "
        "same noise, so no other voice can move it (the student's noise comes from a bank whose voiceless "
        "passes are computed once: free per chunk; other models pay ~1.5x while someone speaks and someone "
        "listens); off: one pass; auto (default): on, unless a live room's warm-up finds that it does not "
        "fit the real-time budget (files are always on)",
    )


# Audio guidance's gain g (streaming.py): 1 is off; past ~4 the extrapolation leaves what the model draws.
AUDIO_GUIDANCE_RANGE = (1.0, 4.0)


def add_guidance_argument(p) -> None:
    """`--audio-guidance G` for every command that generates (serve, render, model eval)."""
    p.add_argument(
        "--audio-guidance",
        type=float,
        default=None,
        metavar="G",
        help="inside the speaking characters' regions, move each chunk G times as far from the voiceless "
        "pass as the voice alone would (1: off; default: what the checkpoint ships with). Free per chunk "
        "for the 1-step student (its voiceless passes come from the noise bank); other models pay a second "
        f"pass while someone speaks. {AUDIO_GUIDANCE_RANGE[0]:g}-{AUDIO_GUIDANCE_RANGE[1]:g}",
    )


def guidance_from_args(args, default: float | None) -> float | None:
    """--audio-guidance, checked (BindingError naming the value), or `default` when not given."""
    value = getattr(args, "audio_guidance", None)
    if value is None:
        return default
    lo, hi = AUDIO_GUIDANCE_RANGE
    if not (lo <= value <= hi):  # also false for NaN
        raise BindingError(f"--audio-guidance must be in [{lo:g}, {hi:g}], got {value}")
    return float(value)


def add_motion_argument(p) -> None:
    """`--motion` for the commands that generate a scene (serve, render)."""
    p.add_argument(
        "--motion",
        action="store_true",
        help="characters follow the scene's choreography (world and .json scenes: drift, sway, idle bob, "
        "head roll; faces at rest, nothing from the audio): each chunk is generated from the scene re-posed "
        "where they stand now. Costs a pose render and a reference encoding per chunk",
    )
