"""Property-based fuzzing (hypothesis) of what the outside world can hand us: HTTP requests and audio.

Bounded and reproducible (derandomize, no example database): the whole file runs in well under a
minute on the 2-core CPU. HTTP: random methods, paths (traversal, encoded dots, absolute forms),
Authorization and Content-Type headers and bodies against a live server on 127.0.0.1 -> never a 5xx,
never a hang, no peer connection without the token, no file opened, /health still answers. Audio:
StreamIngest / AudioInput with any dtype, shape, value, rate and pts, and corrupt audio files for
`bya render --audio` -> only the project's one-line AudioInputError.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hmac
import http.client
import io
import os
import threading
import wave

import numpy as np
import pytest
import torch
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import realtime.server.app as server_module
import realtime.server.http_guard as http_guard
from realtime.audio.ingest import SUPPORTED_RATES, StreamIngest
from realtime.audio.inputs import AudioInput
from realtime.engine.room import Room
from realtime.errors import AudioInputError
from realtime.media import AUDIO_SAMPLE_RATE
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.default_model import LoadedModel
from realtime.model.generator import Generator
from realtime.outputs.render import MAX_SECONDS, read_audio
from realtime.scene.scenes import world_scene
from realtime.server.app import LiveServer, ServerLimits
from realtime.server.http_guard import GuardConfig, token_ok

TOKEN = "fuzz-token-0123456789"
FUZZ = settings(
    derandomize=True,  # the same examples every run: CI is reproducible
    database=None,  # and nothing is written next to the repository
    deadline=None,  # a busy shared CPU must not turn slowness into a failure; hangs have timeouts
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
REQUEST_TIMEOUT_S = 10.0  # a request that takes longer is a hang


# -- a live server in a thread of its own ------------------------------------------------------------------
class ServedInThread:
    """A LiveServer on 127.0.0.1:<free port>, its event loop in a background thread; counts peer
    connections and records every file or folder the loop's thread opens while it serves."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        gen = Generator(GENERATOR_CONFIGS["tiny"]).eval()
        loaded = LoadedModel(gen, FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval(), 1, None)
        room = Room(loaded, world_scene(2, seed=0, size=gen.cfg.frame_size), steps=1, seed=0)
        self.server = LiveServer(room, GuardConfig.build(TOKEN, False, "127.0.0.1"), ServerLimits())
        self.files_touched: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="fuzz-server")

    def start(self) -> None:
        self.thread.start()
        self.runner = web.AppRunner(self.server.app, handle_signals=False)

        async def up() -> int:
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return self.runner.addresses[0][1]

        self.port = asyncio.run_coroutine_threadsafe(up(), self.loop).result(120)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        asyncio.run_coroutine_threadsafe(self.loop.shutdown_asyncgens(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if self.thread.is_alive():  # a running loop cannot be closed: say so rather than leak it
            raise RuntimeError("the fuzz server's event loop did not stop within 10 s")
        self.loop.close()  # its selector and self-pipe, and the default executor's threads

    def responsive(self) -> None:
        """The server's event loop runs a no-op (fails after REQUEST_TIMEOUT_S if it is blocked)."""
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self.loop).result(REQUEST_TIMEOUT_S)

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    @contextlib.contextmanager
    def watching_files(self, monkeypatch: pytest.MonkeyPatch):
        """Record the files and folders opened on the server's thread (the requests' handlers)."""

        def recording(fn):
            def wrapped(path, *args, **kwargs):
                if threading.current_thread() is self.thread:
                    self.files_touched.append(f"{fn.__name__}({path!r})")
                return fn(path, *args, **kwargs)

            return wrapped

        with monkeypatch.context() as m:
            # opens, not stats: a traceback logged by aiohttp stats source files through linecache
            for module, name in (
                (builtins, "open"),
                (io, "open"),
                (os, "open"),
                (os, "scandir"),
                (os, "listdir"),
            ):
                m.setattr(module, name, recording(getattr(module, name)))
            yield


@pytest.fixture(scope="module")
def live():
    created = []

    class CountingPeerConnection(server_module.RTCPeerConnection):
        def __init__(self, *args, **kwargs) -> None:
            created.append(1)
            super().__init__(*args, **kwargs)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(server_module, "RTCPeerConnection", CountingPeerConnection)
        served = ServedInThread()
        served.created = created
        served.start()
        try:
            yield served
        finally:
            served.stop()


# -- HTTP strategies ------------------------------------------------------------------------------------------
SEGMENTS = [
    "..",
    ".",
    "%2e%2e",
    "%2E%2e",
    "..%2f",
    "%2e%2e%2f",
    "%252e%252e",
    "%00",
    "%2f",
    "%5c",
    "..\\",
    "~",
    "etc",
    "passwd",
    "server.py",
    "web",
    "whip",
    "whep",
    "binding",
    "sessions",
    "health",
    "stats",
    "viewer",
    "bya.js",
    "0",
    "1",
    "99999999999",
    "%c3%a9",
    "%ff",
    "%",
    "x" * 300,
    ";",
    ":",
    "@",
]
URL_SAFE = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#?%")
FIXED_PATHS = [
    "/",
    "/viewer",
    "/web/bya.js",
    "/web/../server.py",
    "/web/%2e%2e/%2e%2e/etc/passwd",
    "/web/..%2fserver.py",
    "//etc/passwd",
    "/../../etc/passwd",
    "/web//etc/passwd",
    "/etc/passwd",
    "/web/%2e%2e%2fserver.py",
    "/web/%252e%252e/server.py",
    "/sessions/../binding",
    "/whip/..",
    "/whip/%2e%2e",
    "/whip/0",
    "/whip/1",
    "/whep",
    "/binding",
    "/health",
    "/stats",
    "/web/",
    "http://127.0.0.1/etc/passwd",
    "/web/%2fetc%2fpasswd",
    "/web/C:%5cWindows",
    "/web/.%2e/.%2e/x",
]
paths = st.one_of(
    st.sampled_from(FIXED_PATHS),
    st.lists(st.one_of(st.sampled_from(SEGMENTS), st.text(URL_SAFE, max_size=12)), max_size=6).map(
        lambda parts: "/" + "/".join(parts)
    ),
)
methods = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD", "TRACE", "CONNECT"]),
    st.text(st.characters(min_codepoint=65, max_codepoint=90), min_size=1, max_size=12),
)
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=200)
authorizations = st.one_of(
    st.none(),
    st.just(f"Bearer {TOKEN}"),
    st.just(f"bearer {TOKEN}"),
    st.just(f"Bearer {TOKEN}x"),
    st.just(f"Bearer {TOKEN[:-1]}"),
    st.just(f"Basic {TOKEN}"),
    HEADER_TEXT,
    HEADER_TEXT.map(lambda t: "Bearer " + t),
    st.integers(1, 20_000).map(lambda n: "Bearer " + "A" * n),  # huge: aiohttp caps a header line
)
content_types = st.one_of(
    st.none(),
    st.sampled_from(["application/sdp", "application/json", "text/plain", "APPLICATION/SDP; x=y", ""]),
    HEADER_TEXT,
    st.integers(1, 20_000).map(lambda n: "application/sdp; " + "p=" * n),
)
SDP_LIKE = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n"
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=2_000),
    st.just(SDP_LIKE),
    st.binary(max_size=200).map(lambda b: SDP_LIKE + b),
    st.sampled_from([b'{"inputs": {}}', b'{"inputs": {"x": 0}}', b'{"inputs": []}', b"[" * 5000, b"{}"]),
    st.integers(1, 200_000).map(lambda n: b"a" * n),  # past every body cap
)


@settings(FUZZ, max_examples=500)
@given(
    method=methods, path=paths, auth=authorizations, ctype=content_types, body=bodies, origin=st.booleans()
)
def test_fuzzed_requests_never_5xx_never_hang_and_need_the_token(
    live, monkeypatch, method, path, auth, ctype, body, origin
) -> None:
    headers = {}
    if auth is not None:
        headers["Authorization"] = auth
    if ctype is not None:
        headers["Content-Type"] = ctype
    if origin:
        headers["Origin"] = "http://evil.example"
    before = len(live.created)
    with live.watching_files(monkeypatch):
        try:
            status = live.request(method, path, headers, body)
        except (ConnectionError, http.client.RemoteDisconnected):
            status = None  # the server may close on a request it refuses to parse; it must not 5xx
        except TimeoutError:  # the socket's bound: only a hang reaches it
            raise AssertionError(f"no answer to {method} {path!r}: the server hangs") from None
    live.responsive()  # and nothing the request started blocks the server's event loop
    assert status is None or status < 500, (method, path, headers, (body or b"")[:80], status)
    if not token_ok(live.server.guard, auth):
        assert len(live.created) == before and live.server.peer_connections_created == len(live.created)
        assert status in (None, 400, 401, 403, 404, 405, 413, 415, 431) or (
            status < 300 and path_is_public(path)
        )
    assert live.files_touched == [], live.files_touched
    assert live.server.sessions == {}  # random offers never make a session


def path_is_public(path: str) -> bool:
    """Routes that need no token: the health check and the pages."""
    return path.split("?")[0] in ("/health", "/", "/viewer") or path.startswith("/web/")


def test_after_the_fuzzing_the_server_still_serves(live) -> None:
    assert live.request("GET", "/health", {}, None) == 200
    assert live.request("GET", "/binding", {"Authorization": f"Bearer {TOKEN}"}, None) == 200
    assert live.request("GET", "/web/../server.py", {}, None) == 404


@pytest.mark.parametrize(
    "path", ["/whip/%C2%B2", "/whip/" + "9" * 5000], ids=["superscript-two", "5000-digit-index"]
)
def test_a_character_that_is_not_an_index_is_404(live, path) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/sdp"}
    assert live.request("POST", path, auth, SDP_LIKE) == 404


# -- tokens, caps --------------------------------------------------------------------------------------------
def test_tokens_are_compared_in_constant_time(monkeypatch) -> None:
    calls = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(http_guard.hmac, "compare_digest", recording)
    guard = GuardConfig.build(TOKEN, False, "127.0.0.1")
    assert token_ok(guard, f"Bearer {TOKEN}")
    for wrong in (f"Bearer {TOKEN[:-1]}x", "Bearer x", "Bearer " + "é" * 40, "Bearer " + TOKEN * 3):
        assert not token_ok(guard, wrong)
    assert len(calls) == 5  # every candidate, right or wrong, of any length, went through compare_digest


@settings(FUZZ, max_examples=200)
@given(header=st.one_of(st.none(), st.text(max_size=300), st.text(max_size=300).map(lambda t: "Bearer " + t)))
def test_token_check_never_raises_and_accepts_only_the_token(header) -> None:
    guard = GuardConfig.build(TOKEN, False, "127.0.0.1")
    assert token_ok(guard, header) == (
        header is not None and header.startswith("Bearer ") and header[7:].strip() == TOKEN
    )


def test_every_body_and_field_has_a_cap(live) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    sdp, json_ = {**auth, "Content-Type": "application/sdp"}, {**auth, "Content-Type": "application/json"}
    big_sdp = b"a" * (http_guard.MAX_SDP_BYTES + 1)
    assert live.request("POST", "/whip/0", sdp, big_sdp) == 413
    assert live.request("POST", "/whep", sdp, big_sdp) == 413
    assert live.request("PUT", "/binding", json_, b" " * (http_guard.MAX_JSON_BYTES + 1)) == 413
    assert live.request("DELETE", "/sessions/x", auth, big_sdp) in (404, 413)
    assert live.request("GET", "/health", {"X-Long": "a" * 20_000}, None) in (400, 431)  # a header line
    assert live.request("GET", "/" + "a" * 20_000, {}, None) in (400, 414)  # the request line
    many = {f"X-{i}": "1" for i in range(200)}
    assert live.request("GET", "/health", many, None) in (200, 400, 431)
    assert live.server.app._client_max_size == http_guard.MAX_SDP_BYTES  # any other body, read by aiohttp


# -- audio --------------------------------------------------------------------------------------------------------
DTYPES = [np.int8, np.int16, np.int32, np.uint16, np.float16, np.float32, np.float64, np.complex64, np.bool_]
SPECIAL = [0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 1e30, -1e-30, 32767.0, -32768.0, 1e300]


@st.composite
def arrays(draw) -> np.ndarray:
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.sampled_from([(0,), (1,), (320,), (960,), (2, 480), (480, 1), (1, 960), (3, 3, 3), ()]))
    n = int(np.prod(shape))
    values = draw(st.lists(st.sampled_from(SPECIAL) | st.floats(-2, 2), min_size=n, max_size=n))
    with np.errstate(all="ignore"):
        return np.array(values, dtype=np.float64).astype(dtype).reshape(shape)


pts_values = st.one_of(
    st.none(),
    st.integers(-10, 10**6),
    st.integers(2**62 - 10, 2**64),
    st.sampled_from([True, 1.5, "0", np.int64(2**63 - 1), np.uint64(2**64 - 1), np.int32(-1), np.int64(960)]),
)


@settings(FUZZ, max_examples=150)
@given(
    rate=st.one_of(st.sampled_from(SUPPORTED_RATES), st.sampled_from([0, -1, 22050, 48000.0, True, "48000"])),
    pushes=st.lists(st.tuples(arrays(), pts_values, st.integers(0, 2000)), max_size=12),
)
def test_stream_ingest_takes_anything_and_raises_only_audio_input_errors(rate, pushes) -> None:
    try:
        ing = StreamIngest(rate, vad="none", jitter_ms=20)
    except AudioInputError as exc:
        assert "\n" not in str(exc)
        return
    for pcm, pts, pull in pushes:
        try:
            ing.push(pcm, pts)
        except AudioInputError as exc:
            assert "\n" not in str(exc)
        out = ing.pull(pull)
        assert out.shape == (pull,) and out.dtype == np.float32 and np.isfinite(out).all()
        assert np.abs(out).max(initial=0.0) <= 1.5  # int16-scaled or validated float: no blow-up
    stats = ing.stats()
    assert stats["buffered_ms"] <= 1000 and len(ing._heap) <= 64


@settings(FUZZ, max_examples=100)
@given(
    writes=st.lists(
        st.tuples(
            arrays(), st.one_of(st.sampled_from(SUPPORTED_RATES), st.sampled_from([0, 48000.0, None, 7]))
        ),
        max_size=8,
    )
)
def test_audio_input_takes_anything_and_raises_only_audio_input_errors(writes) -> None:
    a = AudioInput("fuzz", 0, lambda key: None)
    for pcm, rate in writes:
        try:
            a.write(pcm, rate)
        except AudioInputError as exc:
            assert "\n" not in str(exc)
        out = a.pull(320)
        assert out.shape == (320,) and np.isfinite(out).all()
    assert a.stats()["buffered_ms"] <= 10_000


def _wav(rate: int = 16_000, n: int = 1600, channels: int = 1, width: int = 2) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(
            (np.sin(np.arange(n * channels) / 5) * 2 ** (8 * width - 2)).astype(f"<i{width}").tobytes()
        )
    return buf.getvalue()


VALID_WAV = _wav()


@st.composite
def corrupt_wavs(draw) -> bytes:
    data = bytearray(draw(st.sampled_from([VALID_WAV, _wav(48_000, 960, 2), _wav(8_000, 400, 1, 4)])))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 3))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == 0 and data:  # flip a byte, the header's often (a truncation may have left fewer than 44)
            i = draw(st.integers(0, min(43, len(data) - 1))) if draw(st.booleans()) else i
            data[i] = draw(st.integers(0, 255))
        elif op == 1:  # truncate
            del data[i:]
        elif op == 2:  # insert junk
            data[i:i] = draw(st.binary(max_size=64))
        else:  # a huge size or rate field
            data[i : i + 4] = draw(
                st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"])
            )
    return bytes(data)


@settings(FUZZ, max_examples=80)
@given(data=st.one_of(corrupt_wavs(), st.binary(max_size=512)))
def test_corrupt_audio_files_give_one_line_errors(tmp_path, data) -> None:
    path = tmp_path / "in.wav"
    path.write_bytes(data)
    try:
        audio = read_audio(path)
    except AudioInputError as exc:
        assert "\n" not in str(exc)
    else:
        assert audio.ndim == 1 and audio.dtype == np.float32 and np.isfinite(audio).all()
        assert np.abs(audio).max() <= 1.0
        # a corrupt size or rate field never decodes without end: the length cap stopped it
        assert len(audio) <= (MAX_SECONDS + 1) * AUDIO_SAMPLE_RATE
