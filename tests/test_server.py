"""The live server over loopback: WHIP speakers, WHEP viewers, re-binding, hostile input, vanishing peers.

Everything runs in-process on 127.0.0.1 with aiortc peers (tests/webrtc_peers.py) against a real engine
Room driven by the tiny generator preset (its pictures do not matter here, only that frames flow).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import aiohttp
import numpy as np
import pytest
import torch
from aiohttp import web
from scipy.signal import resample_poly
from webrtc_peers import Speaker, Viewer

import realtime.server.app as server_module
from realtime.engine.room import Room
from realtime.media import AUDIO_SAMPLE_RATE, WEBRTC_AUDIO_RATE
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.default_model import LoadedModel
from realtime.model.generator import Generator
from realtime.scene.scenes import world_scene
from realtime.server.app import LiveServer, ServerLimits
from realtime.server.http_guard import GuardConfig, ServerConfigError
from realtime.server.webrtc import restrict_ice_addresses, tune_consent

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SDP = {"Content-Type": "application/sdp"}


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    torch.manual_seed(0)
    gen = Generator(GENERATOR_CONFIGS["tiny"]).eval()
    return LoadedModel(gen, FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval(), 1, None)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """(2, S) float32 at 48 kHz: a world dialogue's per-character speech tracks."""
    from distill.world.dialogue import synthesize_dialogue

    track = synthesize_dialogue(2, seconds=6.0, seed=3)
    return resample_poly(track.audio, WEBRTC_AUDIO_RATE // AUDIO_SAMPLE_RATE, 1, axis=1).astype(np.float32)


@pytest.fixture(autouse=True)
def loopback_ice():
    restrict_ice_addresses(["127.0.0.1"])
    tune_consent(0.4, 3)  # a vanished peer is noticed in ~1-2 s instead of ~30 s
    yield
    tune_consent(5, 6)


@contextlib.asynccontextmanager
async def served(loaded, limits: ServerLimits | None = None, guard=None, sinks=(), mix=None, max_inputs=8):
    """A LiveServer around a fresh 2-character room on 127.0.0.1:<free port>; yields (server, base, http)."""
    scene = world_scene(2, seed=0, size=loaded.generator.cfg.frame_size)
    room = Room(loaded, scene, steps=1, seed=0, max_inputs=max_inputs)
    guard = guard or GuardConfig.build(TOKEN, False, "127.0.0.1")
    server = LiveServer(room, guard, limits or ServerLimits(idle_timeout_s=2.0), sinks, mix)
    runner = web.AppRunner(server.app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            yield server, f"http://127.0.0.1:{port}", http
    finally:
        await runner.cleanup()


async def wait_for(predicate, timeout_s: float) -> float:
    """Seconds until predicate() holds (fails after timeout_s)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


# -- media flows --------------------------------------------------------------------------------------
def test_speaker_over_whip_and_viewer_over_whep(loaded, speech) -> None:
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            name = server.room.characters[1]
            speaker, viewer = Speaker(speech[1]), Viewer()
            try:
                assert await speaker.publish(http, base, name, TOKEN) == 201
                assert speaker.location.startswith("/sessions/")
                assert await viewer.play(http, base, TOKEN) == 201
                frames = await viewer.frames(25)
                height, width = server.room.scene.background.shape[:2]
                assert all(f.width == width and f.height == height for f in frames)
                pts = [f.pts for f in frames]
                assert all(b > a for a, b in itertools.pairwise(pts))  # the 90 kHz clock moves forward
                audio = await viewer.audio_frames(10)
                assert all(a.sample_rate == WEBRTC_AUDIO_RATE for a in audio)
                binding = await (await http.get(f"{base}/binding", headers=AUTH)).json()
                assert binding["speakers"] == {speaker.session_id: 1}
                assert binding["binding"] == {speaker.session_id: 1}
                whip = server.sessions[speaker.session_id]
                await wait_for(lambda: whip.audio_s > 0.5, 10.0)  # half a second of speech reached the engine
                stats = await (await http.get(f"{base}/stats", headers=AUTH)).json()
                assert {s["kind"] for s in stats["sessions"]} == {"whip", "whep"}
            finally:
                await speaker.close()
                await viewer.close()

    asyncio.run(go())


def test_a_speakers_camera_is_declined_not_decoded(loaded, speech) -> None:
    """OBS publishes video with its audio. The engine has no use for it: the WHIP answer marks video
    inactive, so the peer sends none and nothing is decoded to be thrown away; the audio still speaks."""
    from aiortc.mediastreams import VideoStreamTrack

    async def go() -> None:
        async with served(loaded) as (server, base, http):
            speaker = Speaker(speech[0])
            speaker.pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
            try:
                assert await speaker.publish(http, base, 0, TOKEN) == 201
                answer = speaker.pc.remoteDescription.sdp
                video = answer[answer.index("m=video") :]
                assert "a=inactive" in video.split("m=", 2)[1]
                whip = server.sessions[speaker.session_id]
                await wait_for(lambda: whip.audio_s > 0.5, 10.0)
                assert [t.get_name() for t in whip.tasks if t.get_name() == "drain"] == []
                video_in = [
                    t
                    for t in whip.pc.getTransceivers()
                    if t.kind == "video" and t.currentDirection != "inactive"
                ]
                assert video_in == []
            finally:
                await speaker.close()

    asyncio.run(go())


def test_binding_moves_a_speaker_and_refuses_bad_bodies(loaded, speech) -> None:
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            speaker = Speaker(speech[0])
            try:
                assert await speaker.publish(http, base, 0, TOKEN) == 201
                sid = speaker.session_id
                put = {**AUTH, "Content-Type": "application/json"}
                r = await http.put(
                    f"{base}/binding", json={"inputs": {sid: server.room.characters[1]}}, headers=AUTH
                )
                assert r.status == 200, await r.text()
                assert server.room.binding()[sid] == 1
                assert (await r.json())["speakers"] == {sid: 1}  # the view shows the live binding
                r = await http.put(f"{base}/binding", json={"inputs": {sid: None}}, headers=AUTH)
                assert r.status == 200 and server.room.binding()[sid] is None
                bad = [
                    b"not json",
                    b"[1, 2]",
                    b'{"inputs": {}, "extra": 1}',
                    b'{"inputs": {"no-such-session": 0}}',
                    f'{{"inputs": {{"{sid}": 7}}}}'.encode(),
                    f'{{"inputs": {{"{sid}": true}}}}'.encode(),
                    f'{{"inputs": {{"{sid}": "nobody"}}}}'.encode(),
                    b"\xff\xfe",
                ]
                for body in bad:
                    r = await http.put(f"{base}/binding", data=body, headers=put)
                    assert r.status == 400, (body, r.status)
                assert server.room.binding()[sid] is None  # refused bodies changed nothing
                r = await http.put(
                    f"{base}/binding", data=b"{}", headers={**AUTH, "Content-Type": "text/plain"}
                )
                assert r.status == 415
                r = await http.put(f"{base}/binding", data=b" " * 20000, headers=put)
                assert r.status == 413
            finally:
                await speaker.close()

    asyncio.run(go())


# -- hostile input ------------------------------------------------------------------------------------
def test_bad_requests_get_clear_4xx(loaded) -> None:
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            whip = f"{base}/whip/0"
            cases = [
                (whip, b"this is not sdp", SDP, 400),
                (whip, b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", SDP, 400),  # no media
                (whip, b"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n", SDP, 400),  # no ICE/DTLS
                (whip, b"v=0\r\n\x00\x01\r\n", SDP, 400),
                (whip, "v=0\r\nm=audio 9 x 1\r\n".encode("utf-16"), SDP, 400),
                (whip, b"v=0\r\n", {"Content-Type": "text/plain"}, 415),
                (whip, b"v=0\r\n", {}, 415),
                (whip, b"v=0\r\n" + b"a=x\r\n" * 20000, SDP, 413),
                (f"{base}/whip/nobody", b"v=0\r\n", SDP, 404),
                (f"{base}/whip/9", b"v=0\r\n", SDP, 404),
                (f"{base}/whep", b"garbage", SDP, 400),
            ]
            for url, body, headers, status in cases:
                r = await http.post(url, data=body, headers={**AUTH, **headers})
                assert r.status == status, (url, body[:30], r.status, await r.text())

            async def chunks():  # no Content-Length: the cap is enforced while reading
                for _ in range(100):
                    yield b"a=x\r\n" * 200

            r = await http.post(whip, data=chunks(), headers={**AUTH, **SDP})
            assert r.status == 413
            r = await http.delete(f"{base}/sessions/nope", headers=AUTH)
            assert r.status == 404
            r = await http.patch(f"{base}/sessions/nope", data=b"", headers=AUTH)
            assert r.status == 405  # no trickle ICE
            assert server.sessions == {}

    asyncio.run(go())


def test_an_offer_the_endpoint_cannot_use_is_400(loaded, speech) -> None:
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            viewer = Viewer()  # a receive-only offer sent to WHIP: nothing to ingest
            try:
                await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
                r = await http.post(
                    f"{base}/whip/0", data=viewer.pc.localDescription.sdp, headers={**AUTH, **SDP}
                )
                assert r.status == 400 and "send audio" in await r.text()
                sdp = viewer.pc.localDescription.sdp
                unsupported = "\r\n".join(
                    line.replace("a=recvonly", "a=sendonly")
                    for line in sdp.split("\r\n")
                    if not line.startswith(("a=rtpmap", "a=fmtp", "a=rtcp-fb"))
                ).replace("UDP/TLS/RTP/SAVPF 111 0 8", "UDP/TLS/RTP/SAVPF 99")
                r = await http.post(f"{base}/whip/0", data=unsupported, headers={**AUTH, **SDP})
                text = await r.text()
                assert r.status == 400 and "refused" in text, text  # an audio format aiortc cannot decode
                assert server.sessions == {}
            finally:
                await viewer.close()

    asyncio.run(go())


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token-000000", "Basic dGVzdA==", f"bearer{TOKEN}", "Bearer "]
)
def test_no_token_no_peer_connection(loaded, speech, monkeypatch, header) -> None:
    created = []

    class CountingPeerConnection(server_module.RTCPeerConnection):
        def __init__(self, *args, **kwargs) -> None:
            created.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(server_module, "RTCPeerConnection", CountingPeerConnection)

    async def go() -> None:
        async with served(loaded) as (server, base, http):
            headers = {} if header is None else {"Authorization": header}
            speaker, viewer = Speaker(speech[0]), Viewer()
            try:
                await speaker.pc.setLocalDescription(await speaker.pc.createOffer())
                await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
                r = await http.post(
                    f"{base}/whip/0", data=speaker.pc.localDescription.sdp, headers={**headers, **SDP}
                )
                assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
                r = await http.post(
                    f"{base}/whep", data=viewer.pc.localDescription.sdp, headers={**headers, **SDP}
                )
                assert r.status == 401
                for method, path in (
                    ("GET", "/binding"),
                    ("PUT", "/binding"),
                    ("GET", "/stats"),
                    ("DELETE", "/sessions/x"),
                ):
                    r = await http.request(method, f"{base}{path}", headers=headers)
                    assert r.status == 401, (method, path)
                assert (await http.get(f"{base}/health")).status == 200
                assert created == [] and server.peer_connections_created == 0 and server.sessions == {}
                assert server.room.binding() == {}
            finally:
                await speaker.close()
                await viewer.close()

    asyncio.run(go())


def test_guard_configuration_rules() -> None:
    with pytest.raises(ServerConfigError, match="loopback"):
        GuardConfig.build(None, True, "0.0.0.0")
    with pytest.raises(ServerConfigError, match="token is required"):
        GuardConfig.build(None, False, "127.0.0.1")
    with pytest.raises(ServerConfigError, match="exclude"):
        GuardConfig.build(TOKEN, True, "127.0.0.1")
    with pytest.raises(ServerConfigError, match="8-256"):
        GuardConfig.build("short", False, "127.0.0.1")
    with pytest.raises(ServerConfigError, match="exact origin"):
        GuardConfig.build(TOKEN, False, "127.0.0.1", ["*"])
    assert GuardConfig.build(None, True, "127.0.0.1").token is None


def test_cors_preflight_only_for_configured_origins(loaded) -> None:
    origin = "http://127.0.0.1:5173"
    guard = GuardConfig.build(TOKEN, False, "127.0.0.1", [origin])

    async def go() -> None:
        async with served(loaded, guard=guard) as (_server, base, http):
            ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
            r = await http.options(f"{base}/whip/0", headers={"Origin": origin, **ask})
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == origin
            assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
            r = await http.options(f"{base}/whip/0", headers={"Origin": "http://evil.example", **ask})
            assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
            r = await http.get(f"{base}/binding", headers={"Origin": origin, **AUTH})
            assert r.headers["Access-Control-Allow-Origin"] == origin
            assert "Location" in r.headers["Access-Control-Expose-Headers"]
            r = await http.get(f"{base}/binding", headers={"Origin": "http://evil.example", **AUTH})
            assert "Access-Control-Allow-Origin" not in r.headers

    asyncio.run(go())


def test_open_server_needs_no_token_and_pages_are_served(loaded) -> None:
    async def go() -> None:
        async with served(loaded, guard=GuardConfig.build(None, True, "127.0.0.1")) as (_, base, http):
            assert (await http.get(f"{base}/binding")).status == 200
            for path, kind in (
                ("/", "text/html"),
                ("/viewer", "text/html"),
                ("/web/bya.js", "text/javascript"),
            ):
                r = await http.get(f"{base}{path}")
                assert r.status == 200 and r.content_type == kind, path
            for path in ("/web/../server.py", "/web/%2e%2e%2fserver.py", "/web/speaker.html", "/web/x.js"):
                assert (await http.get(f"{base}{path}")).status == 404, path

    asyncio.run(go())


# -- sessions end -------------------------------------------------------------------------------------
def test_delete_ends_a_session(loaded, speech) -> None:
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            speaker, viewer = Speaker(speech[0]), Viewer()
            try:
                assert await speaker.publish(http, base, 0, TOKEN) == 201
                assert await viewer.play(http, base, TOKEN) == 201
                await viewer.frames(3)
                for peer in (speaker, viewer):
                    r = await http.delete(base + peer.location, headers=AUTH)
                    assert r.status == 200
                    assert (await http.delete(base + peer.location, headers=AUTH)).status == 404
                assert server.sessions == {}
                assert speaker.session_id not in server.room.binding()
                await wait_for(lambda: viewer.pc.connectionState == "closed", 5.0)  # DTLS close reached it
            finally:
                await speaker.close()
                await viewer.close()

    asyncio.run(go())


def test_vanishing_peers_are_dropped_and_the_others_go_on(loaded, speech) -> None:
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            gone, staying = Speaker(speech[0]), Speaker(speech[1])
            lost_viewer, viewer = Viewer(), Viewer()
            try:
                assert await gone.publish(http, base, 0, TOKEN) == 201
                assert await staying.publish(http, base, 1, TOKEN) == 201
                assert await lost_viewer.play(http, base, TOKEN) == 201
                assert await viewer.play(http, base, TOKEN) == 201
                await viewer.frames(10)
                await lost_viewer.frames(2)
                gone.vanish()
                lost_viewer.vanish()
                ids = {gone.session_id, lost_viewer.location.rsplit("/", 1)[1]}
                await wait_for(lambda: not ids & set(server.sessions), 8.0)
                assert staying.session_id in server.sessions and len(server.sessions) == 2
                frames = await viewer.frames(25)  # the remaining viewer still gets a second of video
                assert len(frames) == 25
                assert staying.session_id in server.room.binding()
            finally:
                for peer in (gone, staying, lost_viewer, viewer):
                    await peer.close()

    asyncio.run(go())


def test_viewer_limit_is_a_503_with_retry_after(loaded) -> None:
    async def go() -> None:
        async with served(loaded, limits=ServerLimits(max_viewers=1)) as (server, base, http):
            first, second = Viewer(), Viewer()
            try:
                assert await first.play(http, base, TOKEN) == 201
                r = await http.post(f"{base}/whep", data=b"v=0\r\n", headers={**AUTH, **SDP})
                assert r.status == 400  # the body is checked before capacity
                assert await second.play(http, base, TOKEN) == 503
                assert server.peer_connections_created == 1
            finally:
                await first.close()
                await second.close()

    asyncio.run(go())
