"""What a hostile peer found (issue 22 section 6): half-open sessions, idle connections, DNS rebinding,
out-of-scope ICE candidates, and JSON built to crash the parser.

Everything runs in-process on 127.0.0.1 (tests/test_server.py's `served`); waits are bounded polls or
short timeouts injected through ServerLimits / ConnectionLimits, never sleeps used as synchronisation.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from test_server import AUTH, SDP, TOKEN, loaded, loopback_ice, served, wait_for  # noqa: F401 (fixtures)
from webrtc_peers import Viewer

from realtime.server.app import ServerLimits
from realtime.server.http_guard import GuardConfig


async def _offer(viewer: Viewer) -> str:
    await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
    return viewer.pc.localDescription.sdp


def _without_candidates(sdp: str) -> str:
    drop = ("a=candidate", "a=end-of-candidates")
    return "\r\n".join(line for line in sdp.split("\r\n") if not line.startswith(drop))


def _with_candidate(sdp: str, candidate: str) -> str:
    """The offer with one more candidate line after each media section's first candidate."""
    out, added = [], set()
    for line in sdp.split("\r\n"):
        out.append(line)
        if line.startswith("a=mid:"):
            added.add(line)
            out.append(f"a=candidate:{candidate}")
    assert added, "the offer has no media section"
    return "\r\n".join(out)


# -- 1. half-open sessions expire -----------------------------------------------------------------------
def test_half_open_sessions_expire_and_free_their_slot(loaded) -> None:  # noqa: F811
    async def go() -> None:
        limits = ServerLimits(max_viewers=2, connect_timeout_s=1.0, idle_timeout_s=2.0)
        async with served(loaded, limits=limits) as (server, base, http):
            half, real, late = Viewer(), Viewer(), Viewer()
            try:
                r = await http.post(
                    f"{base}/whep", data=_without_candidates(await _offer(half)), headers={**AUTH, **SDP}
                )
                assert r.status == 201
                half_id = r.headers["Location"].rsplit("/", 1)[1]
                stats = await (await http.get(f"{base}/stats", headers=AUTH)).json()
                (view,) = [s for s in stats["sessions"] if s.get("id") == half_id]
                assert view["kind"] == "whep" and view["room"] == "default" and "age_s" in view
                assert view["state"] in ("new", "connecting")
                assert await real.play(http, base, TOKEN) == 201
                await wait_for(lambda: half_id not in server.sessions, 15.0)  # expired, not deleted
                assert len(await real.frames(2)) == 2  # the connected viewer is kept
                assert server.count_sessions("whep") == 1
                assert await late.play(http, base, TOKEN) == 201  # the expired one's slot is free again
            finally:
                for viewer in (half, real, late):
                    await viewer.close()

    asyncio.run(go())


def test_an_operator_can_list_and_delete_a_half_open_session(loaded) -> None:  # noqa: F811
    async def go() -> None:
        async with served(loaded) as (server, base, http):  # default connect timeout: 15 s
            half = Viewer()
            try:
                r = await http.post(
                    f"{base}/whep",
                    data=_without_candidates(await _offer(half)),
                    headers={**AUTH, **SDP},
                )
                assert r.status == 201
                stats = await (await http.get(f"{base}/stats", headers=AUTH)).json()
                (view,) = stats["sessions"]
                assert {"id", "kind", "room", "state", "age_s"} <= set(view)
                r = await http.delete(f"{base}/sessions/{view['id']}", headers=AUTH)
                assert r.status == 200 and server.sessions == {}
            finally:
                await half.close()

    asyncio.run(go())


# -- 2. idle connections are timed out and capped per address -------------------------------------------
def test_idle_connections_are_closed_and_capped_per_address() -> None:
    from realtime.server.connections import ConnectionLimits, start_site

    async def go() -> None:
        app = web.Application()

        async def health(_request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        app.router.add_get("/health", health)
        limits = ConnectionLimits(keepalive_timeout_s=0.5, max_per_address=4)
        runner = await start_site(app, "127.0.0.1", 0, limits)
        port = runner.addresses[0][1]
        streams = []
        try:
            for _ in range(8):  # twice the cap, none ever sends a request
                streams.append(await asyncio.open_connection("127.0.0.1", port))

            async def closed(reader: asyncio.StreamReader) -> bool:
                try:
                    return await asyncio.wait_for(reader.read(), 10.0) == b""
                except ConnectionResetError:
                    return True

            # the 4 over the cap are refused at once, the 4 idle ones closed after the keep-alive timeout
            assert all(await asyncio.gather(*(closed(r) for r, _ in streams)))
            async with aiohttp.ClientSession() as http:  # the slots are free again
                r = await http.get(f"http://127.0.0.1:{port}/health")
                assert r.status == 200
        finally:
            for _, writer in streams:
                writer.close()
            await runner.cleanup()

    asyncio.run(go())


def test_a_request_started_but_never_finished_is_closed() -> None:
    from realtime.server.connections import ConnectionLimits, start_site

    async def go() -> None:
        app = web.Application()
        runner = await start_site(app, "127.0.0.1", 0, ConnectionLimits(keepalive_timeout_s=0.5))
        port = runner.addresses[0][1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # headers never end
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 10.0) == b""
        finally:
            writer.close()
            await runner.cleanup()

    asyncio.run(go())


# -- 3. DNS rebinding -----------------------------------------------------------------------------------
def test_open_mode_refuses_foreign_host_and_origin(loaded) -> None:  # noqa: F811
    async def go() -> None:
        guard = GuardConfig.build(None, True, "127.0.0.1")
        async with served(loaded, guard=guard) as (server, base, http):
            port = base.rsplit(":", 1)[1]
            evil = f"rebind.evil.example:{port}"
            rebound = {"Host": evil, "Origin": f"http://{evil}"}
            r = await http.get(f"{base}/stats", headers=rebound)
            assert r.status in (403, 421) and "host" in (await r.text()).lower()
            viewer = Viewer()
            try:
                offer = await _offer(viewer)
                r = await http.post(f"{base}/whep", data=offer, headers={**rebound, **SDP})
                assert r.status in (403, 421)
                assert server.peer_connections_created == 0 and server.sessions == {}
                r = await http.get(f"{base}/", headers={"Host": evil})  # the pages too
                assert r.status in (403, 421)
                # a loopback Host with a foreign Origin: a page elsewhere calling in
                foreign = {"Origin": "http://evil.example"}
                r = await http.post(f"{base}/whep", data=offer, headers={**foreign, **SDP})
                assert r.status == 403 and "origin" in (await r.text()).lower()
                assert server.peer_connections_created == 0
                # what a local browser sends is still served
                for headers in (
                    {"Host": f"localhost:{port}"},
                    {"Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}"},
                    {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"},
                ):
                    r = await http.get(f"{base}/stats", headers=headers)
                    assert r.status == 200, (headers, await r.text())
            finally:
                await viewer.close()

    asyncio.run(go())


# -- 4. ICE candidates ----------------------------------------------------------------------------------
OFF_SCOPE = [
    "9 1 udp 2130706431 0123abcd-4567.local 50000 typ host",  # mDNS: a multicast query off loopback
    "9 1 udp 2130706431 10.1.2.3 50000 typ host",  # off loopback
    "9 1 udp 2130706431 203.0.113.7 50000 typ host",
    "9 1 udp 2130706431 fd00::7 50000 typ host",  # another family too
]


@pytest.mark.parametrize(
    "candidate",
    ["9 1 udp 2130706431 127.0.0.1 99999 typ host", "9 1 udp 2130706431 127.0.0.1 -5 typ host"],
)
def test_a_candidate_with_a_bad_port_is_400(loaded, candidate) -> None:  # noqa: F811
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            viewer = Viewer()
            try:
                offer = _with_candidate(await _offer(viewer), candidate)
                r = await http.post(f"{base}/whep", data=offer, headers={**AUTH, **SDP})
                assert r.status == 400 and "candidate" in (await r.text()), await r.text()
                assert server.peer_connections_created == 0 and server.sessions == {}
            finally:
                await viewer.close()

    asyncio.run(go())


@pytest.mark.parametrize("candidate", OFF_SCOPE)
def test_off_scope_candidates_never_reach_ice(loaded, candidate) -> None:  # noqa: F811
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            viewer = Viewer()
            try:
                address = candidate.split()[4]
                offer = await _offer(viewer)
                # alone, nothing is left to connect to: 400, no peer connection
                only = _with_candidate(_without_candidates(offer), candidate)
                r = await http.post(f"{base}/whep", data=only, headers={**AUTH, **SDP})
                assert r.status == 400 and "candidate" in (await r.text()), await r.text()
                assert server.peer_connections_created == 0
                # beside loopback ones (what a browser sends: every interface), it is dropped
                r = await http.post(
                    f"{base}/whep", data=_with_candidate(offer, candidate), headers={**AUTH, **SDP}
                )
                assert r.status == 201, await r.text()
                (session,) = server.sessions.values()
                remote = session.pc.remoteDescription.sdp
                assert address not in remote and "127.0.0.1" in remote
            finally:
                await viewer.close()

    asyncio.run(go())


# -- 5. JSON that crashes the parser --------------------------------------------------------------------
def test_deep_or_huge_json_is_400(loaded) -> None:  # noqa: F811
    async def go() -> None:
        async with served(loaded) as (server, base, http):
            json_type = {**AUTH, "Content-Type": "application/json"}
            digits = "7" * 5000
            cases = [
                ("PUT", "/binding", "[" * 5000 + "]" * 5000, "deep"),
                ("PUT", "/binding", '{"inputs": ' + '{"a": ' * 1500 + "1" + "}" * 1501, "deep"),
                ("PUT", "/binding", '{"inputs": {"x": ' + digits + "}}", "digits"),
                ("POST", "/rooms", '{"name": "r", "seed": ' + digits + "}", "digits"),
                ("POST", "/rooms", '{"name": "r", "seed": -' + digits + "}", "digits"),
            ]
            for method, path, body, word in cases:
                r = await http.request(method, base + path, data=body.encode(), headers=json_type)
                text = await r.text()
                assert r.status == 400 and word in text, (path, body[:40], r.status, text[:200])
            assert set(server.rooms) == {"default"}

    asyncio.run(go())


# -- minor ----------------------------------------------------------------------------------------------
def test_bearer_scheme_is_case_insensitive(loaded) -> None:  # noqa: F811
    async def go() -> None:
        async with served(loaded) as (_server, base, http):
            for scheme in ("bearer", "BEARER", "Bearer"):
                r = await http.get(f"{base}/stats", headers={"Authorization": f"{scheme} {TOKEN}"})
                assert r.status == 200, scheme
            r = await http.get(f"{base}/stats", headers={"Authorization": f"Basic {TOKEN}"})
            assert r.status == 401

    asyncio.run(go())
