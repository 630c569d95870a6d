"""Attention shapes of the model presets, as the kernels and their benchmark see them.

The model (issue 3) attends a chunk's queries over [sink frame | window of cached chunks | the chunk];
these presets fix the token counts so the benchmark and the GPU tests measure the shapes we ship.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AttentionShape:
    """Token and head geometry of one model preset."""

    frame_tokens: int  # F: latent tokens per video frame (latent side / patch, squared)
    chunk_frames: int  # C: frames generated together; 2 frames = 80 ms of audio to wait for at 25 fps
    window_chunks: int  # W: clean chunks kept in the rolling cache besides the sink frame
    heads: int  # query heads
    kv_heads: int  # key/value heads; < heads means grouped-query attention
    head_dim: int  # D: 32..128, a power of two so Triton tiles need no padding
    audio_tokens: int = 8  # A: audio tokens per frame per character (the router's keys)
    characters: int = 4  # K: characters bound to audio streams (the router's character axis)

    @property
    def width(self) -> int:
        """Model width implied by the heads (query side)."""
        return self.heads * self.head_dim

    @property
    def q_len(self) -> int:
        """Queries per inference step: one chunk."""
        return self.chunk_frames * self.frame_tokens

    @property
    def kv_max(self) -> int:
        """Keys when the window is full: sink + W cached chunks + the chunk itself."""
        return self.frame_tokens + self.window_chunks * self.q_len + self.q_len

    def kv_len(self, cached_chunks: int) -> int:
        """Valid keys when `cached_chunks` clean chunks sit in the cache (0 = empty cache)."""
        if not 0 <= cached_chunks <= self.window_chunks:
            raise ValueError(f"cached_chunks must be in [0, {self.window_chunks}], got {cached_chunks}")
        return self.frame_tokens + cached_chunks * self.q_len + self.q_len

    def train_len(self, chunks: int) -> int:
        """Tokens of one teacher-forced training clip: reference frame + `chunks` chunks."""
        return self.frame_tokens + chunks * self.q_len


PRESETS: dict[str, AttentionShape] = {
    # 128 px frame -> 16x16 latent, patch 2 -> 64 tokens; width 192 runs in real time on 2 CPU cores.
    "toon-s": AttentionShape(
        frame_tokens=64, chunk_frames=2, window_chunks=4, heads=6, kv_heads=6, head_dim=32
    ),
    # 256 px -> 32x32 latent, patch 2 -> 256 tokens; width 768 for one GPU.
    "base": AttentionShape(
        frame_tokens=256, chunk_frames=2, window_chunks=8, heads=12, kv_heads=12, head_dim=64
    ),
    # 512 px -> 64x64 latent, patch 2 -> 1024 tokens; width 1536, ~28.7k keys with a full window.
    "large": AttentionShape(
        frame_tokens=1024, chunk_frames=3, window_chunks=8, heads=12, kv_heads=12, head_dim=128
    ),
    # The large preset with grouped K/V heads (4 kv heads): a quarter of the cache memory.
    "large-gqa": AttentionShape(
        frame_tokens=1024, chunk_frames=3, window_chunks=8, heads=12, kv_heads=4, head_dim=128
    ),
}
