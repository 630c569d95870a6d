"""The live server behind `bya serve`: WHIP ingest per character, WHEP playback, live re-binding, pages.

One aiohttp application around one or more engine Rooms sharing one model (realtime.server.rooms). `POST
/whip/<character>` (RFC 9725) turns a client's audio into one of the room's inputs bound to that
character; `POST /whep` sends the room's video and delayed mixed audio; `DELETE /sessions/<id>` ends
either. `GET/PUT /binding` re-binds inputs while running; `/health` and `/stats` report (those and
`/rooms`: realtime.server.room_api). `POST /whip/mix` takes one stream of several voices, diarized live into one
input per speaker (realtime.audio.mix_input). The same routes under `/rooms/<room>/` serve the rooms made with `POST
/rooms`; admission (realtime.server.admission) refuses rooms and viewers past the measured capacity with 503.
Every media and control endpoint passes realtime.server.http_guard first, so a request without the token never
creates a peer connection. A peer that vanishes is found by ICE consent or by silence on its track, and
its session is closed while the others go on.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web
from aiortc import RTCPeerConnection

from realtime.audio.mix_input import NO_DIARIZER, MixDiarizer, open_mix_input
from realtime.server.admission import Capacity, measure_capacity, unavailable
from realtime.server.http_guard import MAX_SDP_BYTES, GuardConfig, cors_middleware, read_body, require_token
from realtime.server.room_api import HostedRoom, RoomAPI
from realtime.server.rooms import DEFAULT_ROOM
from realtime.server.web_pages import WebPages
from realtime.server.webrtc import (
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


@dataclass(frozen=True)
class ServerLimits:
    """How many rooms and peers one process takes, and how fast a silent or vanished one is dropped."""

    max_speakers: int = 8  # WHIP sessions per room; the engine's max_inputs bounds it too
    max_viewers: int = 4  # WHEP sessions per room; each costs ~25% of a core to encode 512 px at 25 fps
    idle_timeout_s: float = 10.0  # a speaker whose track delivers nothing this long is gone
    # a peer not connected this long after its answer is ended: an offer without candidates would
    # otherwise stay "connecting" forever and hold its slot; ICE on loopback connects in ~50 ms
    connect_timeout_s: float = 15.0
    subscription_frames: int = 8  # frames a slow viewer may fall behind before its frames are dropped
    max_rooms: int | None = None  # rooms at once, the default one included; None: measured (admission)
    max_viewers_total: int | None = None  # WHEP sessions over all rooms; None: measured (admission)


@dataclass
class Session:
    """One WHIP (speaker) or WHEP (viewer) peer."""

    id: str
    kind: str  # "whip" or "whep"
    pc: RTCPeerConnection
    room: str = DEFAULT_ROOM  # the name of the room it belongs to
    character: int | None = None  # WHIP: the character it joined as (Room.binding() has the current one)
    started: float = field(default_factory=time.monotonic)
    tasks: list[asyncio.Task] = field(default_factory=list)
    subscription: object | None = None  # WHEP: the room subscription its tracks read
    audio_input: object | None = None  # WHIP: the engine input its audio goes to (a MixInput for /whip/mix)
    inputs: tuple[str, ...] = ()  # WHIP: the room inputs it owns (binding keys): its id, or a mix's keys
    audio_s: float = 0.0  # WHIP: seconds of audio received and handed to the engine
    ended: str | None = None  # why it ended, once it has
    connected: asyncio.Event = field(default_factory=asyncio.Event)  # set once its peer has connected

    @property
    def mixed(self) -> bool:
        """A /whip/mix session: its inputs are the whole mix and one per diarized speaker."""
        return len(self.inputs) > 1


class LiveServer:
    """Holds the rooms, their sessions and the aiohttp application that serves them."""

    def __init__(
        self,
        room,
        guard: GuardConfig,
        limits: ServerLimits = ServerLimits(),
        sinks=(),
        mix: MixDiarizer | None = None,  # what /whip/mix diarizes into; None: /whip/mix answers 409
    ) -> None:
        self.room, self.guard, self.limits, self.mix = room, guard, limits, mix
        self.rooms: dict[str, HostedRoom] = {DEFAULT_ROOM: HostedRoom(DEFAULT_ROOM, room, ready=True)}
        self.capacity: Capacity | None = None  # measured at start unless every limit was given
        self.sinks = list(sinks)
        self.sessions: dict[str, Session] = {}
        self.peer_connections_created = 0  # what the auth tests count: refused requests create none
        self.app = web.Application(middlewares=[cors_middleware(guard)], client_max_size=MAX_SDP_BYTES)
        self.pages = WebPages()
        self.room_api = RoomAPI(self)  # /rooms, /binding, /stats
        routes = []
        for prefix in ("", "/rooms/{room}"):  # the default room un-prefixed, every room under /rooms/<name>
            routes += [
                web.post(prefix + "/whip/mix", self.whip_mix),  # before /whip/{character}: "mix" is taken
                web.post(prefix + "/whip/{character}", self.whip),
                web.post(prefix + "/whep", self.whep),
                *self.room_api.room_routes(prefix),
            ]
        self.app.add_routes(
            [
                *routes,
                web.delete("/sessions/{id}", self.delete_session),
                *self.room_api.host_routes(),
                web.get("/health", self.health),
                *self.pages.routes(),
            ]
        )
        self.app.on_startup.append(self._startup)
        self.app.on_shutdown.append(self._shutdown)

    # -- lifecycle --------------------------------------------------------------------------------------
    async def _startup(self, app: web.Application) -> None:
        if self.mix is not None:  # the encoder's first call (numba, ~17 s cold) must not meet a request
            took = await asyncio.to_thread(self.mix.warm_up)
            log.info("diarizer warmed up in %.1f s", took)
        if self.limits.max_rooms is None or self.limits.max_viewers_total is None:
            # before the room starts: its worker would share the CPU with the measurement
            room = self.room
            self.capacity = await asyncio.to_thread(
                measure_capacity, room.loaded, room.scene, room.steps, room.seed, room.motion
            )
            log.info("capacity: %s", self.capacity)
        await self.room.start()
        for sink in self.sinks:
            sink.start(self.room)
        # the model, the modules and the warmed-up room live for the whole process: keep the cyclic
        # garbage collector from walking them again in every full collection (a pause the clock feels)
        gc.collect()
        gc.freeze()

    @property
    def max_rooms(self) -> int:
        return self.limits.max_rooms if self.limits.max_rooms is not None else self.capacity.max_rooms

    @property
    def max_viewers_total(self) -> int:
        given = self.limits.max_viewers_total
        return given if given is not None else self.capacity.max_viewers

    async def _shutdown(self, app: web.Application) -> None:
        """Close every peer, finish every sink (recordings play to their last frame), stop the rooms."""
        await asyncio.gather(*(self.end_session(s, "server stopping") for s in list(self.sessions.values())))
        errors = []
        for sink in self.sinks:
            try:
                await sink.stop()
            except Exception as exc:  # one failing sink must not keep the others from finishing
                log.error("stopping %s failed: %s", type(sink).__name__, exc)
                errors.append(exc)
        # a room still warming up (room None) is stopped by its POST /rooms, which sees it gone
        await asyncio.gather(*(h.room.stop() for h in list(self.rooms.values()) if h.room is not None))
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

    def _new_peer(self, kind: str, room: str) -> Session:
        pc = RTCPeerConnection(rtc_configuration())
        self.peer_connections_created += 1
        session = Session(id=secrets.token_urlsafe(16), kind=kind, pc=pc, room=room)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected":
                session.connected.set()
            if pc.connectionState in ("failed", "closed"):
                await self.end_session(session, f"connection {pc.connectionState}")

        return session

    def hosted_room(self, request: web.Request) -> HostedRoom:
        """The room a request's path names (no `/rooms/<room>` prefix: the default room)."""
        name = request.match_info.get("room", DEFAULT_ROOM)
        hosted = self.rooms.get(name)
        if hosted is None or not hosted.ready:
            raise web.HTTPNotFound(text=f"no room {name[:40]!r}\n")
        return hosted

    def _character(self, room, value: str) -> int:
        names = list(room.characters)
        if value in names:
            return names.index(value)
        if value.isascii() and value.isdigit() and len(value) <= 3 and int(value) < len(names):
            return int(value)
        raise web.HTTPNotFound(text=f"no character {value!r}; this room has {names}\n")

    def bound_character(self, session: Session) -> int | None:
        """The character a speaker drives now (it may have been re-bound since it joined)."""
        if session.kind != "whip" or session.room not in self.rooms:
            return None
        return self.rooms[session.room].room.binding().get(session.id, session.character)

    def speaker_inputs(self, session: Session) -> dict[str, int | None]:
        """A WHIP session's voices and the characters they drive: its id, or a mix's speaker inputs."""
        if session.kind != "whip" or session.room not in self.rooms:
            return {}
        binding = self.rooms[session.room].room.binding()
        keys = session.inputs[1:] if session.mixed else session.inputs
        return {key: binding.get(key, session.character) for key in keys}

    def input_session(self, key: str) -> Session | None:
        """The WHIP session that owns room input `key` (a session id or one of a mix's keys)."""
        session = self.sessions.get(key.split("/", 1)[0])
        return session if session is not None and key in session.inputs else None

    def count_sessions(self, kind: str, room: str | None = None) -> int:
        return sum(s.kind == kind and room in (None, s.room) for s in self.sessions.values())

    async def _answered(self, session: Session, offer, tracks=()) -> web.Response:
        # a speaker's video would only be decoded and dropped: WHIP declines it
        decline = ("video",) if session.kind == "whip" else ()
        try:
            sdp = await answer(session.pc, offer, tracks, decline)
        except SdpError as exc:
            await self.end_session(session, f"bad offer: {exc}")
            raise web.HTTPBadRequest(text=f"{exc}\n") from exc
        session.tasks.append(asyncio.create_task(self._expire_unconnected(session), name="connect-timeout"))
        location = f"/sessions/{session.id}"
        return web.Response(
            status=201,
            body=sdp.encode(),
            content_type="application/sdp",
            headers={"Location": location, "ETag": f'"{session.id}"'},
        )

    async def _expire_unconnected(self, session: Session) -> None:
        """End a session whose peer has not connected within connect_timeout_s (a half-open offer)."""
        timeout = self.limits.connect_timeout_s
        try:
            await asyncio.wait_for(session.connected.wait(), timeout)
        except TimeoutError:
            await self.end_session(session, f"not connected within {timeout:g} s")

    # -- WHIP / WHEP ----------------------------------------------------------------------------------
    async def whip(self, request: web.Request) -> web.Response:
        """RFC 9725 ingest: the offer's audio becomes a room input bound to the character in the path."""
        require_token(self.guard, request)
        hosted = self.hosted_room(request)
        character = self._character(hosted.room, request.match_info["character"])
        offer = _offer(await read_body(request, "application/sdp", MAX_SDP_BYTES), "send-audio")
        if self.count_sessions("whip", hosted.name) >= self.limits.max_speakers:
            raise unavailable("speaker limit of this room reached")
        session = self._new_peer("whip", hosted.name)
        session.character = character
        try:
            session.audio_input = hosted.room.open_input(session.id, character)
        except ValueError as exc:  # the engine's own input limit or validation
            await close_quietly(session.pc)
            raise unavailable(str(exc)) from exc
        session.inputs = (session.id,)
        return await self._receive(session, offer)

    async def whip_mix(self, request: web.Request) -> web.Response:
        """RFC 9725 ingest of one stream of several voices: diarized live, each speaker its own input."""
        require_token(self.guard, request)
        hosted = self.hosted_room(request)
        if self.mix is None:
            raise web.HTTPConflict(text=f"{NO_DIARIZER}\n")
        offer = _offer(await read_body(request, "application/sdp", MAX_SDP_BYTES), "send-audio")
        if self.count_sessions("whip", hosted.name) >= self.limits.max_speakers:
            raise unavailable("speaker limit of this room reached")
        session = self._new_peer("whip", hosted.name)
        try:
            loop = asyncio.get_running_loop()
            session.audio_input = open_mix_input(hosted.room, session.id, self.mix, loop)
        except ValueError as exc:  # the room's input limit: a mix takes 1 + speakers inputs
            await close_quietly(session.pc)
            raise unavailable(str(exc)) from exc
        session.inputs = session.audio_input.keys
        return await self._receive(session, offer)

    async def _receive(self, session: Session, offer) -> web.Response:
        """Register a WHIP session; its first audio track feeds its input, other audio tracks are drained."""
        self.sessions[session.id] = session

        @session.pc.on("track")
        def on_track(track) -> None:
            if track.kind == "video":  # declined in the answer (inactive): no packet will come to decode
                return
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
        hosted = self.hosted_room(request)
        offer = _offer(await read_body(request, "application/sdp", MAX_SDP_BYTES), "recv-video")
        if self.count_sessions("whep", hosted.name) >= self.limits.max_viewers:
            raise unavailable("viewer limit of this room reached")
        if self.count_sessions("whep") >= self.max_viewers_total:
            raise unavailable("viewer limit of this server reached")
        session = self._new_peer("whep", hosted.name)
        session.subscription = hosted.room.subscribe(max_frames=self.limits.subscription_frames)
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

    # -- health -----------------------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})


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
