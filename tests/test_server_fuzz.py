"""Hostile SDP against WHIP and WHEP: seeded mutations of real offers, bounded in count.

Every answer must be 201 or a 4xx (never a 500, never a hang), every accepted session must end cleanly
on DELETE, and nothing may be left behind: no session, no engine input, no open peer connection.
"""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest
from test_server import AUTH, SDP, TOKEN, loaded, served  # noqa: F401 (loaded is a fixture)
from webrtc_peers import Speaker, Viewer

import realtime.server.app as server_module

MUTATIONS = 150  # per endpoint; ~10 s in all on the 2-core CPU
REQUEST_TIMEOUT_S = 10  # only a hang reaches it (an answer takes milliseconds)


def _mutate(sdp: str, rng: random.Random) -> bytes:
    lines = sdp.split("\r\n")
    op = rng.randrange(9)
    i = rng.randrange(len(lines))
    if op == 0:  # drop a line
        del lines[i]
    elif op == 1:  # duplicate a line
        lines.insert(i, lines[i])
    elif op == 2:  # truncate the whole offer
        return sdp[: rng.randrange(len(sdp))].encode()
    elif op == 3:  # junk value after the '='
        lines[i] = lines[i][:2] + "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(1, 60)))
    elif op == 4:  # huge or negative numbers in a line
        lines[i] = " ".join(
            rng.choice(["-1", "99999999999999999999", "0", "65536"]) if w.isdigit() else w
            for w in lines[i].split(" ")
        )
    elif op == 5:  # swap two lines
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 6:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    elif op == 7:  # change the media kind or direction
        lines = [
            line.replace(
                rng.choice(["m=audio", "a=sendonly", "a=recvonly", "m=video"]),
                rng.choice(["m=text", "a=inactive", "m=application", "a=sendrecv"]),
            )
            for line in lines
        ]
    else:  # drop every line of one attribute kind
        kind = rng.choice(["a=rtpmap", "a=candidate", "a=ice-pwd", "a=fingerprint", "a=mid", "a=group", "c="])
        lines = [line for line in lines if not line.startswith(kind)]
    return "\r\n".join(lines).encode()


def _open_sockets(pc) -> int:
    """UDP sockets still open under a peer connection's ICE transports (aiortc keeps them private)."""
    ice = pc._RTCPeerConnection__iceTransports
    return sum(not p.transport.is_closing() for t in ice for p in t._connection._protocols)


@pytest.mark.slow
def test_mutated_offers_never_break_the_server(loaded, monkeypatch) -> None:  # noqa: F811
    created: list = []

    class RecordedPeerConnection(server_module.RTCPeerConnection):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(server_module, "RTCPeerConnection", RecordedPeerConnection)

    async def go() -> None:
        async with served(loaded) as (server, base, http):
            speaker, viewer = Speaker(np.zeros(48000, np.float32)), Viewer()
            await speaker.pc.setLocalDescription(await speaker.pc.createOffer())
            await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
            offers = {"/whip/0": speaker.pc.localDescription.sdp, "/whep": viewer.pc.localDescription.sdp}
            rng = random.Random(1234)
            statuses = {}
            for path, offer in offers.items():
                for _ in range(MUTATIONS):
                    body = _mutate(offer, rng)
                    try:
                        post = http.post(base + path, data=body, headers={**AUTH, **SDP})
                        r = await asyncio.wait_for(post, REQUEST_TIMEOUT_S)
                    except TimeoutError:
                        raise AssertionError(
                            f"no answer to {path}: the server hangs on {body[:200]!r}"
                        ) from None
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    assert r.status in (201, 400), (path, r.status, await r.text(), body[:200])
                    if r.status == 201:
                        d = await http.delete(base + r.headers["Location"], headers=AUTH)
                        assert d.status == 200
            assert statuses.get(400, 0) > MUTATIONS // 2 and statuses.get(201, 0) > 0  # both paths ran
            assert server.sessions == {} and server.room.binding() == {}  # nothing is left behind
            leaked = [pc for pc in created if _open_sockets(pc)]
            assert leaked == [], f"{len(leaked)} peer connections kept a transport open"
            await speaker.close()
            await viewer.close()
            # the server still works afterwards
            fresh = Viewer()
            assert await fresh.play(http, base, TOKEN) == 201
            assert len(await fresh.frames(5)) == 5
            await fresh.close()

    asyncio.run(go())
