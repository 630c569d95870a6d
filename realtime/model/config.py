"""Configuration of the generator (MM-DiT + audio encoder + Embedding Router) and its named presets.

A frozen dataclass whose every field says why its default is what it is; checkpoints store it as JSON
beside the weights, so loading needs nothing else. `GENERATOR_CONFIGS` is the table the CLI looks up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from realtime.media import FRAME_MS, MAX_CHARACTERS


@dataclass(frozen=True)
class GeneratorConfig:
    """Sizes of one generator; the latent geometry must match the frame autoencoder it runs on."""

    # latent video
    frame_size: int = 128  # px; frames are square (see realtime.media.SUPPORTED_FRAME_SIZES)
    latent_channels: int = 8  # must equal the autoencoder's latent_channels
    latent_factor: int = 8  # autoencoder stride: 128 px -> 16 x 16 latents
    patch: int = 2  # 2x2 latent patches: 64 tokens per 128 px frame, the CPU real-time budget
    # transformer
    width: int = 192  # 6 heads x 32: the width the NOTES feasibility run found real-time on 2 cores
    depth: int = 6  # blocks; each has a context stream and a noisy stream (MM-DiT)
    heads: int = 6
    mlp_ratio: float = 3.0  # a little under the usual 4: MLPs dominate FLOPs at 64 tokens per frame
    # streaming geometry
    chunk_frames: int = 2  # frames generated together: 80 ms of audio to wait for at 25 fps
    window_chunks: int = 2  # clean chunks of context besides the reference frame (the rolling cache)
    # audio
    n_mels: int = 40  # log-mel bands; enough for visemes of synthetic and real speech
    audio_past_ms: int = (
        200  # context before the frame: a syllable, so the mouth anticipates nothing it can't hear
    )
    audio_lookahead_ms: int = (
        40  # heard after the frame ends; adds exactly this much latency (a config, not a constant)
    )
    audio_tokens: int = 4  # tokens per frame per character: the router's keys
    audio_width: int = 96  # channels of the audio encoder's convolutions
    # what is denoised: the chunk's change from the last clean frame (the last context frame, or the
    # reference when there is none), divided by this scale. World frames change by ~0.11 latent std per
    # frame and ~0.49 from the reference: a residual is most of the way to the answer, and an error in it
    # cannot repaint the background. 0 denoises absolute latents.
    residual_scale: float = 0.3
    # router
    max_characters: int = MAX_CHARACTERS  # the router's character axis; fewer are padded and flagged absent
    router_layers: tuple[int, ...] = (1, 3)  # blocks that predict masks; later blocks route with the latest
    router_dim: int = 64  # width of the router's query/identity space
    mask_sub: int = 4  # each token predicts a 4x4 sub-mask: 32 x 32 masks for 128 px, sharp enough for IoU
    # the router's logits start from where each character is in the reference frame (a learned gain on
    # the reference mask) and the tokens move them from there: at one step from pure noise the tokens say
    # little, and a character is one blob near where it was. False: the tokens alone (older checkpoints).
    router_prior: bool = False
    # what a frame is: "latent" (the frame autoencoder's latents: the model draws pixels) or "rig" (a rig
    # field, realtime.model.rig_field: pose values per head region; a renderer moves the user's picture)
    output: str = "latent"

    def __post_init__(self) -> None:
        if self.output not in ("latent", "rig"):
            raise ValueError(f"output must be 'latent' or 'rig', got {self.output!r}")
        if self.max_characters < 1:
            raise ValueError(f"max_characters must be >= 1, got {self.max_characters}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of heads {self.heads}")
        if self.frame_size % (self.latent_factor * self.patch):
            raise ValueError(
                f"frame_size {self.frame_size} must be a multiple of {self.latent_factor * self.patch}"
            )
        if any(not 0 <= i < self.depth for i in self.router_layers) or not self.router_layers:
            raise ValueError(
                f"router_layers {self.router_layers} must be non-empty indices below depth {self.depth}"
            )
        if self.audio_past_ms % 10 or self.audio_lookahead_ms % 10 or self.audio_lookahead_ms < 0:
            raise ValueError("audio_past_ms and audio_lookahead_ms must be non-negative multiples of 10 ms")

    @property
    def latent_size(self) -> int:
        return self.frame_size // self.latent_factor

    @property
    def grid(self) -> int:
        """Tokens per side of one frame."""
        return self.latent_size // self.patch

    @property
    def frame_tokens(self) -> int:
        return self.grid * self.grid

    @property
    def token_dim(self) -> int:
        return self.latent_channels * self.patch * self.patch

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def mask_size(self) -> int:
        """Side of the router's mask grid."""
        return self.grid * self.mask_sub

    @property
    def mel_per_frame(self) -> int:
        return FRAME_MS // 10  # mel hop is 10 ms

    @property
    def audio_window(self) -> int:
        """Mel frames the encoder sees for one video frame: past + the frame itself + lookahead."""
        return (self.audio_past_ms + FRAME_MS + self.audio_lookahead_ms) // 10

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> GeneratorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown generator config fields: {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


GENERATOR_CONFIGS: dict[str, GeneratorConfig] = {
    # 128 px, 64 tokens per frame: the CPU real-time preset that ships.
    "toon-s": GeneratorConfig(),
    # tests and smoke runs: seconds per step on any machine
    "tiny": GeneratorConfig(width=64, depth=2, heads=2, router_layers=(0,), audio_width=32, router_dim=32),
    # GPU presets: 256 px / 256 tokens per frame, and 512 px / 1024 tokens per frame (see kernels/shapes.py)
    "base": GeneratorConfig(
        frame_size=256,
        latent_channels=16,
        width=768,
        depth=12,
        heads=12,
        window_chunks=8,
        audio_width=256,
        router_layers=(2, 6),
        router_dim=128,
    ),
    "large": GeneratorConfig(
        frame_size=512,
        latent_channels=16,
        width=1536,
        depth=24,
        heads=12,
        chunk_frames=3,
        window_chunks=8,
        audio_width=384,
        router_layers=(4, 12),
        router_dim=128,
    ),
}
