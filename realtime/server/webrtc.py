"""The WebRTC side of the live server: peer connections on loopback, SDP checks, and the media tracks.

`RoomVideoTrack` and `RoomAudioTrack` are aiortc tracks that read one engine Subscription (video at
25 fps on the 90 kHz RTP clock, audio as 20 ms frames at 48 kHz); `pump_audio` feeds a received
(Opus) track into an engine AudioInput. ICE gathers host candidates on the configured addresses only
(loopback by default), so a local server and its tests never touch another interface, and an offer's
candidates are kept to the same scope: a loopback server drops off-loopback and mDNS (`.local`)
candidates (aioice would send there), and refuses an offer with none left or with a bad port. aiortc has no trickle ICE: every candidate is in the answer.
Every resampler and scaler a session uses runs on the calling thread (see `audio_resampler`), so no
FFmpeg thread pool outlives its session.
"""

from __future__ import annotations

import asyncio
import fractions
import ipaddress
import logging
from collections.abc import Callable, Sequence

import aioice.ice
import aiortc.codecs.g711
import aiortc.codecs.g722
import aiortc.codecs.opus
import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.exceptions import InvalidAccessError, OperationError
from aiortc.mediastreams import MediaStreamError

from realtime.errors import BYAError
from realtime.media import RTP_VIDEO_CLOCK_RATE, VIDEO_FPS, WEBRTC_AUDIO_RATE
from realtime.server.rtp_buffers import use_low_latency_buffers

log = logging.getLogger(__name__)

VIDEO_TICKS_PER_FRAME = RTP_VIDEO_CLOCK_RATE // VIDEO_FPS  # 3600 ticks of 90 kHz per 40 ms frame
VIDEO_TIME_BASE = fractions.Fraction(1, RTP_VIDEO_CLOCK_RATE)
AUDIO_TIME_BASE = fractions.Fraction(1, WEBRTC_AUDIO_RATE)
# what aiortc's SDP parser and offer checks raise on bad or unsupported offers (no common codec, ...);
# its parser validates with `assert` and `next()`, hence AssertionError and StopIteration
OFFER_ERRORS = (
    AssertionError,
    StopIteration,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    OperationError,
    InvalidAccessError,
)
MAX_SDP_LINES = 2000  # far above any real offer; bounds the parser's work on hostile input
# FFmpeg threads for a session's audio filter graphs and video scaling. "Auto" gives each one a pool of
# one thread per core, and PyAV's filter graph and its filters reference each other, so a dropped
# resampler kept its pool until the cyclic garbage collector ran: every WHIP/WHEP session left threads
# and memory behind. Audio filters never use the pool, and a 512 px RGB->YUV conversion takes <1 ms.
MEDIA_FILTER_THREADS = 1


class SdpError(BYAError):
    """An SDP offer that is not valid SDP or does not offer what the endpoint needs."""


# -- ICE on chosen addresses only -----------------------------------------------------------------------
_ice_addresses: list[str] | None = None
_aioice_lookup = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _ice_addresses is None:
        return _aioice_lookup(use_ipv4, use_ipv6)
    return list(_ice_addresses)


def restrict_ice_addresses(addresses: Sequence[str] | None) -> None:
    """Gather host candidates on exactly these addresses (None: aioice's default, every non-loopback one).

    aioice never offers 127.0.0.1 on its own, so a loopback server must name it. The lookup is
    process-wide (aioice reads it at each gathering), which is what a one-server process wants.
    """
    global _ice_addresses
    _ice_addresses = None if addresses is None else list(addresses)
    aioice.ice.get_host_addresses = _host_addresses


def tune_consent(interval_s: float, failures: int) -> None:
    """How fast a vanished peer is noticed: ICE consent (RFC 7675) expires after interval_s * failures."""
    if interval_s <= 0 or failures < 1:
        raise ValueError(f"consent interval must be > 0 and failures >= 1, got {interval_s}, {failures}")
    aioice.ice.CONSENT_INTERVAL = interval_s
    aioice.ice.CONSENT_FAILURES = failures


def rtc_configuration() -> RTCConfiguration:
    """No STUN/TURN (nothing is contacted) and one bundled transport (several tracks of a kind survive)."""
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


# -- FFmpeg threads -------------------------------------------------------------------------------------
def audio_resampler(**kwargs) -> av.AudioResampler:
    """An av.AudioResampler whose filter graph runs on the calling thread (no pool to outlive it)."""
    return av.AudioResampler(threads=MEDIA_FILTER_THREADS, **kwargs)


def single_threaded_codec_resamplers() -> None:
    """Make aiortc's audio encoders (Opus, G.711, G.722) build their resamplers with `audio_resampler`.

    aiortc makes one per sending audio track and drops it with the sender, where PyAV's graph cycle
    kept its thread pool alive until a garbage collection. Process-wide and idempotent, like
    `restrict_ice_addresses`; `answer` applies it before any encoder of its connection exists."""
    for module in (aiortc.codecs.opus, aiortc.codecs.g711, aiortc.codecs.g722):
        module.AudioResampler = audio_resampler


# -- SDP ------------------------------------------------------------------------------------------------
def check_offer(body: bytes, need: str) -> RTCSessionDescription:
    """Parse an offer and check it has what the endpoint needs ('send-audio' for WHIP, 'recv-video' for WHEP)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("the SDP offer is not UTF-8 text") from exc
    lines = text.replace("\r\n", "\n").strip().split("\n")
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("the SDP offer must start with 'v=0'")
    if len(lines) > MAX_SDP_LINES:
        raise SdpError(f"the SDP offer has {len(lines)} lines, more than {MAX_SDP_LINES}")
    for line in lines:
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha() or not line.isprintable():
            raise SdpError(f"malformed SDP line {line[:40]!r}")
    media = [_media_section(lines, i) for i, line in enumerate(lines) if line.startswith("m=")]
    if not media:
        raise SdpError("the SDP offer has no media section")
    kind, directions = (
        ("audio", {"sendonly", "sendrecv"}) if need == "send-audio" else ("video", {"recvonly", "sendrecv"})
    )
    if not any(k == kind and d in directions for k, d in media):
        want = "send audio" if need == "send-audio" else "receive video"
        raise SdpError(
            f"the SDP offer does not {want} (an m={kind} section that is {'/'.join(sorted(directions))})"
        )
    if "a=ice-ufrag:" not in text or "a=fingerprint:" not in text:
        raise SdpError("the SDP offer lacks ICE credentials or a DTLS fingerprint")
    candidates = [line for line in lines if line.startswith("a=candidate:")]
    reachable = [line for line in candidates if candidate_in_scope(line.strip())]
    if candidates and not reachable:
        raise SdpError(f"no ICE candidate of the offer is in this server's scope ({_ice_addresses})")
    if len(reachable) < len(candidates):  # a browser offers every interface: keep the ones in scope
        dropped = set(candidates) - set(reachable)
        text = "\r\n".join(line for line in lines if line not in dropped) + "\r\n"
    text = text if text.endswith("\n") else text + "\r\n"
    try:  # aiortc's own parser, before any peer connection exists; it validates with `assert`
        aiortc_sdp.SessionDescription.parse(text)
    except OFFER_ERRORS as exc:
        raise SdpError(f"the SDP offer cannot be parsed: {type(exc).__name__} {exc}".rstrip()) from exc
    return RTCSessionDescription(sdp=text, type="offer")


def candidate_in_scope(line: str) -> bool:
    """Whether an `a=candidate:` line's address lies in the scope ICE gathers on (restrict_ice_addresses);
    not when off loopback on a loopback server, of another address family, or an mDNS name there (its
    lookup is a multicast query off loopback). SdpError if malformed or its port is not 1-65535."""
    parts = line[len("a=candidate:") :].split()
    if len(parts) < 8 or parts[6] != "typ":
        raise SdpError(f"malformed ICE candidate {line[:80]!r}")
    address, port = parts[4], parts[5]
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        raise SdpError(f"ICE candidate port {port[:20]!r} is not 1-65535")
    scope = [_ip(a) for a in _ice_addresses or ()]
    scope = [a for a in scope if a is not None]
    if not scope:  # gathering on every interface (or named ones): any address may be reachable
        return True
    loopback_only = all(a.is_loopback for a in scope)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # a name: resolving an mDNS .local name sends a multicast query off loopback
        return not loopback_only
    if ip.version not in {a.version for a in scope}:
        return False
    return ip.is_loopback or not loopback_only


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _media_section(lines: list[str], start: int) -> tuple[str, str]:
    """(kind, direction) of the m= section starting at lines[start]; direction defaults to sendrecv."""
    kind = lines[start][2:].split(" ", 1)[0]
    direction = "sendrecv"
    for line in lines[start + 1 :]:
        if line.startswith("m="):
            break
        if line.strip() in ("a=sendonly", "a=recvonly", "a=sendrecv", "a=inactive"):
            direction = line.strip()[2:]
    return kind, direction


async def answer(
    pc: RTCPeerConnection,
    offer: RTCSessionDescription,
    tracks: Sequence[MediaStreamTrack] = (),
    decline: Sequence[str] = (),
) -> str:
    """Apply the offer, send `tracks`, and return the answer SDP with every candidate (no trickle ICE).

    Media of a kind in `decline` is answered `inactive`: the peer then sends none of it, so nothing is
    received or decoded only to be thrown away (a WHIP speaker's camera, which OBS sends by default)."""
    try:
        await pc.setRemoteDescription(offer)
        for transceiver in pc.getTransceivers():
            if transceiver.kind in decline:
                transceiver.direction = "inactive"
        use_low_latency_buffers(pc)  # the engine buffers audio itself: aiortc's 80 ms wait is pure delay
        single_threaded_codec_resamplers()
        for track in tracks:  # attach to the transceivers the offer created; kinds it lacks are skipped
            if any(t.kind == track.kind and t.sender.track is None for t in pc.getTransceivers()):
                pc.addTrack(track)
        await pc.setLocalDescription(await pc.createAnswer())
    except OFFER_ERRORS as exc:
        raise SdpError(f"the SDP offer was refused: {type(exc).__name__} {exc}".rstrip()) from exc
    return pc.localDescription.sdp


# -- outgoing tracks ------------------------------------------------------------------------------------
class RoomVideoTrack(MediaStreamTrack):
    """The room's composited video, one frame per engine frame, stamped on the 90 kHz RTP clock."""

    kind = "video"

    def __init__(self, subscription) -> None:
        super().__init__()
        self.subscription = subscription
        self._first: int | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        out = await self.subscription.next_video()  # paced by the room's clock
        if out is None:
            self.stop()
            raise MediaStreamError
        if self._first is None:
            self._first = out.pts
        frame = await asyncio.to_thread(yuv_frame, out.image)
        frame.pts = (out.pts - self._first) * VIDEO_TICKS_PER_FRAME
        frame.time_base = VIDEO_TIME_BASE
        return frame


def yuv_frame(image: np.ndarray) -> av.VideoFrame:
    """(H, W, 3) uint8 RGB as the yuv420p frame the encoders take, scaled on the calling thread.

    aiortc's VP8 encoder would convert RGB itself through PyAV's per-thread scaler with "auto"
    threads: a pool of one thread per core for every executor thread that ever encoded a frame.
    Converted here, its own conversion is a no-op (the encoder threads' scalers hold no pool)."""
    rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return rgb.reformat(format="yuv420p", threads=MEDIA_FILTER_THREADS)


class RoomAudioTrack(MediaStreamTrack):
    """The room's mixed audio (already delayed to meet its frames), 20 ms int16 frames at 48 kHz."""

    kind = "audio"

    def __init__(self, subscription) -> None:
        super().__init__()
        self.subscription = subscription
        self._first: int | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        out = await self.subscription.next_audio()
        if out is None:
            self.stop()
            raise MediaStreamError
        if self._first is None:
            self._first = out.pts
        pcm = np.ascontiguousarray(out.pcm, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = WEBRTC_AUDIO_RATE
        frame.pts = out.pts - self._first
        frame.time_base = AUDIO_TIME_BASE
        return frame


# -- incoming audio -------------------------------------------------------------------------------------
async def pump_audio(
    track: MediaStreamTrack,
    audio_input,
    idle_timeout_s: float,
    received: Callable[[float], None] | None = None,
) -> str:
    """Feed a received audio track into an engine AudioInput until it ends; return why it ended.

    Frames arrive as decoded PyAV frames (Opus: s16 stereo at 48 kHz); they are mixed down to mono
    int16 at their own rate and handed to the engine, which resamples and validates. A track that
    delivers nothing for idle_timeout_s counts as a vanished peer. `received` is told the seconds of
    audio handed over.
    """
    mono: av.AudioResampler | None = None
    rate = None
    while True:
        try:
            frame = await asyncio.wait_for(track.recv(), idle_timeout_s)
        except TimeoutError:
            return "idle"
        except MediaStreamError:
            return "ended"
        if frame.sample_rate != rate:  # a new rate (renegotiation): a new resampler
            rate = frame.sample_rate
            mono = audio_resampler(format="s16", layout="mono", rate=rate)
        for out in mono.resample(frame):
            audio_input.write(out.to_ndarray().reshape(-1), rate)
            if received is not None:
                received(out.samples / rate)


async def close_quietly(pc: RTCPeerConnection) -> None:
    """Close a peer connection; a peer that is already gone must not stop the cleanup of the others."""
    try:
        await asyncio.wait_for(pc.close(), 5.0)
    except Exception as exc:  # logged, not raised: the caller is cleaning up after a failure already
        log.warning("closing a peer connection failed (%r); stopping its transports directly", exc)
        await _stop_transports(pc)


async def _stop_transports(pc: RTCPeerConnection) -> None:
    """aiortc's close() stops at the first transceiver left without a transport by an offer it applied
    only in part (seen with fuzzed offers); stop every DTLS and ICE transport so no socket is left open."""
    transports = (*pc._RTCPeerConnection__dtlsTransports, *pc._RTCPeerConnection__iceTransports)
    for transport in transports:
        try:
            await asyncio.wait_for(transport.stop(), 2.0)
        except Exception as exc:  # one stuck transport must not keep the next one open
            log.warning("stopping %s failed: %r", type(transport).__name__, exc)
