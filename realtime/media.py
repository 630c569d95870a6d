"""Media constants shared by every part of the engine.

Everything that speaks of sample rates, frame rates, clocks or chunk sizes imports them from here,
so the world generator, the model, the audio front end and the outputs can never disagree.
"""

AUDIO_SAMPLE_RATE = 16_000  # Hz; the engine's internal audio rate (speech features, VAD, the world's tracks)
VIDEO_FPS = 25  # frames per second; the rate of talking-head data and lip-sync metrics
FRAME_MS = 1000 // VIDEO_FPS  # 40 ms of audio per video frame
SAMPLES_PER_FRAME = AUDIO_SAMPLE_RATE // VIDEO_FPS  # 640 samples = 40 ms at 16 kHz

WEBRTC_AUDIO_RATE = 48_000  # Hz; Opus over WebRTC always runs at 48 kHz
RTP_VIDEO_CLOCK_RATE = 90_000  # Hz; the RTP clock of every video codec
VAD_FRAME_MS = 20  # ms; webrtcvad accepts 10/20/30 ms frames, 20 ms halves a video frame
# a mixed stream's frame is assigned to a speaker this long after it ends (voices need context): the
# latency diarization adds; 200 ms scored within 0.1 point of it offline (docs/audio.md)
DIARIZER_LOOKAHEAD_MS = 500

MIN_CHARACTERS = 1
MAX_CHARACTERS = 4  # the limit the shipped model was trained with: the default of
# GeneratorConfig.max_characters and the limit of code with no model (worlds, data, scene files).
# Code that runs a model reads model.cfg.max_characters instead.

DEFAULT_FRAME_SIZE = 128  # px; the CPU real-time preset renders 128x128
SUPPORTED_FRAME_SIZES = (64, 128, 256, 512)  # px; square frames, multiples of the 8x autoencoder stride
