"""WHIP (RFC 9725) and WHEP signalling for aiortc peers: one POST with the whole offer, DELETE to leave.

aiortc gathers every ICE candidate before it writes an offer and `bya serve` takes no trickle ICE, so one
round trip sets a session up. A refused offer raises SessionError with the server's status and one-line
reason. `connect_loopback` keeps a client's ICE candidates on 127.0.0.1 when the server is local
(aioice never offers loopback by itself; NOTES.md).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from dataclasses import dataclass

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from realtime.errors import BYAError
from realtime.server.http_guard import is_loopback
from realtime.server.webrtc import close_quietly, restrict_ice_addresses

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0  # ICE + DTLS on loopback take ~50 ms; a LAN well under a second
HTTP_TIMEOUT_S = 10.0  # one SDP exchange; the server answers once its own gathering is done


class SessionError(BYAError):
    """The server refused an offer (4xx/5xx), or a session failed to connect."""

    def __init__(self, message: str, status: int | None = None, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of a refused offer; None when no answer came
        self.retry_after = retry_after  # its Retry-After header (a 503 past a server limit)


def check_base_url(url: str) -> str:
    """'http(s)://host:port' with no path, query or fragment; SessionError otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SessionError(f"server URL must be http://HOST:PORT, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SessionError(f"server URL must have no path, query or fragment, got {url!r}")
    try:
        parts.port  # noqa: B018 (validates the port)
    except ValueError as exc:
        raise SessionError(f"server URL {url!r} has an invalid port") from exc
    return f"{parts.scheme}://{parts.netloc}"


def is_loopback_url(url: str) -> bool:
    return is_loopback(urllib.parse.urlsplit(url).hostname or "")


def connect_loopback(base_url: str) -> None:
    """Offer only 127.0.0.1 as ICE candidate when the server is on loopback (process-wide, like the server)."""
    if is_loopback_url(base_url):
        restrict_ice_addresses(["127.0.0.1"])


@dataclass
class RemoteSession:
    """One WHIP or WHEP session as the server named it."""

    url: str  # absolute URL of the session (the Location header), what DELETE ends
    answer: str  # the server's SDP answer

    @property
    def id(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[1]


async def exchange(
    http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection, token: str | None
) -> RemoteSession:
    """POST pc's offer to a WHIP/WHEP endpoint, apply the answer; SessionError if refused."""
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    try:
        async with http.post(url, data=pc.localDescription.sdp, headers=headers, timeout=timeout) as r:
            body = await r.text()
            if r.status != 201:
                raise SessionError(
                    f"POST {url}: {r.status} {body.strip()[:200]}", r.status, r.headers.get("Retry-After")
                )
            location = r.headers.get("Location")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SessionError(f"POST {url}: {type(exc).__name__} {exc}".rstrip()) from exc
    if not location:
        raise SessionError(f"POST {url}: 201 without a Location header")
    await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
    return RemoteSession(urllib.parse.urljoin(url, location), body)


async def wait_connected(pc: RTCPeerConnection, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Wait until ICE and DTLS are up; SessionError if the connection fails or takes too long."""
    done = asyncio.Event()

    def check() -> None:
        if pc.connectionState in ("connected", "failed", "closed"):
            done.set()

    pc.on("connectionstatechange", check)
    check()
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    except TimeoutError as exc:
        raise SessionError(f"the connection did not come up within {timeout_s:.0f} s") from exc
    if pc.connectionState != "connected":
        raise SessionError(f"the connection {pc.connectionState}")


async def end_session(
    http: aiohttp.ClientSession, session: RemoteSession | None, pc: RTCPeerConnection, token: str | None
) -> None:
    """DELETE the session (best effort: the server may be gone already), then close the peer connection."""
    try:
        if session is not None:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
            async with http.delete(session.url, headers=headers, timeout=timeout):
                pass
    except (aiohttp.ClientError, TimeoutError) as exc:  # the server may have stopped already
        log.warning(
            "DELETE %s failed (%r); closing the peer connection ends the session anyway", session.url, exc
        )
    finally:
        await close_quietly(pc)
