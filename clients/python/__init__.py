"""A Python client of `bya serve`: WHIP speakers that play audio files in real time, a WHEP viewer that
records what it receives (MP4 + JSON receive timestamps). `python -m clients.python --help` runs it.
"""

from clients.python.audio_file import AudioFileError, PacedAudioTrack, load_audio
from clients.python.recording import Mp4Recorder
from clients.python.signaling import SessionError, check_base_url, connect_loopback
from clients.python.speaker import WhipSpeaker
from clients.python.viewer import ReceivedAudio, ReceivedVideo, WhepViewer

__all__ = [
    "AudioFileError",
    "Mp4Recorder",
    "PacedAudioTrack",
    "ReceivedAudio",
    "ReceivedVideo",
    "SessionError",
    "WhepViewer",
    "WhipSpeaker",
    "check_base_url",
    "connect_loopback",
    "load_audio",
]
