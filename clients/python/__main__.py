"""`python -m clients.python`: speak audio files into `bya serve` as characters, and/or record the room.

    python -m clients.python --url http://127.0.0.1:8080 --token T \\
        --speak 0=alice.wav --speak bob=bob.wav --record out/room.mp4

Each --speak publishes one WHIP session that plays its file in real time (any rate, resampled to 48 kHz)
and then stays silent; --record watches over WHEP and writes an MP4 with a JSON sidecar of receive
timestamps. It runs until every file has played plus --tail seconds (or for --seconds), then ends its
sessions with DELETE. Bad arguments end in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from realtime.errors import BYAError

MAX_SPEAKERS = 8  # bya serve's default --max-speakers


class ClientArgumentError(BYAError):
    """A command-line argument of the client that cannot work (named with the value and what was expected)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m clients.python", description=__doc__.split("\n\n")[0].split(": ", 1)[1]
    )
    p.add_argument("--url", default="http://127.0.0.1:8080", help="bya serve's address (default %(default)s)")
    p.add_argument("--token", default=os.environ.get("BYA_TOKEN"), help="bearer token (default: $BYA_TOKEN)")
    p.add_argument(
        "--speak",
        action="append",
        default=[],
        metavar="CHARACTER=FILE",
        help="speak FILE as CHARACTER (a name or an index); repeatable",
    )
    p.add_argument("--record", metavar="OUT.mp4", help="watch over WHEP and record to this MP4 (+ .json)")
    p.add_argument("--seconds", type=float, help="run this long (default: until the files have played)")
    p.add_argument(
        "--tail", type=float, default=1.0, help="seconds to keep running after the files (default 1)"
    )
    return p


def check_args(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """Validate; return the (character, file) pairs to speak."""
    from clients.python.signaling import check_base_url

    args.url = check_base_url(args.url)
    if not args.speak and not args.record:
        raise ClientArgumentError("nothing to do: give --speak CHARACTER=FILE and/or --record OUT.mp4")
    if len(args.speak) > MAX_SPEAKERS:
        raise ClientArgumentError(f"at most {MAX_SPEAKERS} --speak, got {len(args.speak)}")
    pairs = []
    for item in args.speak:
        character, sep, file = item.partition("=")
        if not sep or not character or not file:
            raise ClientArgumentError(f"--speak must be CHARACTER=FILE, got {item!r}")
        if not Path(file).is_file():
            raise ClientArgumentError(f"--speak {item!r}: file {file} not found")
        pairs.append((character, Path(file)))
    if args.record:
        record = Path(args.record)
        if record.suffix.lower() != ".mp4" or not record.parent.is_dir():
            raise ClientArgumentError(
                f"--record must be a .mp4 file in an existing folder, got {args.record!r}"
            )
    if args.seconds is not None and not 0 < args.seconds <= 24 * 3600:
        raise ClientArgumentError(f"--seconds must be in (0, 86400], got {args.seconds}")
    if not 0 <= args.tail <= 600:
        raise ClientArgumentError(f"--tail must be in [0, 600], got {args.tail}")
    if args.seconds is None and not pairs:
        raise ClientArgumentError("--record without --speak needs --seconds (how long to record)")
    return pairs


async def run(args: argparse.Namespace, pairs: list[tuple[str, Path]]) -> dict:
    import aiohttp

    from clients.python.audio_file import load_audio
    from clients.python.recording import Mp4Recorder
    from clients.python.signaling import connect_loopback
    from clients.python.speaker import WhipSpeaker
    from clients.python.viewer import WhepViewer

    connect_loopback(args.url)
    speakers = [WhipSpeaker(load_audio(file), character) for character, file in pairs]
    viewer = WhepViewer(recorder=Mp4Recorder(args.record)) if args.record else None
    async with aiohttp.ClientSession() as http:
        try:
            if viewer is not None:
                await viewer.play(http, args.url, args.token)
            for speaker in speakers:
                session = await speaker.publish(http, args.url, args.token)
                print(f"speaking as {speaker.character}: session {session.id}", flush=True)
            start = time.monotonic()
            longest = max((len(s.track.pcm) / 48_000 for s in speakers), default=0.0)
            end = start + (args.seconds if args.seconds is not None else longest + args.tail)
            while time.monotonic() < end:
                await asyncio.sleep(min(0.2, end - time.monotonic()))
        finally:
            for speaker in speakers:
                await speaker.close(http, args.token)
            if viewer is not None:
                await viewer.close(http, args.token)
    summary: dict = {
        "speakers": [{"character": s.character, "seconds_sent": s.track.sent / 48_000} for s in speakers]
    }
    if viewer is not None:
        frames = viewer.video
        wall = frames[-1].received - frames[0].received if len(frames) > 1 else 0.0
        summary["viewer"] = {
            "frames": len(frames),
            "fps": round((len(frames) - 1) / wall, 2) if wall else None,
            "audio_frames": len(viewer.audio),
            "record": args.record,
            "sidecar": str(Path(args.record).with_suffix(".json")),
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    import json

    args = build_parser().parse_args(argv)
    try:
        pairs = check_args(args)
        summary = asyncio.run(run(args, pairs))
    except BYAError as exc:
        print(f"python -m clients.python: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
