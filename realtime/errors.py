"""Exception types for bad input from outside the engine.

One type per kind of bad input, each a ValueError so callers that only care about "bad argument"
can catch that; the CLI and the HTTP server turn them into a one-line message or a 4xx.
"""


class BYAError(ValueError):
    """Base class of every error caused by input the engine was given."""


class CharacterCountError(BYAError):
    """A scene asked for fewer than 1 characters, or more than the model's max_characters (4 shipped)."""


class SpeechError(BYAError):
    """Text-to-speech was asked for something it cannot say (empty text, unknown voice or language)."""


class SceneError(BYAError):
    """A scene description (built-in or from a file) is invalid."""


class ShardError(BYAError):
    """A dataset shard or its manifest is missing, corrupt or of an unknown format."""


class OutputPathError(BYAError):
    """An output location cannot be written."""


class CheckpointError(BYAError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into."""


class VideoInputError(BYAError):
    """A video given for evaluation cannot be read or does not match its ground truth."""


class FrameSizeError(BYAError):
    """A frame size that the renderer or the model does not support (see realtime.media)."""


class ScriptError(BYAError):
    """A dialogue script was asked for with invalid parameters (a duration out of range, a bad seed)."""


class AudioInputError(BYAError):
    """Audio handed to the engine is not mono int16/float32 PCM at a supported rate, or its input is closed."""


class BindingError(BYAError):
    """A binding names an unknown input or character, reuses an input key, or exceeds the room's inputs."""


class AudioDeviceError(BYAError):
    """An audio input device was asked for where none exists (or PortAudio is missing)."""


class AudioBackendError(BYAError):
    """An audio backend (a VAD, the speaker encoder) that is unknown, misconfigured or not installed."""


class DiarizationError(BYAError):
    """The diarizer was configured or enrolled with invalid parameters or audio."""
