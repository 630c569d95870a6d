"""Receive-side RTP buffers that hand a frame over as soon as it is complete.

aiortc's receiver holds every incoming audio packet until four newer ones have arrived (80 ms of
Opus), and a video frame until the first packet of the next frame arrives (one frame interval, 40 ms
at 25 fps). The live engine has its own jitter buffer for audio (realtime/audio/ingest.py: reorder by
pts, pre-buffer, drift), and a viewer shows frames on arrival, so both waits are pure latency here.
`use_low_latency_buffers(pc)` swaps them on every receiver of a peer connection:

  audio: one Opus packet is one frame; it is passed on the moment it arrives, unless it is older than
         one already passed on (a late duplicate or reordered packet: the engine's reorder buffer
         fills the gap with silence instead).
  video: a frame is passed on when its last packet (RTP marker bit) arrives and every packet of the
         frame is there; aiortc's own rule (the next frame's first packet) still applies otherwise.
"""

from __future__ import annotations

import logging

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add, uint16_gt

log = logging.getLogger(__name__)

AUDIO_CAPACITY = 16  # packets; a power of two, like aiortc's own audio buffer
VIDEO_CAPACITY = 512  # packets; aiortc's video default (a key frame of a large picture spans many)
_BUFFER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"  # aiortc's private name, checked at use


class PacketAudioBuffer(JitterBuffer):
    """Audio: every in-order packet is a frame, passed on at once; older packets are dropped."""

    def __init__(self) -> None:
        super().__init__(capacity=AUDIO_CAPACITY)
        self._newest: int | None = None  # sequence number of the newest packet passed on
        self.dropped = 0  # packets older than one already passed on

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        seq = packet.sequence_number
        if self._newest is not None and not uint16_gt(seq, self._newest):
            self.dropped += 1
            return False, None
        self._newest = seq
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


class MarkerVideoBuffer(JitterBuffer):
    """Video: a frame leaves when its marker packet arrives and all its packets are present."""

    def __init__(self) -> None:
        super().__init__(capacity=VIDEO_CAPACITY, is_video=True)

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if frame is None and packet.marker and self._origin is not None:
            frame = self._complete_through(packet.sequence_number)
        return pli, frame

    def _complete_through(self, seq: int) -> JitterFrame | None:
        """The frame from the oldest held packet up to `seq`, when it is whole; None otherwise."""
        count = uint16_add(seq, -self._origin) + 1
        if count > self.capacity:
            return None
        packets = [self._packets[(self._origin + i) % self.capacity] for i in range(count)]
        if any(p is None for p in packets) or len({p.timestamp for p in packets}) != 1:
            return None
        self.remove(count)
        return JitterFrame(data=b"".join(p._data for p in packets), timestamp=packets[0].timestamp)


def use_low_latency_buffers(pc: RTCPeerConnection) -> int:
    """Swap the jitter buffer of every receiver of `pc`; return how many were swapped.

    Call it once the transceivers exist (after setRemoteDescription on an answerer, after
    addTransceiver on an offerer) and before media flows. A future aiortc without the private buffer
    attribute keeps its own buffers (logged once per call), which costs latency but nothing else.
    """
    swapped = 0
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if not hasattr(receiver, _BUFFER_ATTRIBUTE):
            log.warning("this aiortc has no receiver jitter buffer to swap; keeping its own (+80 ms audio)")
            return swapped
        kind = transceiver.kind
        setattr(receiver, _BUFFER_ATTRIBUTE, PacketAudioBuffer() if kind == "audio" else MarkerVideoBuffer())
        swapped += 1
    return swapped
