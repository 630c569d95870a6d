"""Several rooms in one live server, and admission: create/delete, room-scoped WHIP/WHEP, 503 past the limit.

Everything runs in-process on 127.0.0.1 with aiortc peers (tests/webrtc_peers.py) against real engine
Rooms driven by the tiny generator preset; frames flowing is what matters, not what they show.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import aiohttp
import numpy as np
import pytest
import torch
from aiohttp import web
from webrtc_peers import Speaker, Viewer

from realtime.engine.room import Room
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.default_model import LoadedModel
from realtime.model.generator import Generator
from realtime.scene.scenes import world_scene
from realtime.server.admission import RETRY_AFTER_S, measure_capacity, rooms_that_fit, viewers_that_fit
from realtime.server.app import LiveServer, ServerLimits
from realtime.server.http_guard import GuardConfig
from realtime.server.rooms import RoomRequest, RoomRequestError, parse_room_request
from realtime.server.webrtc import restrict_ice_addresses, tune_consent

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SDP = {"Content-Type": "application/sdp"}
LIMITS = ServerLimits(idle_timeout_s=2.0, max_rooms=3, max_viewers_total=8)


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    torch.manual_seed(0)
    gen = Generator(GENERATOR_CONFIGS["tiny"]).eval()
    return LoadedModel(gen, FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval(), 1, None)


@pytest.fixture
def speech() -> np.ndarray:
    t = np.arange(48_000 * 4) / 48_000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)


@pytest.fixture(autouse=True)
def loopback_ice():
    restrict_ice_addresses(["127.0.0.1"])
    tune_consent(0.4, 3)
    yield
    tune_consent(5, 6)


@contextlib.asynccontextmanager
async def served(loaded, limits: ServerLimits = LIMITS):
    """A LiveServer around a 2-character default room on 127.0.0.1:<free port>; yields (server, base, http)."""
    room = Room(loaded, world_scene(2, seed=0, size=loaded.generator.cfg.frame_size), steps=1, seed=0)
    server = LiveServer(room, GuardConfig.build(TOKEN, False, "127.0.0.1"), limits)
    runner = web.AppRunner(server.app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield server, f"http://127.0.0.1:{runner.addresses[0][1]}", http
    finally:
        await runner.cleanup()


async def create(http, base: str, body: dict) -> aiohttp.ClientResponse:
    return await http.post(f"{base}/rooms", json=body, headers=AUTH)


# -- room requests (no server) ------------------------------------------------------------------------
def test_room_request_parsing() -> None:
    assert parse_room_request({"name": "r1"}) == RoomRequest("r1", 2, None, 0)
    assert parse_room_request({"name": "a-b_2", "characters": 4, "seed": 7}) == RoomRequest(
        "a-b_2", 4, None, 7
    )
    assert parse_room_request({"name": "s", "scene": "studio"}).scene == "studio"
    assert parse_room_request({"name": "m", "motion": True}).motion is True
    assert parse_room_request({"name": "m"}).motion is None
    assert parse_room_request({"name": "g", "audio_guidance": 2.5}).audio_guidance == 2.5
    assert parse_room_request({"name": "g", "audio_guidance": 1}).audio_guidance == 1.0
    assert parse_room_request({"name": "g"}).audio_guidance is None
    bad = [
        {"name": "r", "motion": "yes"},
        {"name": "r", "motion": 1},
        {"name": "r", "audio_guidance": "2"},
        {"name": "r", "audio_guidance": True},
        {"name": "r", "audio_guidance": 0.5},
        {"name": "r", "audio_guidance": 5},
        {"name": "r", "audio_guidance": float("nan")},
        [],
        {"characters": 2},
        {"name": ""},
        {"name": "UPPER"},
        {"name": "../x"},
        {"name": "x" * 33},
        {"name": "default"},
        {"name": "r", "characters": 5},
        {"name": "r", "characters": True},
        {"name": "r", "characters": "2"},
        {"name": "r", "seed": -1},
        {"name": "r", "scene": "../../etc/passwd"},
        {"name": "r", "scene": "/tmp/scene.json"},
        {"name": "r", "scene": "nosuchscene"},
        {"name": "r", "scene": "studio", "characters": 2},
        {"name": "r", "extra": 1},
    ]
    for doc in bad:
        with pytest.raises(RoomRequestError):
            parse_room_request(doc)


def test_capacity_rule() -> None:
    assert rooms_that_fit(80.0, 50.0) == 1  # 0.8 x 80 / 50
    assert rooms_that_fit(80.0, 30.0) == 2
    assert rooms_that_fit(80.0, 300.0) == 1  # the default room always runs
    assert viewers_that_fit(2, 2.0) == 10  # 0.25 x 2 cores x 40 ms / 2 ms
    assert viewers_that_fit(2, 100.0) == 1


def test_measured_capacity_with_the_tiny_model(loaded) -> None:
    scene = world_scene(2, seed=0, size=loaded.generator.cfg.frame_size)
    c = measure_capacity(loaded, scene, steps=1)
    assert c.chunk_ms == loaded.generator.cfg.chunk_frames * 40
    assert c.room_chunk_ms > 0 and c.encode_ms > 0 and c.max_rooms >= 1 and c.max_viewers >= 1
    assert "rule" in c.as_dict()


# -- rooms over HTTP ------------------------------------------------------------------------------------
def test_create_list_and_delete_rooms(loaded) -> None:
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            r = await create(http, base, {"name": "r1", "characters": 3, "seed": 2})
            assert r.status == 201, await r.text()
            assert r.headers["Location"] == "/rooms/r1"
            view = await r.json()
            assert len(view["characters"]) == 3 and view["whep"] == "/rooms/r1/whep"
            assert (await create(http, base, {"name": "r1"})).status == 409
            listing = await (await http.get(f"{base}/rooms", headers=AUTH)).json()
            assert [room["name"] for room in listing["rooms"]] == ["default", "r1"]
            assert listing["limits"]["max_rooms"] == 3
            binding = await (await http.get(f"{base}/rooms/r1/binding", headers=AUTH)).json()
            assert len(binding["characters"]) == 3
            default = await (await http.get(f"{base}/rooms/default/binding", headers=AUTH)).json()
            assert default == await (await http.get(f"{base}/binding", headers=AUTH)).json()
            room = server.rooms["r1"].room
            assert room is not server.room and room.loaded is server.room.loaded  # one model, two rooms
            r = await create(http, base, {"name": "loud", "audio_guidance": 3})
            assert r.status == 201, await r.text()
            assert server.rooms["loud"].room.stats()["audio_guidance"] == 3.0
            assert room.stats()["audio_guidance"] == server.room.loaded.audio_guidance  # the model's own
            r = await create(http, base, {"name": "bad", "audio_guidance": 9})
            assert r.status == 400 and "audio_guidance" in await r.text()
            assert (await http.delete(f"{base}/rooms/loud", headers=AUTH)).status == 200
            assert (await http.delete(f"{base}/rooms/r1", headers=AUTH)).status == 200
            assert room.stats()["state"] == "stopped"
            for method, path in (("GET", "/rooms/r1/stats"), ("DELETE", "/rooms/r1"), ("GET", "/rooms/r1")):
                assert (await http.request(method, f"{base}{path}", headers=AUTH)).status == 404
            r = await http.delete(f"{base}/rooms/default", headers=AUTH)
            assert r.status == 403 and server.room.stats()["state"] == "running"

    asyncio.run(go())


def test_room_scoped_whip_and_whep(loaded, speech) -> None:
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            assert (await create(http, base, {"name": "r1"})).status == 201
            room_base = f"{base}/rooms/r1"
            name = server.rooms["r1"].room.characters[1]
            speaker, viewer = Speaker(speech), Viewer()
            try:
                assert await speaker.publish(http, room_base, name, TOKEN) == 201
                assert speaker.location.startswith("/sessions/")
                assert await viewer.play(http, room_base, TOKEN) == 201
                assert len(await viewer.frames(10)) == 10
                sid = speaker.session_id
                binding = await (await http.get(f"{room_base}/binding", headers=AUTH)).json()
                assert binding["speakers"] == {sid: 1}
                assert server.room.binding() == {}  # the default room's table is untouched
                default = await (await http.get(f"{base}/binding", headers=AUTH)).json()
                assert default["speakers"] == {}
                # a speaker of r1 cannot be re-bound through the default room's table
                r = await http.put(f"{base}/binding", json={"inputs": {sid: 0}}, headers=AUTH)
                assert r.status == 400
                r = await http.put(f"{room_base}/binding", json={"inputs": {sid: 0}}, headers=AUTH)
                assert r.status == 200 and server.rooms["r1"].room.binding()[sid] == 0
                stats = await (await http.get(f"{room_base}/stats", headers=AUTH)).json()
                assert {s["kind"] for s in stats["sessions"]} == {"whip", "whep"}
                assert stats["room"]["frames"] > 0
                host = (await (await http.get(f"{base}/stats", headers=AUTH)).json())["host"]
                assert host["rooms"]["r1"]["speakers"] == 1 and host["rooms"]["default"]["viewers"] == 0
                assert (await http.delete(f"{base}/rooms/r1", headers=AUTH)).status == 200
                assert server.sessions == {}  # the room's sessions ended with it
            finally:
                await speaker.close()
                await viewer.close()

    asyncio.run(go())


async def _until(predicate, what: str, timeout_s: float = 30.0) -> None:
    """Poll predicate() until it holds; the generous bound only turns a hang into a clear failure."""
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not reached within {timeout_s} s")


def test_past_the_room_limit_503_and_the_running_room_keeps_its_frames(loaded) -> None:
    async def go() -> None:
        async with served(loaded, ServerLimits(idle_timeout_s=2.0, max_rooms=2)) as (server, base, http):
            viewer = Viewer()
            try:
                assert await viewer.play(http, base, TOKEN) == 201
                await viewer.frames(5)
                assert (await create(http, base, {"name": "r1"})).status == 201
                before = server.room.stats()["frames"]
                r = await create(http, base, {"name": "r2"})
                assert r.status == 503 and r.headers["Retry-After"] == str(RETRY_AFTER_S)
                assert "room limit" in await r.text()
                assert set(server.rooms) == {"default", "r1"}
                assert (await create(http, base, {"name": "bad name"})).status == 400  # body checked first
                # the running room goes on while r1 warms up and r2 is refused: 25 more frames made ...
                await _until(lambda: server.room.stats()["frames"] >= before + 25, "25 more frames")
                frames = await viewer.frames(25)  # ... and its viewer goes on receiving, in order
                assert len(frames) == 25 and all(b.pts > a.pts for a, b in itertools.pairwise(frames))
                assert server.room.stats()["state"] == server.rooms["r1"].room.stats()["state"] == "running"
                # a freed slot admits a room again
                assert (await http.delete(f"{base}/rooms/r1", headers=AUTH)).status == 200
                assert (await create(http, base, {"name": "r2"})).status == 201
            finally:
                await viewer.close()

    asyncio.run(go())


def test_host_viewer_limit_counts_every_room(loaded) -> None:
    limits = ServerLimits(idle_timeout_s=2.0, max_rooms=2, max_viewers_total=1)

    async def go() -> None:
        async with served(loaded, limits) as (server, base, http):
            first, second = Viewer(), Viewer()
            try:
                assert (await create(http, base, {"name": "r1"})).status == 201
                assert await first.play(http, base, TOKEN) == 201
                assert await second.play(http, f"{base}/rooms/r1", TOKEN) == 503
                assert server.peer_connections_created == 1
            finally:
                await first.close()
                await second.close()

    asyncio.run(go())


def test_bad_room_requests_get_4xx(loaded) -> None:
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            json_type = {**AUTH, "Content-Type": "application/json"}
            for body in (b"not json", b"[]", b'{"name": "r", "characters": 9}', b'{"name": "r", "x": 1}'):
                r = await http.post(f"{base}/rooms", data=body, headers=json_type)
                assert r.status == 400, (body, r.status)
            r = await http.post(f"{base}/rooms", data=b"{}", headers={**AUTH, "Content-Type": "text/plain"})
            assert r.status == 415
            r = await http.post(f"{base}/rooms", data=b" " * 20000, headers=json_type)
            assert r.status == 413
            for method, path in (
                ("POST", "/rooms/nope/whip/0"),
                ("POST", "/rooms/nope/whep"),
                ("GET", "/rooms/nope/binding"),
                ("PUT", "/rooms/nope/binding"),
                ("GET", "/rooms/nope/stats"),
                ("GET", "/rooms/nope"),
                ("DELETE", "/rooms/nope"),
            ):
                r = await http.request(method, f"{base}{path}", data=b"v=0\r\n", headers={**AUTH, **SDP})
                assert r.status == 404, (method, path, r.status)
            assert list(server.rooms) == ["default"] and server.peer_connections_created == 0

    asyncio.run(go())


def test_room_routes_need_the_token(loaded) -> None:
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            for headers in ({}, {"Authorization": "Bearer wrong-token-000000"}):
                for method, path in (
                    ("POST", "/rooms"),
                    ("GET", "/rooms"),
                    ("GET", "/rooms/default"),
                    ("DELETE", "/rooms/default"),
                    ("POST", "/rooms/default/whip/0"),
                    ("POST", "/rooms/default/whep"),
                    ("GET", "/rooms/default/binding"),
                    ("PUT", "/rooms/default/binding"),
                    ("GET", "/rooms/default/stats"),
                ):
                    r = await http.request(method, f"{base}{path}", data=b"{}", headers=headers)
                    assert r.status == 401, (method, path, r.status)
            assert list(server.rooms) == ["default"] and server.peer_connections_created == 0

    asyncio.run(go())
