"""The generator: an MM-DiT over latent video chunks, with audio cross-attention routed per character.

Tokens: a context stream ([reference frame | clean context chunks]) and a noisy stream (the chunk being
generated), each with its own weights, attending jointly under the chunk-causal rule (a chunk sees the
reference, earlier chunks and itself), so the same weights stream with a rolling cache. The noisy stream
also attends to each character's audio tokens, gated by the Embedding Router's masks (realtime.router).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kernels import chunk_causal_attention, routed_audio_attention
from realtime.audio_encoder import AudioEncoder
from realtime.generator_config import GeneratorConfig
from realtime.rope import apply_rope, frame_positions, rope_angles
from realtime.router import RouterHead, token_weights


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) flow times in [0, 1] -> (B, dim) sinusoidal features."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    ang = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat((ang.cos(), ang.sin()), -1)


class StreamLayers(nn.Module):
    """One stream's weights in one block: adaLN, qkv, output projection, MLP."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        w = cfg.width
        self.ada = nn.Linear(w, 6 * w)
        self.norm1 = nn.LayerNorm(w, elementwise_affine=False)
        self.qkv = nn.Linear(w, 3 * w)
        self.q_norm = nn.RMSNorm(cfg.head_dim)
        self.k_norm = nn.RMSNorm(cfg.head_dim)
        self.proj = nn.Linear(w, w)
        self.norm2 = nn.LayerNorm(w, elementwise_affine=False)
        hidden = int(w * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(w, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, w))


class MMDiTBlock(nn.Module):
    """Joint attention of the two streams, routed audio cross-attention on the noisy one, MLPs."""

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

    def _qkv(self, s: StreamLayers, x: torch.Tensor, mod: tuple, angles: torch.Tensor) -> tuple:
        b, l, _ = x.shape
        h = modulate(s.norm1(x), mod[0], mod[1])
        q, k, v = s.qkv(h).reshape(b, l, 3, self.cfg.heads, -1).permute(2, 0, 3, 1, 4)  # 3x (B, H, L, D)
        # autocast may leave the norms in fp32 while v is bf16; the kernels want one dtype
        return apply_rope(s.q_norm(q).to(v.dtype), angles), apply_rope(s.k_norm(k).to(v.dtype), angles), v

    def forward(
        self,
        xc: torch.Tensor,  # (B, Lc, W) context stream: reference + clean chunks
        xg: torch.Tensor,  # (B, Lg, W) noisy stream: the chunk being generated
        cond_c: torch.Tensor,  # (B, W) context conditioning
        cond_g: torch.Tensor,  # (B, W) flow-time conditioning
        angles: torch.Tensor,  # (Lc + Lg, D/2) rotary angles
        audio: torch.Tensor,  # (B, K, T*A, W) audio tokens per character
        masks: torch.Tensor | None,  # (B, T, K, M, M) the latest router prediction (None before the first)
        external: torch.Tensor | None,  # (B, T, K, M, M) masks from outside, mixed in with weight `mix`
        mix: float,
        ref_masks: torch.Tensor,  # (B, K, M, M) characters' masks in the reference frame
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        cfg = self.cfg
        lc = xc.shape[1]
        mc = self.ctx.ada(F.silu(cond_c)).chunk(6, -1)
        mg = self.gen.ada(F.silu(cond_g)).chunk(6, -1)
        qc, kc, vc = self._qkv(self.ctx, xc, mc, angles[:lc])
        qg, kg, vg = self._qkv(self.gen, xg, mg, angles[lc:])
        att = chunk_causal_attention(
            torch.cat((qc, qg), 2),
            torch.cat((kc, kg), 2),
            torch.cat((vc, vg), 2),
            ref_len=cfg.frame_tokens,
            chunk_len=cfg.chunk_frames * cfg.frame_tokens,
        )  # (B, H, L, D)
        att = att.transpose(1, 2).flatten(2)
        xc = xc + mc[2][:, None] * self.ctx.proj(att[:, :lc])
        xg = xg + mg[2][:, None] * self.gen.proj(att[:, lc:])

        logits = None
        if self.router is not None:
            logits = self.router(xg, xc[:, : cfg.frame_tokens], ref_masks)
            masks = torch.sigmoid(logits)
        if masks is not None:  # blocks before the first router layer have nothing to route with
            if external is not None:
                masks = external if mix >= 1.0 else mix * external + (1.0 - mix) * masks
            b, lg, w = xg.shape
            k = audio.shape[1]
            q = self.audio_q(self.audio_norm(xg)).reshape(b, lg, cfg.heads, -1).transpose(1, 2)
            kv = (
                self.audio_kv(audio).reshape(b, k, audio.shape[2], 2, cfg.heads, -1).permute(3, 0, 1, 4, 2, 5)
            )
            weights = token_weights(masks, cfg.mask_sub)  # (B, Lg, K)
            kv = kv.to(q.dtype)
            routed = routed_audio_attention(
                q, kv[0], kv[1], weights.to(q.dtype), frame_tokens=cfg.frame_tokens
            )
            xg = xg + self.audio_out(routed.transpose(1, 2).reshape(b, lg, w))

        xc = xc + mc[5][:, None] * self.ctx.mlp(modulate(self.ctx.norm2(xc), mc[3], mc[4]))
        xg = xg + mg[5][:, None] * self.gen.mlp(modulate(self.gen.norm2(xg), mg[3], mg[4]))
        return xc, xg, logits


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

    def positions(self, context_frames: int) -> torch.Tensor:
        """Rotary angles for [reference | context frames | chunk]; the chunk's times never change."""
        cfg = self.cfg
        window = cfg.window_chunks * cfg.chunk_frames
        ctx_times = torch.arange(window - context_frames, window) + 1
        gen_times = torch.arange(cfg.chunk_frames) + 1 + window
        times = torch.cat((torch.zeros(1), ctx_times.float(), gen_times.float()))
        return rope_angles(frame_positions(times, cfg.grid), cfg.head_dim)

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

    # -- the denoiser -----------------------------------------------------------------------------
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
        cfg = self.cfg
        b, tg = noisy.shape[:2]
        tc = context.shape[1]
        if tg != cfg.chunk_frames or tc % cfg.chunk_frames or tc > cfg.window_chunks * cfg.chunk_frames:
            raise ValueError(
                f"need {cfg.chunk_frames} noisy frames and whole context chunks (at most {cfg.window_chunks}), "
                f"got {tg} and {tc} frames"
            )
        ctx_lat = torch.cat((reference[:, None], context), 1)
        xc = self.patch_in(self.patchify(ctx_lat)) + self.pos.repeat(1 + tc, 1)
        base = self.base(reference, context)[:, None].expand(-1, tg, -1, -1, -1)
        xg = self.patch_in(self.patchify(noisy)) + self.base_in(self.patchify(base)) + self.pos.repeat(tg, 1)
        cond_g = self.time_mlp(timestep_embedding(t, cfg.width))
        cond_c = self.clean.expand(b, -1)
        angles = self.positions(tc).to(xc.device)

        streams = self.audio(mel)  # (B, S, T, A, W)
        per_char = torch.einsum("bstaw,bsk->bktaw", streams, bind.to(streams.dtype))
        audio = per_char.flatten(2, 3)  # (B, K, T*A, W)
        logits_all: list[torch.Tensor] = []
        masks = None
        for blk in self.blocks:
            xc, xg, logits = blk(xc, xg, cond_c, cond_g, angles, audio, masks, external, mix, ref_masks)
            if logits is not None:
                logits_all.append(logits)
                masks = torch.sigmoid(logits)
        shift, scale = self.final_ada(F.silu(cond_g)).chunk(2, -1)
        out = self.patch_out(modulate(self.final_norm(xg), shift, scale))
        return GeneratorOutput(self.unpatchify(out, tg), logits_all, masks)
