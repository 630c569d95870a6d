"""The live server's HTTP API for its rooms: `/rooms` (create, list, inspect, delete), `/binding` and `/stats`.

LiveServer (realtime.server.app) owns the rooms and the sessions and composes one RoomAPI, which registers
these handlers: the per-room ones un-prefixed for the default room and under `/rooms/<room>/` for the
others. Every handler passes realtime.server.http_guard first; a JSON body is capped at MAX_JSON_BYTES.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from realtime.errors import BYAError
from realtime.server.admission import unavailable
from realtime.server.http_guard import MAX_JSON_BYTES, read_body, require_token
from realtime.server.rooms import (
    DEFAULT_ROOM,
    RoomRequestError,
    build_room,
    bundled_scenes,
    parse_room_request,
)

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 16  # a binding body nests 2 deep, a room request 1
MAX_JSON_INT_DIGITS = 20  # an index, a seed or a count fits in 64 bits (at most 20 digits)


@dataclass
class HostedRoom:
    """One room the server runs: the engine Room and when it was made."""

    name: str
    room: object  # realtime.engine.room.Room
    created: float = field(default_factory=time.monotonic)
    ready: bool = False  # False while it warms up (POST /rooms has not answered yet)


class RoomHost(Protocol):
    """What the rooms API needs of the server that hosts it (realtime.server.app.LiveServer is one).

    A protocol rather than an import keeps the server and its rooms API out of an import cycle."""

    room: Any  # the default room: realtime.engine.room.Room
    rooms: dict[str, HostedRoom]
    sessions: dict[str, Any]  # session id -> realtime.server.app.Session
    sinks: list[Any]
    guard: Any  # realtime.server.http_guard.GuardConfig
    limits: Any  # realtime.server.app.ServerLimits
    capacity: Any  # realtime.server.admission.Capacity | None
    mix: Any
    max_rooms: int
    max_viewers_total: int

    def hosted_room(self, request: web.Request) -> HostedRoom: ...
    def bound_character(self, session: Any) -> int | None: ...
    def speaker_inputs(self, session: Any) -> dict[str, int | None]: ...
    def input_session(self, key: str) -> Any: ...
    def count_sessions(self, kind: str, room: str | None = None) -> int: ...
    async def end_session(self, session: Any, reason: str) -> None: ...


class RoomAPI:
    """The room, binding and stats endpoints of one LiveServer; `room_routes` and `host_routes` list them."""

    def __init__(self, server: RoomHost) -> None:
        self.server = server
        self.scenes = bundled_scenes()  # listed once at start, as the pages are read: no request touches disk

    def room_routes(self, prefix: str) -> list[web.RouteDef]:
        """The routes of one room's view; prefix "" is the default room, "/rooms/{room}" any room."""
        return [
            web.get(prefix + "/binding", self.get_binding),
            web.put(prefix + "/binding", self.put_binding),
            web.get(prefix + "/stats", self.stats),
        ]

    def host_routes(self) -> list[web.RouteDef]:
        """The routes that make, list and end rooms."""
        return [
            web.get("/rooms", self.list_rooms),
            web.post("/rooms", self.create_room),
            web.get("/rooms/{room}", self.get_room),
            web.delete("/rooms/{room}", self.delete_room),
        ]

    # -- rooms ------------------------------------------------------------------------------------------
    async def create_room(self, request: web.Request) -> web.Response:
        """Body {"name", "characters"? | "scene"? (+ "faces"?), "seed"?}: a new room, warmed up and running;
        201 + Location. A scene that cannot be made (a face box outside its picture) is a 400 naming why."""
        server = self.server
        require_token(server.guard, request)
        doc = _json(await read_body(request, "application/json", MAX_JSON_BYTES))
        try:
            spec = parse_room_request(doc)
        except RoomRequestError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from exc
        if spec.name in server.rooms:
            raise web.HTTPConflict(text=f"room {spec.name!r} exists\n")
        if len(server.rooms) >= server.max_rooms:
            raise unavailable(f"room limit reached ({server.max_rooms} on this machine)")
        hosted = HostedRoom(spec.name, None)
        server.rooms[spec.name] = hosted  # holds the name and the slot while the room warms up
        try:
            hosted.room = await asyncio.to_thread(build_room, server.room, spec)
            await hosted.room.start()
        except BYAError as exc:
            server.rooms.pop(spec.name, None)
            raise web.HTTPBadRequest(text=f"{exc}\n") from exc
        except BaseException:
            server.rooms.pop(spec.name, None)
            if hosted.room is not None:
                await hosted.room.stop()
            raise
        if server.rooms.get(spec.name) is not hosted:  # deleted while it warmed up
            await hosted.room.stop()
            raise web.HTTPConflict(text=f"room {spec.name!r} was deleted while starting\n")
        hosted.ready = True
        log.info("room %s started (%d characters)", spec.name, len(hosted.room.characters))
        return web.json_response(
            self._room_view(hosted), status=201, headers={"Location": f"/rooms/{spec.name}"}
        )

    async def delete_room(self, request: web.Request) -> web.Response:
        """End a room's sessions and stop it; the default room stays for the server's life."""
        server = self.server
        require_token(server.guard, request)
        hosted = server.hosted_room(request)
        if hosted.name == DEFAULT_ROOM:
            raise web.HTTPForbidden(text=f"the {DEFAULT_ROOM!r} room lives as long as the server\n")
        server.rooms.pop(hosted.name, None)
        mine = [s for s in server.sessions.values() if s.room == hosted.name]
        await asyncio.gather(*(server.end_session(s, "room deleted") for s in mine))
        await hosted.room.stop()
        return web.Response(status=200, text="room ended\n")

    async def list_rooms(self, request: web.Request) -> web.Response:
        require_token(self.server.guard, request)
        rooms = [self._room_view(h) for h in self.server.rooms.values() if h.ready]
        return web.json_response({"rooms": rooms, "limits": self._limits_view()})

    async def get_room(self, request: web.Request) -> web.Response:
        require_token(self.server.guard, request)
        return web.json_response(self._room_view(self.server.hosted_room(request)))

    def _room_view(self, hosted: HostedRoom) -> dict:
        prefix = "" if hosted.name == DEFAULT_ROOM else f"/rooms/{hosted.name}"
        return {
            "name": hosted.name,
            "characters": list(hosted.room.characters),
            "speakers": self.server.count_sessions("whip", hosted.name),
            "viewers": self.server.count_sessions("whep", hosted.name),
            "whip": f"{prefix}/whip/<character>",
            "whip_mix": f"{prefix}/whip/mix" if self.server.mix is not None else None,
            "whep": f"{prefix}/whep",
        }

    def _limits_view(self) -> dict:
        server = self.server
        return {
            "max_rooms": server.max_rooms,
            "max_speakers_per_room": server.limits.max_speakers,
            "max_viewers_per_room": server.limits.max_viewers,
            "max_viewers_total": server.max_viewers_total,
            "measured": None if server.capacity is None else server.capacity.as_dict(),
            "scenes": self.scenes,
        }

    # -- binding ----------------------------------------------------------------------------------------
    async def get_binding(self, request: web.Request) -> web.Response:
        require_token(self.server.guard, request)
        return web.json_response(self._binding_view(self.server.hosted_room(request)))

    async def put_binding(self, request: web.Request) -> web.Response:
        """Body {"inputs": {"<input key>": <character name | index | null>, ...}}; all or nothing.

        An input key is a WHIP session's id, or one of a mixed session's inputs (`<id>/speaker<k>`, `<id>`).
        """
        server = self.server
        require_token(server.guard, request)
        hosted = server.hosted_room(request)
        doc = _json(await read_body(request, "application/json", MAX_JSON_BYTES))
        if not isinstance(doc, dict) or set(doc) != {"inputs"} or not isinstance(doc["inputs"], dict):
            raise web.HTTPBadRequest(text='the body must be {"inputs": {"<session id>": character}}\n')
        changes = {}
        for key, value in doc["inputs"].items():
            session = server.input_session(key)
            if session is None or session.kind != "whip" or session.room != hosted.name:
                raise web.HTTPBadRequest(text=f"no speaker input {key[:60]!r} in this room\n")
            changes[key] = self._binding_target(hosted.room, value)
        for key, character in changes.items():
            hosted.room.bind(key, character)
        return web.json_response(self._binding_view(hosted))

    def _session_view(self, session, now: float) -> dict:
        server = self.server
        view = {
            "id": session.id,  # what DELETE /sessions/<id> takes
            "kind": session.kind,
            "room": session.room,
            "character": server.bound_character(session),
            "state": session.pc.connectionState,
            "age_s": round(now - session.started, 1),
            "audio_s": round(session.audio_s, 2),
        }
        if session.mixed:  # its speakers and its diarizer
            view["speakers"] = server.speaker_inputs(session)
            view["mix"] = session.audio_input.stats()
        return view

    def _binding_target(self, room, value) -> int | None:
        names = list(room.characters)
        if value is None:
            return None
        if isinstance(value, str) and value in names:
            return names.index(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
            return value
        raise web.HTTPBadRequest(
            text=f"character must be one of {names}, an index below {len(names)}, or null\n"
        )

    def _binding_view(self, hosted: HostedRoom) -> dict:
        server = self.server
        speakers = [s for s in server.sessions.values() if s.kind == "whip" and s.room == hosted.name]
        return {
            "characters": list(hosted.room.characters),
            "binding": {str(k): v for k, v in hosted.room.binding().items()},
            "speakers": {k: v for s in speakers for k, v in server.speaker_inputs(s).items()},
        }

    # -- reports ----------------------------------------------------------------------------------------
    async def stats(self, request: web.Request) -> web.Response:
        server = self.server
        require_token(server.guard, request)
        hosted = server.hosted_room(request)
        now = time.monotonic()
        sessions = [self._session_view(s, now) for s in server.sessions.values() if s.room == hosted.name]
        doc = {"room": hosted.room.stats(), "sessions": sessions}
        if hosted.name == DEFAULT_ROOM:  # the outputs and the host belong to the default view
            doc["sinks"] = [
                {
                    "sink": type(s).__name__,
                    "frames": getattr(s, "frames_written", getattr(s, "frames_sent", 0)),
                }
                for s in server.sinks
            ]
            doc["host"] = {
                "rooms": {h.name: self._room_view(h) for h in server.rooms.values() if h.ready},
                "limits": self._limits_view(),
            }
        return web.json_response(doc, dumps=_dumps)


def _json(body: bytes):
    """The decoded body, or 400: not UTF-8 JSON, nested deeper than MAX_JSON_DEPTH, or an integer longer
    than MAX_JSON_INT_DIGITS (Python's parser recurses per level and refuses >4300 digits with a ValueError)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise web.HTTPBadRequest(text=f"the body is not UTF-8 JSON: {exc}\n") from exc
    depth = _nesting_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise web.HTTPBadRequest(text=f"the JSON body is nested {depth} deep, more than {MAX_JSON_DEPTH}\n")
    try:
        return json.loads(text, parse_int=_bounded_int)
    except ValueError as exc:  # json.JSONDecodeError is one, and so is _bounded_int's refusal
        raise web.HTTPBadRequest(text=f"the body is not JSON we take: {str(exc)[:200]}\n") from exc


def _nesting_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings are not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:  # linear in the body, which read_body has capped at MAX_JSON_BYTES
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ValueError(
            f"an integer of {len(digits.lstrip('-'))} digits, more than {MAX_JSON_INT_DIGITS} digits"
        )
    return int(digits)


def _dumps(obj) -> str:
    # Room.stats() may hold numpy scalars; anything else unknown is reported as its text, not a 500
    return json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o))
