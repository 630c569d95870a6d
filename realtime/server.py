"""The live server behind `bya serve`: WHIP ingest per character, WHEP playback, live re-binding, pages.

One aiohttp application around one engine Room. `POST /whip/<character>` (RFC 9725) turns a client's
audio into one of the room's inputs bound to that character; `POST /whep` sends the room's video and
delayed mixed audio; `DELETE /sessions/<id>` ends either. `GET/PUT /binding` re-binds inputs while
running; `/health` and `/stats` report. Every media and control endpoint passes realtime.http_guard
first, so a request without the token never creates a peer connection. A peer that vanishes is found
by ICE consent or by silence on its track, and its session is closed while the others go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiortc import RTCPeerConnection

from realtime.http_guard import (
    MAX_JSON_BYTES,
    MAX_SDP_BYTES,
    GuardConfig,
    cors_middleware,
    read_body,
    require_token,
)
from realtime.webrtc import (
    RoomAudioTrack,
    RoomVideoTrack,
    SdpError,
    answer,
    check_offer,
    close_quietly,
    pump_audio,
    rtc_configuration,
)

log = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).resolve().parent.parent / "clients" / "web"
PAGES = {"/": "speaker.html", "/viewer": "viewer.html"}  # path -> file; nothing else maps to a file
ASSETS = ("bya.js", "speaker.js", "viewer.js", "style.css")  # served under /web/<name>, read at start-up
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


@dataclass(frozen=True)
class ServerLimits:
    """How many peers one process takes, and how fast a silent or vanished one is dropped."""

    max_speakers: int = 8  # WHIP sessions; the engine's max_inputs bounds it too
    max_viewers: int = 4  # WHEP sessions; each costs ~25% of a core to encode at 25 fps (NOTES)
    idle_timeout_s: float = 10.0  # a speaker whose track delivers nothing this long is gone
    subscription_frames: int = 8  # frames a slow viewer may fall behind before its frames are dropped


@dataclass
class Session:
    """One WHIP (speaker) or WHEP (viewer) peer."""

    id: str
    kind: str  # "whip" or "whep"
    pc: RTCPeerConnection
    character: int | None = None  # WHIP: the character it joined as (Room.binding() has the current one)
    started: float = field(default_factory=time.monotonic)
    tasks: list[asyncio.Task] = field(default_factory=list)
    subscription: object | None = None  # WHEP: the room subscription its tracks read
    audio_input: object | None = None  # WHIP: the engine input its audio goes to
    audio_s: float = 0.0  # WHIP: seconds of audio received and handed to the engine
    ended: str | None = None  # why it ended, once it has


class LiveServer:
    """Holds the room, its sessions and the aiohttp application that serves them."""

    def __init__(self, room, guard: GuardConfig, limits: ServerLimits = ServerLimits(), sinks=()) -> None:
        self.room, self.guard, self.limits = room, guard, limits
        self.sinks = list(sinks)
        self.sessions: dict[str, Session] = {}
        self.peer_connections_created = 0  # what the auth tests count: refused requests create none
        self.app = web.Application(middlewares=[cors_middleware(guard)], client_max_size=MAX_SDP_BYTES)
        self.files = _read_web_files()
        self.app.add_routes(
            [
                web.post("/whip/{character}", self.whip),
                web.post("/whep", self.whep),
                web.delete("/sessions/{id}", self.delete_session),
                web.get("/binding", self.get_binding),
                web.put("/binding", self.put_binding),
                web.get("/health", self.health),
                web.get("/stats", self.stats),
                web.get("/", self.page),
                web.get("/viewer", self.page),
                web.get("/web/{name}", self.asset),
            ]
        )
        self.app.on_startup.append(self._startup)
        self.app.on_shutdown.append(self._shutdown)

    # -- lifecycle --------------------------------------------------------------------------------------
    async def _startup(self, app: web.Application) -> None:
        await self.room.start()
        for sink in self.sinks:
            sink.start(self.room)

    async def _shutdown(self, app: web.Application) -> None:
        """Close every peer, finish every sink (recordings play to their last frame), stop the room."""
        await asyncio.gather(*(self.end_session(s, "server stopping") for s in list(self.sessions.values())))
        errors = []
        for sink in self.sinks:
            try:
                await sink.stop()
            except Exception as exc:  # one failing sink must not keep the others from finishing
                log.error("stopping %s failed: %s", type(sink).__name__, exc)
                errors.append(exc)
        await self.room.stop()
        if errors:
            raise errors[0]

    async def end_session(self, session: Session, reason: str) -> None:
        """Tear a session down once: its tasks, its engine input or subscription, its peer connection."""
        if session.ended is not None:
            return
        session.ended = reason
        self.sessions.pop(session.id, None)
        log.info("%s session %s ended: %s", session.kind, session.id, reason)
        current = asyncio.current_task()
        for task in session.tasks:
            if task is not current:
                task.cancel()
        if session.audio_input is not None:
            session.audio_input.close()
        if session.subscription is not None:
            session.subscription.close()
        await close_quietly(session.pc)

    def _new_peer(self, kind: str) -> Session:
        pc = RTCPeerConnection(rtc_configuration())
        self.peer_connections_created += 1
        session = Session(id=secrets.token_urlsafe(16), kind=kind, pc=pc)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.end_session(session, f"connection {pc.connectionState}")

        return session

    def _character(self, value: str) -> int:
        names = list(self.room.characters)
        if value in names:
            return names.index(value)
        if value.isdigit() and int(value) < len(names):
            return int(value)
        raise web.HTTPNotFound(text=f"no character {value!r}; this room has {names}\n")

    def _bound(self, session: Session) -> int | None:
        """The character a speaker drives now (it may have been re-bound since it joined)."""
        return self.room.binding().get(session.id, session.character) if session.kind == "whip" else None

    def _count(self, kind: str) -> int:
        return sum(s.kind == kind for s in self.sessions.values())

    async def _answered(self, session: Session, offer, tracks=()) -> web.Response:
        try:
            sdp = await answer(session.pc, offer, tracks)
        except SdpError as exc:
            await self.end_session(session, f"bad offer: {exc}")
            raise web.HTTPBadRequest(text=f"{exc}\n") from exc
        location = f"/sessions/{session.id}"
        return web.Response(
            status=201,
            body=sdp.encode(),
            content_type="application/sdp",
            headers={"Location": location, "ETag": f'"{session.id}"'},
        )

    # -- WHIP / WHEP ----------------------------------------------------------------------------------
    async def whip(self, request: web.Request) -> web.Response:
        """RFC 9725 ingest: the offer's audio becomes a room input bound to the character in the path."""
        require_token(self.guard, request)
        character = self._character(request.match_info["character"])
        offer = _offer(await read_body(request, "application/sdp", MAX_SDP_BYTES), "send-audio")
        if self._count("whip") >= self.limits.max_speakers:
            raise web.HTTPServiceUnavailable(text="speaker limit reached\n", headers={"Retry-After": "10"})
        session = self._new_peer("whip")
        session.character = character
        try:
            session.audio_input = self.room.open_input(session.id, character)
        except ValueError as exc:  # the engine's own input limit or validation
            await close_quietly(session.pc)
            raise web.HTTPServiceUnavailable(text=f"{exc}\n", headers={"Retry-After": "10"}) from exc
        self.sessions[session.id] = session

        @session.pc.on("track")
        def on_track(track) -> None:
            first_audio = track.kind == "audio" and not any(t.get_name() == "audio" for t in session.tasks)
            coro = self._speak(session, track) if first_audio else _drain(track)
            session.tasks.append(asyncio.create_task(coro, name="audio" if first_audio else "drain"))

        return await self._answered(session, offer)

    async def _speak(self, session: Session, track) -> None:
        def received(seconds: float) -> None:
            session.audio_s += seconds

        try:
            reason = await pump_audio(track, session.audio_input, self.limits.idle_timeout_s, received)
        except ValueError as exc:  # the engine refused the audio (e.g. a format it cannot take)
            reason = f"refused by the engine: {exc}"
        await self.end_session(session, f"audio track {reason}")

    async def whep(self, request: web.Request) -> web.Response:
        """WHEP playback: the room's video and its delayed mixed audio."""
        require_token(self.guard, request)
        offer = _offer(await read_body(request, "application/sdp", MAX_SDP_BYTES), "recv-video")
        if self._count("whep") >= self.limits.max_viewers:
            raise web.HTTPServiceUnavailable(text="viewer limit reached\n", headers={"Retry-After": "10"})
        session = self._new_peer("whep")
        session.subscription = self.room.subscribe(max_frames=self.limits.subscription_frames)
        self.sessions[session.id] = session
        tracks = (RoomVideoTrack(session.subscription), RoomAudioTrack(session.subscription))
        return await self._answered(session, offer, tracks)

    async def delete_session(self, request: web.Request) -> web.Response:
        require_token(self.guard, request)
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            raise web.HTTPNotFound(text="no such session\n")
        await self.end_session(session, "deleted by the client")
        return web.Response(status=200, text="session ended\n")

    # -- binding ----------------------------------------------------------------------------------------
    async def get_binding(self, request: web.Request) -> web.Response:
        require_token(self.guard, request)
        return web.json_response(self._binding_view())

    async def put_binding(self, request: web.Request) -> web.Response:
        """Body {"inputs": {"<session id>": <character name | index | null>, ...}}; all or nothing."""
        require_token(self.guard, request)
        body = await read_body(request, "application/json", MAX_JSON_BYTES)
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise web.HTTPBadRequest(text=f"the body is not JSON: {exc}\n") from exc
        if not isinstance(doc, dict) or set(doc) != {"inputs"} or not isinstance(doc["inputs"], dict):
            raise web.HTTPBadRequest(text='the body must be {"inputs": {"<session id>": character}}\n')
        changes = {}
        for key, value in doc["inputs"].items():
            session = self.sessions.get(key)
            if session is None or session.kind != "whip":
                raise web.HTTPBadRequest(text=f"no speaker session {key[:40]!r}\n")
            changes[key] = self._binding_target(value)
        for key, character in changes.items():
            self.room.bind(key, character)
        return web.json_response(self._binding_view())

    def _binding_target(self, value) -> int | None:
        names = list(self.room.characters)
        if value is None:
            return None
        if isinstance(value, str) and value in names:
            return names.index(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
            return value
        raise web.HTTPBadRequest(
            text=f"character must be one of {names}, an index below {len(names)}, or null\n"
        )

    def _binding_view(self) -> dict:
        return {
            "characters": list(self.room.characters),
            "binding": {str(k): v for k, v in self.room.binding().items()},
            "speakers": {s.id: self._bound(s) for s in self.sessions.values() if s.kind == "whip"},
        }

    # -- reports and pages ------------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def stats(self, request: web.Request) -> web.Response:
        require_token(self.guard, request)
        now = time.monotonic()
        sessions = [
            {
                "kind": s.kind,
                "character": self._bound(s),
                "state": s.pc.connectionState,
                "age_s": round(now - s.started, 1),
                "audio_s": round(s.audio_s, 2),
            }
            for s in self.sessions.values()
        ]
        sinks = [
            {"sink": type(s).__name__, "frames": getattr(s, "frames_written", getattr(s, "frames_sent", 0))}
            for s in self.sinks
        ]
        return web.json_response(
            {"room": self.room.stats(), "sessions": sessions, "sinks": sinks}, dumps=_dumps
        )

    async def page(self, request: web.Request) -> web.Response:
        return self._file(PAGES[request.path])

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        body = self.files.get(name)
        if body is None:
            raise web.HTTPNotFound(text=f"{name} is not installed\n")
        return web.Response(body=body, content_type=CONTENT_TYPES[Path(name).suffix], charset="utf-8")


def _offer(body: bytes, need: str):
    try:
        return check_offer(body, need)
    except SdpError as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from exc


async def _drain(track) -> None:
    """Read and drop a track nobody uses (e.g. a speaker's camera): aiortc would otherwise queue it forever."""
    from aiortc.mediastreams import MediaStreamError

    try:
        while True:
            await track.recv()
    except MediaStreamError:
        return


def _read_web_files() -> dict[str, bytes]:
    """The pages and assets, read once: request paths are looked up in this table, never on disk."""
    names = (*PAGES.values(), *ASSETS)
    return {name: (WEB_ROOT / name).read_bytes() for name in names if (WEB_ROOT / name).is_file()}


def _dumps(obj) -> str:
    return json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o))
