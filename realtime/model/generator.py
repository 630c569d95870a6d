"""The generator: an MM-DiT over latent video chunks, with audio cross-attention routed per character.

Two streams with their own weights (MM-DiT): the context stream encodes the reference frame (which sees
itself) and each clean chunk (which sees [reference | itself]); the noisy stream (the chunk being
generated) sees [reference | window of clean chunks | itself]. A clean chunk's keys are stored unrotated
and rotated to its age at use, so a rolling cache (realtime.stream.session) reproduces this forward exactly.
The noisy stream also attends to each character's audio tokens, gated by the Embedding Router's masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kernels import routed_audio_attention, streaming_attention
from realtime.model.audio_encoder import AudioEncoder
from realtime.model.config import GeneratorConfig
from realtime.model.rope import apply_rope, frame_positions, rope_angles
from realtime.model.router import RouterHead, token_weights


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) flow times in [0, 1] -> (B, dim) sinusoidal features."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    ang = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat((ang.cos(), ang.sin()), -1)


class RMSNorm(nn.Module):
    """RMS norm over the last axis (as nn.RMSNorm with eps=None), in plain ops so ONNX export takes it."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eps = torch.finfo(x.dtype).eps
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * self.weight


class StreamLayers(nn.Module):
    """One stream's weights in one block: adaLN, qkv, output projection, MLP."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        w = cfg.width
        self.ada = nn.Linear(w, 6 * w)
        self.norm1 = nn.LayerNorm(w, elementwise_affine=False)
        self.qkv = nn.Linear(w, 3 * w)
        self.q_norm = RMSNorm(cfg.head_dim)
        self.k_norm = RMSNorm(cfg.head_dim)
        self.proj = nn.Linear(w, w)
        self.norm2 = nn.LayerNorm(w, elementwise_affine=False)
        hidden = int(w * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(w, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, w))


class MMDiTBlock(nn.Module):
    """One block: each stream's attention and MLP, routed audio cross-attention on the noisy stream.

    The attention itself is done by the Generator, because who sees whom differs between the reference
    (itself), a clean chunk ([reference | itself]) and the noisy chunk ([reference | window | itself]).
    """

    def __init__(self, cfg: GeneratorConfig, router: bool) -> None:
        super().__init__()
        self.cfg = cfg
        self.ctx = StreamLayers(cfg)
        self.gen = StreamLayers(cfg)
        w = cfg.width
        self.audio_norm = nn.LayerNorm(w)
        self.audio_q = nn.Linear(w, w)
        self.audio_kv = nn.Linear(w, 2 * w)
        self.audio_out = nn.Linear(w, w)
        self.router = RouterHead(cfg) if router else None

    def attn_in(self, s: StreamLayers, x: torch.Tensor, cond: torch.Tensor) -> tuple:
        """-> adaLN modulation and q, k, v (B, H, L, D) before rotary positions (k is cached unrotated)."""
        b, l, _ = x.shape
        mod = s.ada(F.silu(cond)).chunk(6, -1)
        h = modulate(s.norm1(x), mod[0], mod[1])
        q, k, v = s.qkv(h).reshape(b, l, 3, self.cfg.heads, -1).permute(2, 0, 3, 1, 4)  # 3x (B, H, L, D)
        # autocast may leave the norms in fp32 while v is bf16; the kernels want one dtype
        return mod, s.q_norm(q).to(v.dtype), s.k_norm(k).to(v.dtype), v

    def ctx_out(self, x: torch.Tensor, att: torch.Tensor, mod: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Context stream after attention -> (state after the attention residual, block output)."""
        mid = x + mod[2][:, None] * self.ctx.proj(att.transpose(1, 2).flatten(2))
        return mid, mid + mod[5][:, None] * self.ctx.mlp(modulate(self.ctx.norm2(mid), mod[3], mod[4]))

    def gen_out(
        self,
        xg: torch.Tensor,  # (B, Lg, W) noisy stream
        att: torch.Tensor,  # (B, H, Lg, D) its attention output
        mod: tuple,
        ref_mid: torch.Tensor,  # (B, F, W) the reference's context state in this block (router identities)
        audio: torch.Tensor,  # (B, K, T*A, W) audio tokens per character
        masks: torch.Tensor | None,  # (B, T, K, M, M) the latest router prediction (None before the first)
        external: torch.Tensor | None,  # (B, T, K, M, M) masks from outside, mixed in with weight `mix`
        mix: float,
        ref_masks: torch.Tensor,  # (B, K, M, M) characters' masks in the reference frame
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """-> (block output, this block's mask logits or None, the masks later blocks route with)."""
        cfg = self.cfg
        xg = xg + mod[2][:, None] * self.gen.proj(att.transpose(1, 2).flatten(2))
        logits = None
        if self.router is not None:
            logits = self.router(xg, ref_mid, ref_masks)
            masks = torch.sigmoid(logits)
        if masks is not None:  # blocks before the first router layer have nothing to route with
            route = masks
            if external is not None:
                route = external if mix >= 1.0 else mix * external + (1.0 - mix) * masks
            b, lg, w = xg.shape
            k = audio.shape[1]
            q = self.audio_q(self.audio_norm(xg)).reshape(b, lg, cfg.heads, -1).transpose(1, 2)
            kv = (
                self.audio_kv(audio).reshape(b, k, audio.shape[2], 2, cfg.heads, -1).permute(3, 0, 1, 4, 2, 5)
            )
            weights = token_weights(route, cfg.mask_sub)  # (B, Lg, K)
            kv = kv.to(q.dtype)
            routed = routed_audio_attention(
                q, kv[0], kv[1], weights.to(q.dtype), frame_tokens=cfg.frame_tokens
            )
            xg = xg + self.audio_out(routed.transpose(1, 2).reshape(b, lg, w))
        xg = xg + mod[5][:, None] * self.gen.mlp(modulate(self.gen.norm2(xg), mod[3], mod[4]))
        return xg, logits, masks


@dataclass
class SinkCache:
    """The reference frame, encoded once per session: per block its rotated keys, values and router state."""

    keys: list[torch.Tensor]  # per block (B, H, F, D), rotated at time 0 (the sink never moves)
    values: list[torch.Tensor]  # per block (B, H, F, D)
    mids: list[torch.Tensor]  # per block (B, F, W): the reference's state after attention (router identities)

    def expand(self, n: int) -> SinkCache:
        """Each batch row repeated n times in a row (one copy per context chunk)."""
        rep = lambda xs: [x.repeat_interleave(n, 0) for x in xs]  # noqa: E731
        return SinkCache(rep(self.keys), rep(self.values), rep(self.mids))


@dataclass
class ChunkCache:
    """Clean chunks, encoded once each: per block unrotated keys and values (rotated at use)."""

    keys: list[torch.Tensor]  # per block (B, n, H, C*F, D), oldest chunk first
    values: list[torch.Tensor]  # per block (B, n, H, C*F, D)

    @property
    def chunks(self) -> int:
        return self.keys[0].shape[1] if self.keys else 0


@dataclass
class GeneratorOutput:
    """What one denoiser call returns."""

    velocity: torch.Tensor  # (B, T, C, h, w) predicted flow velocity (noise - clean) of the chunk
    mask_logits: list[torch.Tensor]  # per router layer, (B, T, K, M, M)
    masks: torch.Tensor  # (B, T, K, M, M) the router's final prediction (sigmoid of the last logits)


class Generator(nn.Module):
    """The MM-DiT denoiser with the audio encoder and the Embedding Router."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.patch_in = nn.Linear(cfg.token_dim, w)
        self.base_in = nn.Linear(cfg.token_dim, w)  # the clean frame the residual is added to
        self.pos = nn.Parameter(torch.zeros(cfg.frame_tokens, w))  # absolute cue for the router
        self.clean = nn.Parameter(torch.zeros(w))  # the context stream's conditioning
        self.time_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.audio = AudioEncoder(cfg)
        self.blocks = nn.ModuleList(MMDiTBlock(cfg, i in cfg.router_layers) for i in range(cfg.depth))
        self.final_norm = nn.LayerNorm(w, elementwise_affine=False)
        self.final_ada = nn.Linear(w, 2 * w)
        self.patch_out = nn.Linear(w, cfg.token_dim)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT-style: Xavier linears, adaLN gates and the output projections at zero (blocks start as identity)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.pos, std=0.02)
        for blk in self.blocks:
            for s in (blk.ctx, blk.gen):
                nn.init.zeros_(s.ada.weight)
                nn.init.zeros_(s.ada.bias)
            nn.init.zeros_(blk.audio_out.weight)
        for m in (self.final_ada, self.patch_out, self.base_in):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    # -- token layout ---------------------------------------------------------------------------
    def patchify(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T, C, h, w) latents -> (B, T*F, C*p*p) tokens, row-major per frame."""
        b, t, c, h, w = z.shape
        p = self.cfg.patch
        z = z.reshape(b, t, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4, 6)
        return z.reshape(b, t * (h // p) * (w // p), c * p * p)

    def unpatchify(self, x: torch.Tensor, t: int) -> torch.Tensor:
        cfg = self.cfg
        g, p = cfg.grid, cfg.patch
        b = x.shape[0]
        x = x.reshape(b, t, g, g, cfg.latent_channels, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return x.reshape(b, t, cfg.latent_channels, g * p, g * p)

    # -- positions: a clean chunk is always encoded at the chunk's times, and re-rotated to its age at use
    def chunk_times(self) -> torch.Tensor:
        """(C,) the times of the chunk being generated (and of a clean chunk while it is encoded)."""
        cfg = self.cfg
        return torch.arange(cfg.chunk_frames, dtype=torch.float32) + 1 + cfg.window_chunks * cfg.chunk_frames

    def angles(self, times: torch.Tensor) -> torch.Tensor:
        """(T,) frame times -> (T*F, D/2) rotary angles of those frames' tokens."""
        return rope_angles(frame_positions(times, self.cfg.grid), self.cfg.head_dim)

    def context_times(self, chunks: int) -> torch.Tensor:
        """(chunks*C,) times of the newest `chunks` clean chunks, right-aligned before the generated chunk."""
        window = self.cfg.window_chunks * self.cfg.chunk_frames
        return torch.arange(window - chunks * self.cfg.chunk_frames, window, dtype=torch.float32) + 1

    # -- the three encoders: reference (once per session), clean chunk (once per chunk), noisy chunk
    def encode_reference(self, reference: torch.Tensor) -> SinkCache:
        """(B, C, h, w) reference latent -> the attention sink every later call attends to."""
        b = reference.shape[0]
        x = self.patch_in(self.patchify(reference[:, None])) + self.pos
        cond = self.clean.expand(b, -1)
        angles = self.angles(torch.zeros(1)).to(x.device)
        keys, values, mids = [], [], []
        for blk in self.blocks:
            mod, q, k, v = blk.attn_in(blk.ctx, x, cond)
            k = apply_rope(k, angles)
            att = streaming_attention(apply_rope(q, angles), k, v)
            mid, x = blk.ctx_out(x, att, mod)
            keys.append(k)
            values.append(v)
            mids.append(mid)
        return SinkCache(keys, values, mids)

    def encode_chunks(self, latents: torch.Tensor, sink: SinkCache) -> ChunkCache:
        """(B, n, C, c, h, w) clean chunks -> their cache entries; each chunk sees [reference | itself].

        A chunk never sees another clean chunk and is always encoded at the same times, so its keys and
        values do not depend on where in the window it later sits: the cache is exact, not approximate.
        """
        b, n = latents.shape[:2]
        if n == 0:
            return ChunkCache([], [])
        x = self.patch_in(self.patchify(latents.flatten(0, 1))) + self.pos.repeat(self.cfg.chunk_frames, 1)
        cond = self.clean.expand(b * n, -1)
        angles = self.angles(self.chunk_times()).to(x.device)
        rep = sink.expand(n)
        keys, values = [], []
        for i, blk in enumerate(self.blocks):
            mod, q, k, v = blk.attn_in(blk.ctx, x, cond)
            att = streaming_attention(
                apply_rope(q, angles),
                torch.cat((rep.keys[i], apply_rope(k, angles)), 2),
                torch.cat((rep.values[i], v), 2),
            )
            _, x = blk.ctx_out(x, att, mod)
            keys.append(k.unflatten(0, (b, n)))
            values.append(v.unflatten(0, (b, n)))
        return ChunkCache(keys, values)

    def window_keys(self, chunks: ChunkCache, sink: SinkCache) -> tuple[list, list]:
        """Per block, the keys and values the noisy chunk attends to before itself: [sink | window]."""
        n = chunks.chunks
        if n == 0:
            return sink.keys, sink.values
        angles = self.angles(self.context_times(n)).to(sink.keys[0].device)
        keys, values = [], []
        for sk, sv, ck, cv in zip(sink.keys, sink.values, chunks.keys, chunks.values, strict=True):
            ck = apply_rope(ck.transpose(1, 2).flatten(2, 3), angles)  # (B, H, n*C*F, D), rotated to its age
            keys.append(torch.cat((sk, ck), 2))
            values.append(torch.cat((sv, cv.transpose(1, 2).flatten(2, 3)), 2))
        return keys, values

    def denoise(
        self,
        noisy: torch.Tensor,  # (B, T, C, h, w) the chunk at flow time t, in target space
        t: torch.Tensor,  # (B,) flow time in [0, 1]; 1 = pure noise
        base: torch.Tensor,  # (B, C, h, w) the clean frame the residual is measured from
        sink: SinkCache,
        keys: list[torch.Tensor],  # per block (B, H, Lw, D): [sink | window], from window_keys
        values: list[torch.Tensor],
        audio: torch.Tensor,  # (B, K, T*A, W) audio tokens per character (encode_audio)
        ref_masks: torch.Tensor,  # (B, K, M, M)
        external: torch.Tensor | None = None,
        mix: float = 1.0,
    ) -> GeneratorOutput:
        """One denoiser call for the chunk; its queries see [sink | window | itself]."""
        cfg = self.cfg
        tg = noisy.shape[1]
        base = base[:, None].expand(-1, tg, -1, -1, -1)
        xg = self.patch_in(self.patchify(noisy)) + self.base_in(self.patchify(base)) + self.pos.repeat(tg, 1)
        cond = self.time_mlp(timestep_embedding(t, cfg.width))
        angles = self.angles(self.chunk_times()).to(xg.device)
        logits_all: list[torch.Tensor] = []
        masks = None
        for i, blk in enumerate(self.blocks):
            mod, q, k, v = blk.attn_in(blk.gen, xg, cond)
            att = streaming_attention(
                apply_rope(q, angles),
                torch.cat((keys[i], apply_rope(k, angles)), 2),
                torch.cat((values[i], v), 2),
            )
            xg, logits, masks = blk.gen_out(
                xg, att, mod, sink.mids[i], audio, masks, external, mix, ref_masks
            )
            if logits is not None:
                logits_all.append(logits)
        shift, scale = self.final_ada(F.silu(cond)).chunk(2, -1)
        out = self.patch_out(modulate(self.final_norm(xg), shift, scale))
        return GeneratorOutput(self.unpatchify(out, tg), logits_all, masks)

    def encode_audio(self, mel: torch.Tensor, bind: torch.Tensor) -> torch.Tensor:
        """mel (B, S, T, window, n_mels) per stream, bind (B, S, K) -> (B, K, T*A, W) tokens per character."""
        streams = self.audio(mel)  # (B, S, T, A, W)
        per_char = torch.einsum("bstaw,bsk->bktaw", streams, bind.to(streams.dtype))
        return per_char.flatten(2, 3)

    def base(self, reference: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w): the clean frame a chunk's residual is measured from (last context frame or reference)."""
        return context[:, -1] if context.shape[1] else reference

    def to_target(self, latents: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """(B, T, C, h, w) clean chunk latents -> the space the flow runs in."""
        s = self.cfg.residual_scale
        return (latents - base[:, None]) / s if s > 0 else latents

    def from_target(self, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        s = self.cfg.residual_scale
        return base[:, None] + s * x if s > 0 else x

    # -- teacher-forced: the whole window from scratch (training, offline sampling) ----------------------
    def forward(
        self,
        noisy: torch.Tensor,  # (B, T, C, h, w) the chunk at flow time t, in target space (see to_target)
        t: torch.Tensor,  # (B,) flow time in [0, 1]; 1 = pure noise
        reference: torch.Tensor,  # (B, C, h, w) clean latent of the reference frame
        context: torch.Tensor,  # (B, Tc, C, h, w) clean latents of the previous chunks (Tc may be 0)
        mel: torch.Tensor,  # (B, S, T, window, n_mels) each audio stream's windows for the chunk's frames
        bind: torch.Tensor,  # (B, S, K) audio-to-character matrix: stream s drives character k
        ref_masks: torch.Tensor,  # (B, K, M, M) where each character is in the reference frame (0 = absent)
        external: torch.Tensor | None = None,  # (B, T, K, M, M) masks from outside (tracker, boxes, truth)
        mix: float = 1.0,  # weight of `external` against the router's prediction (1: external only)
    ) -> GeneratorOutput:
        """Encode the reference and the context, then denoise: what StreamingGenerator does with a cache."""
        cfg = self.cfg
        tg = noisy.shape[1]
        tc = context.shape[1]
        if tg != cfg.chunk_frames or tc % cfg.chunk_frames or tc > cfg.window_chunks * cfg.chunk_frames:
            raise ValueError(
                f"need {cfg.chunk_frames} noisy frames and whole context chunks (at most {cfg.window_chunks}), "
                f"got {tg} and {tc} frames"
            )
        sink = self.encode_reference(reference)
        chunks = self.encode_chunks(context.unflatten(1, (tc // cfg.chunk_frames, cfg.chunk_frames)), sink)
        keys, values = self.window_keys(chunks, sink)
        audio = self.encode_audio(mel, bind)
        return self.denoise(
            noisy, t, self.base(reference, context), sink, keys, values, audio, ref_masks, external, mix
        )
