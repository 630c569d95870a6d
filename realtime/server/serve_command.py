"""`bya serve`: run the live room behind the HTTP/WebRTC server until SIGINT or SIGTERM.

Builds the scene, the model and (with --enroll / --mix-speakers) the diarizer of `/whip/mix`, starts the outputs asked for (MP4 recording, MPEG-TS over UDP, a
virtual camera), serves WHIP/WHEP/binding/pages on 127.0.0.1 by default, and on a signal closes every
peer and finishes every recording before it exits. Options that would expose an open server off
loopback are refused before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys

from realtime.audio.binding import add_guidance_argument, add_isolation_argument, add_motion_argument
from realtime.engine.threads import live_threads, set_threads
from realtime.media import DIARIZER_LOOKAHEAD_MS, MAX_CHARACTERS, MIN_CHARACTERS
from realtime.scene.picture.args import add_picture_arguments, check_picture_arguments
from realtime.server.http_guard import GuardConfig, ServerConfigError, is_loopback
from realtime.stream.options import SamplingOptions

DEFAULT_PORT = 8080
PEER_TIMEOUT_S = 10.0  # a vanished peer is dropped within about this long (ICE consent, track silence)
CONSENT_CHECKS = 5  # consent checks missed before a peer counts as gone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--scene",
        help="scene: a .json file, a bundled scene name, or a picture (.png/.jpg photo or drawing; default: "
        "a world scene)",
    )
    add_picture_arguments(parser)
    parser.add_argument(
        "--characters",
        type=int,
        default=2,
        help=f"characters of the built-in scene ({MIN_CHARACTERS}-{MAX_CHARACTERS})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the built-in scene and the sampler")
    parser.add_argument(
        "--token", help="bearer token required by WHIP/WHEP/binding/stats (default: a new one)"
    )
    parser.add_argument("--open", action="store_true", help="no token at all (allowed on loopback only)")
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this web origin cross-origin (repeatable)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept this name in the Host header (repeatable; default: the --host address, and the "
        "localhost names on loopback; others get 421, which stops DNS rebinding)",
    )
    parser.add_argument("--record", metavar="OUT.mp4", help="record the room to an MP4 file")
    parser.add_argument(
        "--mpegts", metavar="udp://127.0.0.1:PORT", help="stream MPEG-TS over UDP (OBS Media Source)"
    )
    parser.add_argument("--virtual-camera", action="store_true", help="feed a virtual camera (pyvirtualcam)")
    parser.add_argument("--model", help="generator checkpoint (default: the shipped model)")
    parser.add_argument("--steps", type=int, help="sampling steps per chunk (default: the checkpoint's)")
    parser.add_argument(
        "--backend",
        choices=("torch", "onnx", "auto"),
        default="auto",
        help="per-chunk step on PyTorch, ONNX Runtime, or auto (default): the faster of the two, timed at "
        "start (on the 2-core CPU ONNX Runtime: 16 ms a step against 29, fewer missed deadlines)",
    )
    add_isolation_argument(parser)
    add_guidance_argument(parser)
    add_motion_argument(parser)
    parser.add_argument(
        "--threads",
        type=int,
        default=live_threads(),
        help=f"model threads (default: cores - 1 = {live_threads()}; one core stays with WebRTC and the clock)",
    )
    parser.add_argument(
        "--max-viewers", type=int, default=4, help="WHEP sessions at once per room (default 4)"
    )
    parser.add_argument(
        "--max-speakers", type=int, default=8, help="WHIP sessions at once per room (default 8)"
    )
    parser.add_argument(
        "--enroll",
        action="append",
        default=[],
        metavar="K=FILE.wav",
        help="a few seconds of character K's voice alone (repeatable): POST /whip/mix diarizes one mixed "
        "stream into these voices, speaker K driving character K",
    )
    parser.add_argument(
        "--mix-speakers",
        type=int,
        metavar="N",
        help=f"POST /whip/mix without enrollment: 1-{MAX_CHARACTERS} speakers clustered online, in order of "
        "appearance (less accurate than --enroll)",
    )
    parser.add_argument(
        "--mix-lookahead-ms",
        type=int,
        default=DIARIZER_LOOKAHEAD_MS,
        metavar="MS",
        help=f"how long after a 40 ms frame /whip/mix decides who spoke it: latency the mix adds (default "
        f"{DIARIZER_LOOKAHEAD_MS}; at least 160; 200 scored within 0.1 point of 500 offline, docs/audio.md)",
    )
    parser.add_argument(
        "--max-rooms",
        type=int,
        help="rooms at once, the default one included (default: as many as this machine measured it holds)",
    )
    parser.add_argument(
        "--max-viewers-total",
        type=int,
        help="WHEP sessions at once over all rooms (default: what this machine measured it can encode)",
    )


def serve_command(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise ServerConfigError(f"--port must be 1-65535, got {args.port}")
    # speakers are engine inputs (at most 64 per room); the others only bound this process's work
    for flag, top in (
        ("threads", 256),
        ("max_speakers", 64),
        ("max_viewers", 1000),
        ("max_rooms", 1000),
        ("max_viewers_total", 1000),
    ):
        value = getattr(args, flag)
        if value is not None and not 1 <= value <= top:
            raise ServerConfigError(f"--{flag.replace('_', '-')} must be 1-{top}, got {value}")
    SamplingOptions.from_args(args)  # a bad --steps, --seed or --audio-guidance fails before the model loads
    check_picture_arguments(args)  # a bad --face or --avatar too
    token = None if args.open else (args.token or secrets.token_urlsafe(18))
    guard = GuardConfig.build(token, args.open, args.host, args.cors_origin, args.allow_host)
    mix = build_mix(args)  # before the model loads: a bad --enroll file fails in seconds
    # our own events (sessions starting and ending) at INFO; aiortc/aioice/aiohttp only when they warn
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("realtime").setLevel(logging.INFO)
    asyncio.run(_serve(args, guard, mix))
    return 0


def build_mix(args: argparse.Namespace):
    """The diarizer of `/whip/mix` from --enroll / --mix-speakers (None without either); one-line errors."""
    if not args.enroll and args.mix_speakers is None:
        return None
    import time

    from realtime.audio.mix_input import MixDiarizer

    start = time.perf_counter()
    mix = MixDiarizer.from_arguments(args.enroll, args.mix_speakers, args.mix_lookahead_ms)
    took = time.perf_counter() - start
    print(f"bya serve: /whip/mix diarizer: {mix.describe()} ({took:.1f} s)", file=sys.stderr)
    return mix


def build_sinks(args: argparse.Namespace, size: tuple[int, int]) -> list:
    """The outputs asked for, opened before the room starts so a bad target fails at once."""
    from realtime.outputs.recorder import ContainerSink

    sinks: list = []
    if args.record:
        sinks.append(ContainerSink(args.record, "mp4"))
    if args.mpegts:
        sinks.append(ContainerSink(args.mpegts, "mpegts"))
    if args.virtual_camera:
        from realtime.outputs.virtual_camera import VirtualCameraSink

        sinks.append(VirtualCameraSink(*size))
    return sinks


def build_room(args: argparse.Namespace):
    """The engine Room for the command line's model and scene, and the (width, height) of its video."""
    from realtime.engine.room import Room
    from realtime.errors import SceneError
    from realtime.model.default_model import load_model, model_for_scene, use_backend
    from realtime.scene.scenes import PHOTO_ONLY_NOTE, load_scene

    set_threads(args.threads)  # torch and OpenCV pools
    loaded = load_model(args.model)
    faces = check_picture_arguments(args)
    size = loaded.generator.cfg.frame_size
    scene = load_scene(
        args.scene, args.characters, args.seed, size, boxes=faces, avatars=getattr(args, "avatar", None)
    )
    for note in scene.notes:
        print(f"bya serve: {note}", file=sys.stderr)
    # a picture is animated by the rig model unless --model chose another
    loaded = model_for_scene(loaded, scene, chosen=args.model is not None)
    if scene.source == "photo" and loaded.generator.cfg.output != "rig":
        raise SceneError(f"{PHOTO_ONLY_NOTE}; pass --model with a rig model (bya train rig)")
    options = SamplingOptions.from_args(args, loaded)
    # rooms opened later (POST /rooms) start from the loaded model's settings: the command line's
    loaded.isolation, loaded.audio_guidance = options.isolation, options.audio_guidance
    timings = use_backend(loaded, args.backend)
    picked = ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items())
    print(
        f"bya serve: model step on {loaded.backend}" + (f" (timed: {picked})" if picked else ""),
        file=sys.stderr,
    )
    room = Room(loaded, scene, options=options, max_inputs=args.max_speakers)
    height, width = scene.background.shape[:2]
    return room, (width, height)


async def _serve(args: argparse.Namespace, guard: GuardConfig, mix=None) -> None:
    from realtime.server.app import LiveServer, ServerLimits
    from realtime.server.connections import start_site
    from realtime.server.webrtc import restrict_ice_addresses, tune_consent

    # Media stays where HTTP is: on loopback, the only ICE candidate is 127.0.0.1.
    restrict_ice_addresses(
        ["127.0.0.1"] if is_loopback(args.host) else None if args.host in ("0.0.0.0", "::") else [args.host]
    )
    tune_consent(PEER_TIMEOUT_S / CONSENT_CHECKS, CONSENT_CHECKS)
    room, size = build_room(args)
    sinks = build_sinks(args, size)
    limits = ServerLimits(
        max_speakers=args.max_speakers,
        max_viewers=args.max_viewers,
        idle_timeout_s=PEER_TIMEOUT_S,
        max_rooms=args.max_rooms,
        max_viewers_total=args.max_viewers_total,
    )
    server = LiveServer(room, guard, limits, sinks, mix)
    try:  # idle connections time out and one address holds a bounded number (realtime.server.connections)
        runner = await start_site(server.app, args.host, args.port)
    except OSError as exc:
        raise ServerConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    host = f"[{args.host}]" if ":" in args.host else args.host
    fragment = f"#token={guard.token}" if guard.token else ""
    print(f"bya serve: {len(room.characters)} characters {list(room.characters)}", flush=True)
    if server.capacity is not None:
        c = server.capacity
        print(
            f"  capacity      one room's chunk {c.room_chunk_ms:.1f} ms of {c.chunk_ms:.0f} ms, VP8 "
            f"{c.encode_ms:.1f} ms/frame -> measured {c.max_rooms} room(s), {c.max_viewers} viewer(s)",
            flush=True,
        )
    print(
        f"  limits        {server.max_rooms} room(s), {args.max_speakers} speakers and "
        f"{args.max_viewers} viewers per room, {server.max_viewers_total} viewers in all "
        f"(POST /rooms adds a room)",
        flush=True,
    )
    print(f"  speaker page  http://{host}:{args.port}/{fragment}", flush=True)
    print(f"  viewer (OBS)  http://{host}:{args.port}/viewer{fragment}", flush=True)
    print(
        f"  WHIP          http://{host}:{args.port}/whip/<character>   WHEP http://{host}:{args.port}/whep",
        flush=True,
    )
    if mix is not None:
        print(
            f"  WHIP mix      http://{host}:{args.port}/whip/mix   diarized: {mix.describe()}; "
            f"+{mix.latency_ms} ms lookahead (docs/server.md)",
            flush=True,
        )
    if guard.token:
        print(f"  token         {guard.token}", flush=True)
    try:
        await stop.wait()
    finally:
        print("bya serve: stopping (closing peers, finishing recordings)", file=sys.stderr, flush=True)
        await runner.cleanup()  # runs LiveServer's shutdown: peers closed, sinks finished, room stopped
