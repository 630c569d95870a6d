"""Mixed-stream diarization: one stream with several voices -> who speaks when -> each voice to its character.

A room microphone or a podcast mix carries several speakers. Every hop_ms a window_ms window of the
stream is embedded (`realtime.audio.speaker_encoder`, GE2E) and scored against one centroid per speaker, learnt
from a few seconds of each character's voice ("enroll") or clustered on the fly ("online", up to 4). Each
40 ms frame is decided lookahead_ms after it ends, from every window that covers it and has ended by
then; VAD gates silence. With enrollment, per-speaker spectral dictionaries (`realtime.audio.voice_dictionary`)
give each speaker's share of a frame's energy: it sharpens the choice at turn changes and, with
overlap=True, binds a second speaker who carries enough of it (overlapped speech). Numbers: docs/audio.md.
"""

from __future__ import annotations

import copy

import numpy as np

from realtime.audio.diarization_stream import DiarizationStream
from realtime.audio.diarizer_config import Decision, DiarizerConfig
from realtime.audio.speaker_encoder import HOP, N_FFT, SpeakerEncoder, level_gain, mel_frames
from realtime.audio.speaker_model import SpeakerModel
from realtime.audio.stream_stft import StreamingSTFT
from realtime.audio.vad import FRAME_SAMPLES, VoiceActivity
from realtime.audio.voice_dictionary import learn_dictionary
from realtime.errors import DiarizationError
from realtime.media import AUDIO_SAMPLE_RATE, MAX_CHARACTERS, SAMPLES_PER_FRAME

MIN_ENROLL_SPEECH_S = 2.0  # less than this gives a centroid that wanders with the phonemes said
ENROLL_HOP_MS = 100  # enrollment windows overlap less: they only need to cover the audio
RAMP_MS = 5  # split(): a track fades in and out over 5 ms at each decision edge, so routing never clicks


def check_audio(audio: np.ndarray, what: str) -> np.ndarray:
    """A 1-D finite float32 array at 16 kHz, or DiarizationError."""
    audio = np.asarray(audio)
    if audio.ndim != 1 or audio.dtype.kind != "f":
        raise DiarizationError(f"{what} must be 1-D float audio at 16 kHz, got {audio.dtype} {audio.shape}")
    if not np.isfinite(audio).all():
        raise DiarizationError(f"{what} contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


class Diarizer:
    """Streaming who-speaks-when for one mixed stream; characters from enrollment or online clusters."""

    def __init__(self, mode: str = "enroll", window_ms: int = 1000, hop_ms: int = 80, **options) -> None:
        try:
            self.config = DiarizerConfig(mode=mode, window_ms=window_ms, hop_ms=hop_ms, **options).check()
        except TypeError as e:
            raise DiarizationError(f"unknown Diarizer option: {e}") from e
        self.encoder = SpeakerEncoder()
        self._centroids: dict[int, np.ndarray] = {}  # character -> unit 256-d centroid (enroll mode)
        self._dictionaries: dict[int, np.ndarray] = {}  # character -> (F, atoms) voice spectra
        self._stream = self._new_stream()

    @property
    def latency_ms(self) -> int:
        """How long after a 40 ms frame ends its decision comes out."""
        return self.config.lookahead_ms

    @property
    def characters(self) -> tuple[int, ...]:
        """Enrolled characters (enroll mode) or speakers found so far (online mode), in index order."""
        if self.config.mode == "enroll":
            return tuple(sorted(self._centroids))
        return tuple(range(len(self._stream.model.centroids)))

    def _new_stream(self) -> DiarizationStream:
        cfg = self.config
        if cfg.mode == "enroll":
            chars = sorted(self._centroids)
            model = SpeakerModel(
                [self._centroids[c] for c in chars], chars, online=False, config=cfg, dictionaries=None
            )
            if self._uses_dictionaries and len(chars) > 1:
                model.dictionaries = [self._dictionaries[c] for c in chars]
        else:
            model = SpeakerModel([], [], online=True, config=cfg, dictionaries=None)
        return DiarizationStream(cfg, model, self.encoder)

    @property
    def _uses_dictionaries(self) -> bool:
        return self.config.overlap or self.config.share_weight > 0

    def reset(self) -> None:
        """Start a new stream (enrollment is kept; online clusters are forgotten)."""
        self._stream = self._new_stream()

    def clone(self) -> Diarizer:
        """A diarizer with this one's configuration and enrollment and a new stream of its own.

        One per live mixed stream: enrollment is paid once, the encoder's weights are shared.
        """
        twin = copy.copy(self)
        twin._centroids, twin._dictionaries = dict(self._centroids), dict(self._dictionaries)
        twin.reset()
        return twin

    # -- enrollment ---------------------------------------------------------------------------------------
    def enroll(self, character: int, audio16k: np.ndarray) -> None:
        """Learn a character's voice from a few seconds of it alone; restarts the stream."""
        if self.config.mode != "enroll":
            raise DiarizationError("enroll() needs mode='enroll'; online mode finds speakers by itself")
        if isinstance(character, bool) or not isinstance(character, int | np.integer):
            raise DiarizationError(f"character must be an integer index, got {character!r}")
        if not 0 <= character < MAX_CHARACTERS:
            raise DiarizationError(f"character must be in [0, {MAX_CHARACTERS}), got {character}")
        audio = check_audio(audio16k, "enrollment audio")
        vad = VoiceActivity(self.config.vad).process(audio)
        speech_s = vad.sum() * FRAME_SAMPLES / AUDIO_SAMPLE_RATE
        if speech_s < MIN_ENROLL_SPEECH_S:
            raise DiarizationError(
                f"enrollment of character {character} needs >= {MIN_ENROLL_SPEECH_S:g} s of speech, got {speech_s:.1f} s"
            )
        self._centroids[int(character)] = self._centroid(audio, vad)
        if self._uses_dictionaries:
            self._dictionaries[int(character)] = learn_dictionary(audio)
        self.reset()

    def _centroid(self, audio: np.ndarray, vad20: np.ndarray) -> np.ndarray:
        mel = mel_frames(StreamingSTFT(N_FFT, HOP).push(audio))  # (T, N_MELS)
        wf, hf = self.config.window_ms // 10, ENROLL_HOP_MS // 10
        starts = range(0, max(1, len(mel) - wf + 1), hf)
        windows = []
        for s in starts:
            speech = vad20[s // 2 : (s + wf) // 2]
            if len(speech) and speech.mean() >= 0.5:  # windows that are mostly pause say little
                seg = audio[s * HOP : (s + wf - 1) * HOP + N_FFT]
                windows.append(mel[s : s + wf] * level_gain(seg))
        if not windows:
            raise DiarizationError("enrollment audio has no window that is mostly speech")
        lengths = {len(w) for w in windows}
        emb = np.concatenate(
            [self.encoder.embed(np.stack([w for w in windows if len(w) == n])) for n in lengths]
        )
        centroid = emb.mean(0)
        return (centroid / max(float(np.linalg.norm(centroid)), 1e-9)).astype(np.float32)

    # -- streaming ----------------------------------------------------------------------------------------
    def push(self, audio16k: np.ndarray) -> list[Decision]:
        """Feed mixed audio at 16 kHz; return decisions for every frame now lookahead_ms old.

        Each decision is (start_sample, end_sample, character) in stream samples, runs of 40 ms frames;
        None marks silence. In overlapped speech the same span appears once per bound character.
        """
        if self.config.mode == "enroll" and not self._centroids:
            raise DiarizationError("enroll at least one character before pushing audio")
        return self._stream.push(check_audio(audio16k, "audio"))

    def flush(self) -> list[Decision]:
        """End of stream: decide the frames still waiting for lookahead; the next push starts a new stream."""
        out = self._stream.flush()
        self.reset()
        return out

    def split(self, audio16k: np.ndarray) -> np.ndarray:
        """(K, samples) float32: each character's own track of a whole mix, silence where they do not speak.

        Runs a fresh stream (enrollment kept; the live stream is untouched). K = highest enrolled character
        + 1 in enroll mode, max_speakers in online mode.
        """
        audio = check_audio(audio16k, "audio")
        if self.config.mode == "enroll" and not self._centroids:
            raise DiarizationError("enroll at least one character before split()")
        stream = self._new_stream()
        decisions = stream.push(audio) + stream.flush()
        k = max(self._centroids) + 1 if self.config.mode == "enroll" else self.config.max_speakers
        return route(audio, decisions, k)


def decision_masks(decisions: list[Decision], k: int, n_frames: int) -> np.ndarray:
    """(K, n_frames) bool per 40 ms frame from decisions (what the bench scores and split routes)."""
    masks = np.zeros((k, n_frames), bool)
    for start, end, character in decisions:
        if character is not None and character < k:
            masks[character, start // SAMPLES_PER_FRAME : -(-end // SAMPLES_PER_FRAME)] = True
    return masks


def route(audio: np.ndarray, decisions: list[Decision], k: int) -> np.ndarray:
    """(K, samples): the mix gated per character by the decisions, with RAMP_MS fades at every edge."""
    n_frames = -(-len(audio) // SAMPLES_PER_FRAME)
    masks = decision_masks(decisions, k, n_frames)
    gains = np.repeat(masks.astype(np.float32), SAMPLES_PER_FRAME, axis=1)[:, : len(audio)]
    ramp = max(1, AUDIO_SAMPLE_RATE * RAMP_MS // 1000)
    kernel = np.ones(ramp, np.float32) / ramp
    pad = (ramp // 2, ramp - 1 - ramp // 2)  # edge padding: the stream's own ends are not faded
    gains = np.stack([np.convolve(np.pad(g, pad, mode="edge"), kernel, mode="valid") for g in gains])
    return (gains * audio[None]).astype(np.float32)
