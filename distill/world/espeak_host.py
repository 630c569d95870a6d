"""A helper process that runs libespeak-ng (ctypes) and gives every utterance a pristine library state.

espeak keeps static C state from one utterance to the next (trill and roughness counters, pitch flutter
phase, echo buffer, rand()), so in one process a text sounds different depending on what came before.
This process initialises espeak once, speaks nothing itself and forks a child per request. It imports
only the standard library and espeakng_loader, to stay small and quick to fork; `distill.world.speech` runs it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from multiprocessing.connection import Connection
from typing import Any

import espeakng_loader

# speak_lib.h constants
AUDIO_OUTPUT_SYNCHRONOUS = 2  # the callback runs inside espeak_Synth, on the calling thread; no threads
INITIALIZE_PHONEME_EVENTS, INITIALIZE_PHONEME_IPA = 0x0001, 0x0002
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_PHONEME = 0, 1, 7
POS_CHARACTER = 1
CHARS_UTF8 = 1
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4
EE_OK = 0
RAND_SEED = 0x5EEC  # libc rand() seed every utterance starts from


class _EventId(ctypes.Union):
    _fields_ = (
        ("number", ctypes.c_int),  # WORD / SENTENCE events: word or sentence number
        ("name", ctypes.c_char_p),  # MARK / PLAY events
        ("string", ctypes.c_char * 8),  # PHONEME events: UTF-8, NUL-terminated unless all 8 bytes are used
    )


class _Event(ctypes.Structure):
    # espeak_EVENT; on x86-64 the pointer after the six ints sits at offset 24 and the union at 32
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character index into the text
        ("length", ctypes.c_int),  # word length in characters (WORD events)
        ("audio_position", ctypes.c_int),  # ms from the start of this utterance's audio
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


class _Voice(ctypes.Structure):
    # espeak_VOICE; `languages` is packed (priority byte, NUL-terminated code)* and ends with a 0 byte
    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)

# one event as sent back: (type, audio_position_ms, text_position, length, phoneme IPA or "")
Event = tuple[int, int, int, int, str]


class Espeak:
    """libespeak-ng initialised for synchronous synthesis with IPA phoneme events."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
        lib.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
        lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        lib.espeak_Synth.argtypes = (
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        )  # fmt: skip
        lib.espeak_ListVoices.argtypes = (ctypes.c_void_p,)
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        options = INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA
        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), options
        )
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed with {rate}")
        self.lib = lib
        self.sample_rate = int(rate)  # 22050 Hz for every espeak voice
        self._chunks: list[bytes] = []
        self._events: list[Event] = []
        self._error: BaseException | None = None
        self._callback = _SynthCallback(self._on_synth)  # kept on self: C holds only a raw pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav: Any, n: int, events: Any) -> int:
        # ctypes only prints exceptions raised in a callback; keep the first and abort synthesis instead
        try:
            if wav and n > 0:
                self._chunks.append(ctypes.string_at(wav, 2 * n))
            i = 0
            while events[i].type != EVENT_LIST_TERMINATED:
                e = events[i]
                ipa = ""
                if e.type == EVENT_PHONEME:
                    # the field getter stops at NUL but a name may fill all 8 bytes; a multi-byte
                    # character cut at byte 8 is dropped rather than failing the decode
                    raw = ctypes.string_at(ctypes.addressof(e.id), 8)
                    ipa = raw.split(b"\0", 1)[0].decode("utf-8", errors="ignore")
                if e.type in (EVENT_WORD, EVENT_PHONEME):
                    self._events.append((e.type, e.audio_position, e.text_position, e.length, ipa))
                i += 1
        except BaseException as exc:
            self._error = exc
            return 1  # abort synthesis; speak() re-raises
        return 0  # continue

    def reseed(self) -> None:
        """Start the next utterance from fixed random state. espeak seeds its own generator (and uses libc's
        rand()) from the clock when it initialises, and voice variants with breath or flutter draw from
        them, so without this one text sounds different in every helper process."""
        self.lib.espeak_ng_SetRandSeed(ctypes.c_long(RAND_SEED))
        ctypes.CDLL(None).srand(RAND_SEED)

    def speak(self, text: str, voice: str, rate_wpm: int, pitch: int) -> tuple[int, bytes, list[Event]]:
        """(sample_rate, int16 mono PCM bytes, word and phoneme events) for one utterance."""
        lib = self.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
            raise RuntimeError(f"espeak could not load voice {voice!r}")
        for param, value in (
            (PARAM_RATE, rate_wpm),
            (PARAM_PITCH, pitch),
            (PARAM_RANGE, 50),
            (PARAM_VOLUME, 100),
        ):
            lib.espeak_SetParameter(param, value, 0)
        self._chunks, self._events, self._error = [], [], None
        data = text.encode("utf-8")
        rc = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if self._error is not None:
            raise RuntimeError("collecting espeak's output failed") from self._error
        if rc != EE_OK:
            raise RuntimeError(f"espeak_Synth failed with {rc} for voice {voice!r}")
        return self.sample_rate, b"".join(self._chunks), self._events

    def voices(self) -> list[tuple[str, tuple[tuple[int, str], ...], str]]:
        """(name, ((priority, language code), ...), identifier) of every language voice."""
        table = self.lib.espeak_ListVoices(None)
        out = []
        i = 0
        while table[i]:
            v = table[i].contents
            codes, p = [], v.languages
            while (priority := ctypes.c_ubyte.from_address(p).value) != 0:
                code = ctypes.string_at(p + 1)
                codes.append((priority, code.decode().lower()))
                p += len(code) + 2
            out.append((v.name.decode().strip(), tuple(codes), v.identifier.decode()))
            i += 1
        return out


def _handle(espeak: Espeak, request: tuple) -> Any:
    kind, *args = request
    if kind == "synth":
        return espeak.speak(*args)
    if kind == "voices":
        return espeak.voices()
    raise ValueError(f"unknown request {kind!r}")


def _in_fresh_child(espeak: Espeak, request: tuple) -> tuple[str, Any]:
    """Run one request in a forked child so it starts from the untouched post-initialisation state."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: answer, then leave without running any parent clean-up
        os.close(read_fd)
        out = Connection(write_fd, readable=False)
        espeak.reseed()
        try:
            out.send(("ok", _handle(espeak, request)))
        except BaseException as exc:
            out.send(("error", f"{type(exc).__name__}: {exc}"))
        os._exit(0)
    os.close(write_fd)
    result_in = Connection(read_fd, writable=False)
    try:
        result = result_in.recv()  # read before waiting: a large answer would block the child's write
    except EOFError:
        result = ("error", f"espeak child for {request[0]!r} died before answering")
    finally:
        result_in.close()
        os.waitpid(pid, 0)
    return result


def serve(request_fd: int, reply_fd: int) -> None:
    """Answer requests until the client closes its end."""
    requests = Connection(request_fd, writable=False)
    replies = Connection(reply_fd, readable=False)
    espeak = Espeak()
    replies.send(("ok", espeak.sample_rate))  # tells the client that start-up worked
    while True:
        try:
            request = requests.recv()
        except EOFError:
            return
        replies.send(_in_fresh_child(espeak, request))


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
