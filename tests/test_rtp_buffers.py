"""The receive buffers hand frames over as soon as they are complete, and never a broken frame."""

from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection
from aiortc.rtp import RtpPacket

from realtime.server.rtp_buffers import MarkerVideoBuffer, PacketAudioBuffer, use_low_latency_buffers


def _packet(seq: int, timestamp: int, data: bytes, marker: bool = False) -> RtpPacket:
    packet = RtpPacket(payload_type=96, marker=int(marker), sequence_number=seq % 65536, timestamp=timestamp)
    packet._data = data  # what aiortc's receiver sets after depayloading
    return packet


def test_audio_packets_pass_at_once_and_late_ones_drop() -> None:
    buffer = PacketAudioBuffer()
    out = [buffer.add(_packet(seq, 960 * seq, bytes([seq % 256])))[1] for seq in (65534, 65535, 0, 2)]
    assert [f.data for f in out] == [b"\xfe", b"\xff", b"\x00", b"\x02"]  # across the wrap, gap or not
    assert buffer.add(_packet(1, 960, b"late"))[1] is None  # older than one passed on: dropped
    assert buffer.add(_packet(2, 1920, b"dup"))[1] is None
    assert buffer.dropped == 2
    assert buffer.add(_packet(3, 2880, b"\x03"))[1].data == b"\x03"


def test_video_frame_leaves_with_its_marker_packet() -> None:
    buffer = MarkerVideoBuffer()
    assert buffer.add(_packet(10, 3600, b"a"))[1] is None
    assert buffer.add(_packet(11, 3600, b"b"))[1] is None
    frame = buffer.add(_packet(12, 3600, b"c", marker=True))[1]
    assert (frame.data, frame.timestamp) == (b"abc", 3600)  # not waiting for the next frame
    frame = buffer.add(_packet(13, 7200, b"d", marker=True))[1]
    assert frame.data == b"d"


def test_video_frame_with_a_missing_packet_waits() -> None:
    buffer = MarkerVideoBuffer()
    buffer.add(_packet(20, 3600, b"a"))
    assert buffer.add(_packet(22, 3600, b"c", marker=True))[1] is None  # packet 21 missing
    frame = buffer.add(_packet(21, 3600, b"b"))[1]  # the hole fills: aiortc's rule or ours completes it
    late = buffer.add(_packet(23, 7200, b"d", marker=True))[1]
    assert (frame or late).data == b"abc"


def test_buffers_are_swapped_on_every_receiver() -> None:
    async def run() -> int:
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        try:
            return use_low_latency_buffers(pc), [
                type(t.receiver._RTCRtpReceiver__jitter_buffer) for t in pc.getTransceivers()
            ]
        finally:
            await pc.close()

    swapped, kinds = asyncio.run(run())
    assert swapped == 2 and kinds == [MarkerVideoBuffer, PacketAudioBuffer]
