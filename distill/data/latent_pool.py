"""Training data for the generator: world clips turned into latents, router-resolution masks and log-mel.

Clips are rendered in worker processes (the world is CPU work), encoded by the frame autoencoder on the
training device, and held in a pool; batches are random chunks with their clean context, the reference
frame (each clip's frame 0, the stream's first frame), every character's audio windows and true masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from distill.data.shards import clip_seed
from distill.data.worker_pool import process_pool
from distill.world.clip import clip_scene, make_clip
from distill.world.dialogue import synthesize_dialogue
from realtime.media import MAX_CHARACTERS, VIDEO_FPS
from realtime.model.audio_features import SILENCE_DB, log_mel
from realtime.model.autoencoder import FrameAutoencoder, frames_to_tensor
from realtime.model.config import GeneratorConfig
from realtime.scene.cartoon.render import render_standing

POOL_KEYS = ("z", "m", "w", "mel_padded", "track_z", "track_m", "open")  # what save/subset carry
BANK_KEYS = ("bank_mel", "bank_open", "bank_n")  # the dialogue bank (add_dialogues), saved with the pool
DIALOGUE_BANK_SEED = 7_500_000  # dataset seed of the bank's dialogues: not the pool's, not evaluation's
MOUTH_TOKEN_WEIGHT = 4.0  # loss weight of tokens covering a mouth: ~3% of tokens carry all of lip sync


@dataclass
class ClipArrays:
    """One clip reduced to what training needs (CPU, compact dtypes)."""

    seed: int
    frames: np.ndarray  # (T, H, W, 3) uint8
    masks: np.ndarray  # (T, K, M, M) float16 at router resolution, K = MAX_CHARACTERS (zero-padded)
    mel: np.ndarray  # (K, T*4, n_mels) float16 log-mel of each character's track (silence for padding)
    mouth: np.ndarray  # (T, F) float16 per-token loss weights (MOUTH_TOKEN_WEIGHT on mouths, else 1)
    n_characters: int


def is_mouth_token(weights: torch.Tensor) -> torch.Tensor:
    """Bool mask of the tokens a pool's per-token weights mark as mouths (MOUTH_TOKEN_WEIGHT, others 1)."""
    return weights > 1


def character_mel(audio: np.ndarray, cfg: GeneratorConfig, frames: int) -> np.ndarray:
    """(n, S) per-character audio -> (K, frames * mel_per_frame, n_mels) float16 log-mel, silence for the
    characters past n (K = MAX_CHARACTERS)."""
    full = np.zeros((MAX_CHARACTERS, audio.shape[1]), np.float32)
    full[: audio.shape[0]] = audio
    return log_mel(full, cfg.n_mels)[:, : frames * cfg.mel_per_frame].numpy().astype(np.float16)


def _bank_dialogue(args: tuple[int, int, float, GeneratorConfig, int]) -> tuple[int, np.ndarray, np.ndarray]:
    j, n, seconds, cfg, frames = args
    d = synthesize_dialogue(n, seconds=seconds, seed=clip_seed(DIALOGUE_BANK_SEED, j))
    openness = np.zeros((frames, MAX_CHARACTERS), np.float16)
    openness[: d.openness.shape[1], :n] = d.openness[:, :frames].T
    return j, character_mel(d.audio, cfg, frames), openness


def mouth_token_weights(mouth_boxes: np.ndarray, size: int, grid: int) -> np.ndarray:
    """(T, N, 4) pixel boxes -> (T, grid*grid) weights: MOUTH_TOKEN_WEIGHT where a token touches a mouth."""
    cell = size / grid
    t = mouth_boxes.shape[0]
    w = np.ones((t, grid, grid), np.float32)
    lo = np.clip(np.floor(mouth_boxes[..., :2] / cell), 0, grid - 1).astype(int)
    hi = np.clip(np.ceil(mouth_boxes[..., 2:] / cell), 1, grid).astype(int)
    for i in range(t):
        for (x0, y0), (x1, y1) in zip(lo[i], hi[i], strict=True):
            w[i, y0:y1, x0:x1] = MOUTH_TOKEN_WEIGHT
    return w.reshape(t, -1).astype(np.float16)


def prepare_clip(seed: int, cfg: GeneratorConfig, seconds: float) -> ClipArrays:
    """Render one world clip and reduce it (runs in worker processes)."""
    clip = make_clip(seed, size=cfg.frame_size, seconds=seconds)
    n, t = clip.n_characters, clip.n_frames
    k, m = MAX_CHARACTERS, cfg.mask_size
    masks = np.zeros((t, k, m, m), np.float16)
    pooled = F.adaptive_avg_pool2d(torch.from_numpy(clip.render.masks), m).numpy()
    masks[:, :n] = pooled
    mel = character_mel(clip.dialogue.audio, cfg, t)
    mouth = mouth_token_weights(clip.render.mouth_boxes, cfg.frame_size, cfg.grid)
    return ClipArrays(seed, clip.render.frames, masks, mel, mouth, n)


def prepare_track(seed: int, cfg: GeneratorConfig, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The pose track of `make_clip(seed)`: its scene rendered where the choreography puts each character
    (realtime.scene.cartoon.render.standing_plan: drift, sway, idle bob, faces at rest, nothing from the dialogue).
    Returns (T, H, W, 3) uint8 frames and (T, K, M, M) float16 router-resolution masks."""
    scene = clip_scene(seed)
    n = len(scene["characters"])
    track = render_standing(scene, frames, cfg.frame_size)
    masks = np.zeros((frames, MAX_CHARACTERS, cfg.mask_size, cfg.mask_size), np.float16)
    masks[:, :n] = F.adaptive_avg_pool2d(torch.from_numpy(track.masks), cfg.mask_size).numpy()
    return track.frames, masks


def _prepare_track(args: tuple[int, GeneratorConfig, int]) -> tuple[int, np.ndarray, np.ndarray]:
    return (args[0], *prepare_track(*args))


def _worker_init() -> None:
    torch.set_num_threads(1)


def _prepare(args: tuple[int, GeneratorConfig, float]) -> ClipArrays:
    return prepare_clip(*args)


class LatentPool:
    """Encoded clips on the training device, and the batches drawn from them."""

    def __init__(self, cfg: GeneratorConfig, ae: FrameAutoencoder, device: str) -> None:
        self.cfg, self.ae, self.device = cfg, ae, torch.device(device)
        self.latents: list[torch.Tensor] = []  # (T, C, h, w)
        self.masks: list[torch.Tensor] = []
        self.mel: list[torch.Tensor] = []
        self.mouth: list[torch.Tensor] = []
        self.seeds: list[int] = []

    def __len__(self) -> int:
        return len(self.seeds)  # clips added; still right after finalize() moves them into stacked tensors

    @torch.no_grad()
    def _encode(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 frames -> (T, C, h, w) float16 latents, 64 frames at a time."""
        x = frames_to_tensor(frames, self.device)
        return torch.cat([self.ae.encode(x[i : i + 64]) for i in range(0, len(x), 64)]).half()

    def add(self, c: ClipArrays) -> None:
        self.latents.append(self._encode(c.frames))
        self.masks.append(torch.from_numpy(c.masks).to(self.device))
        self.mel.append(torch.from_numpy(c.mel).to(self.device))
        self.mouth.append(torch.from_numpy(c.mouth).to(self.device))
        self.seeds.append(c.seed)

    def fill(self, seeds: list[int], seconds: float, workers: int) -> None:
        """Render `seeds` (in `workers` processes when > 1) and add them."""
        jobs = [(s, self.cfg, seconds) for s in seeds]
        if workers <= 1:
            for j in jobs:
                self.add(_prepare(j))
            return
        with process_pool(workers, _worker_init) as pool:
            for c in pool.imap_unordered(_prepare, jobs, chunksize=2):
                self.add(c)

    def add_tracks(self, workers: int = 1) -> None:
        """Render and encode every clip's pose track (after finalize/load): `sequence(ref_track=k)`
        then takes each run's reference from it."""
        jobs = [(s, self.cfg, self.z.shape[1]) for s in self.seeds]
        if workers <= 1:
            done = [_prepare_track(j) for j in jobs]
        else:
            with process_pool(workers, _worker_init) as pool:
                done = list(pool.imap_unordered(_prepare_track, jobs, chunksize=2))
        made = {s: (f, m) for s, f, m in done}
        zs, ms = [], []
        for s in self.seeds:
            frames, masks = made[s]
            zs.append(self._encode(frames))
            ms.append(torch.from_numpy(masks).to(self.device))
        self.track_z, self.track_m = torch.stack(zs), torch.stack(ms)  # (N, T, C, h, w), (N, T, K, M, M)

    def add_openness(self) -> None:
        """Every clip's true mouth openness per frame and character, (N, T, K) in [0, 1] (zero for absent
        characters), after finalize/load. Only the dialogue is synthesized again (no render): ~0.2 s a clip.
        `sequence` then returns it per chunk ("open")."""
        n, t = self.z.shape[:2]
        out = torch.zeros(n, t, MAX_CHARACTERS)
        for j, s in enumerate(self.seeds):
            k = len(clip_scene(s)["characters"])
            d = synthesize_dialogue(k, seconds=t / VIDEO_FPS, seed=s)
            got = torch.from_numpy(d.openness[:, :t].T.copy())  # (T', k)
            out[j, : got.shape[0], :k] = got
        self.open = out.half().to(self.device)

    def characters(self) -> torch.Tensor:
        """(N,) how many characters each clip has (those whose mask is ever non-zero)."""
        if not hasattr(self, "_characters"):
            present = torch.stack([(self.m[j].float().amax(dim=(0, 2, 3)) > 0) for j in range(len(self.m))])
            self._characters = present.sum(-1)
        return self._characters

    def add_dialogues(self, count: int, workers: int = 1) -> None:
        """A bank of `count` fresh dialogues (audio only: log-mel and true openness, no render), for
        1-4 characters in turn; `sequence(swap_audio=p)` then gives a share of its runs one of these in
        place of the clip's own audio. Nothing else of the clip changes (the world's choreography does not
        depend on what is said), only what the mouths should do, which the truth frames no longer show."""
        t = self.z.shape[1]
        jobs = [(j, 1 + j % MAX_CHARACTERS, t / VIDEO_FPS, self.cfg, t) for j in range(count)]
        if workers <= 1:
            done = [_bank_dialogue(j) for j in jobs]
        else:
            with process_pool(workers, _worker_init) as pool:
                done = list(pool.imap_unordered(_bank_dialogue, jobs, chunksize=8))
        done.sort(key=lambda x: x[0])
        past, look = self.cfg.audio_past_ms // 10, self.cfg.audio_lookahead_ms // 10
        mel = torch.from_numpy(np.stack([m for _, m, _ in done])).float()
        self.bank_mel = F.pad(mel, (0, 0, past, look), value=SILENCE_DB).half().to(self.device)
        self.bank_open = torch.from_numpy(np.stack([o for _, _, o in done])).to(self.device)
        self.bank_n = torch.tensor([n for _, n, _, _, _ in jobs], device=self.device)

    def subset(self, index: list[int]) -> LatentPool:
        """A pool view holding only clips `index` (e.g. a held-out split); tensors are indexed copies."""
        sub = LatentPool(self.cfg, self.ae, str(self.device))
        sub.seeds = [self.seeds[i] for i in index]
        ix = torch.as_tensor(index, device=self.device)
        for k in POOL_KEYS:
            if hasattr(self, k):
                setattr(sub, k, getattr(self, k)[ix])
        return sub

    def finalize(self) -> None:
        """Stack the pool into single tensors (every clip has the same length) for vectorised batches."""
        cfg = self.cfg
        self.z = torch.stack(self.latents)  # (N, T, C, h, w)
        self.m = torch.stack(self.masks)  # (N, T, K, M, M)
        self.w = torch.stack(self.mouth)  # (N, T, F)
        past, look = cfg.audio_past_ms // 10, cfg.audio_lookahead_ms // 10
        mel = torch.stack(self.mel).float()  # (N, K, T*4, mels)
        self.mel_padded = F.pad(mel, (0, 0, past, look), value=SILENCE_DB).half()
        self.latents, self.masks, self.mouth, self.mel = [], [], [], []

    def save(self, path: str | Path) -> None:
        """Write the finalized pool (so several runs share one rendering)."""
        keys = POOL_KEYS + BANK_KEYS
        torch.save(
            {"seeds": self.seeds, **{k: getattr(self, k).cpu() for k in keys if hasattr(self, k)}}, path
        )

    def load(self, path: str | Path) -> None:
        """Read a pool written by `save` (made with the same config and autoencoder)."""
        state = torch.load(path, map_location=self.device)
        self.seeds = list(state["seeds"])
        self.z, self.m, self.w, self.mel_padded = (state[k] for k in ("z", "m", "w", "mel_padded"))
        if "track_z" in state:
            self.track_z, self.track_m = state["track_z"], state["track_m"]
        for k in ("open", *BANK_KEYS):
            if k in state:
                setattr(self, k, state[k])

    def batch(self, size: int, context_chunks: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A batch of `size` chunks, each with `context_chunks` clean chunks before it."""
        cfg, dev = self.cfg, self.device
        c, tc = cfg.chunk_frames, context_chunks * cfg.chunk_frames
        n, t = self.z.shape[:2]
        k = MAX_CHARACTERS
        i = torch.from_numpy(rng.integers(0, n, size)).to(dev)
        start = torch.from_numpy(rng.integers(tc, t - c + 1, size)).to(dev)
        frames = start[:, None] + torch.arange(c, device=dev)  # (B, c)
        ctx = start[:, None] + torch.arange(-tc, 0, device=dev)  # (B, tc)
        # stream s carries character perm[s]'s track and drives character perm[s]
        perm = torch.from_numpy(np.argsort(rng.random((size, k)), axis=1)).to(dev)  # (B, K)
        bind = F.one_hot(perm, k).float()  # (B, S, K)
        mel_idx = (
            start[:, None, None] * cfg.mel_per_frame
            + torch.arange(c, device=dev)[None, :, None] * cfg.mel_per_frame
            + torch.arange(cfg.audio_window, device=dev)[None, None]
        )  # (B, c, window) into the padded mel
        mel = self.mel_padded[
            i[:, None, None, None], perm[:, :, None, None], mel_idx[:, None]
        ]  # (B, S, c, win, mels)
        return {
            "x0": self.z[i[:, None], frames].float(),
            "ref": self.z[i, 0].float(),
            "ctx": self.z[i[:, None], ctx].float(),
            "mel": mel.float(),
            "bind": bind,
            "ref_masks": self.m[i, 0].float(),
            "masks": self.m[i[:, None], frames].float(),
            "mouth": self.w[i[:, None], frames].flatten(1).float(),
        }

    def sequence(
        self,
        size: int,
        chunks: int,
        context_chunks: int,
        rng: np.random.Generator,
        from_start: bool = False,
        ref_near: int = 0,
        ref_track: int = -1,
        swap_audio: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        """`chunks` consecutive chunks per sample (for rollouts) after `context_chunks` clean ones.

        from_start: the run begins at the clip's first frame with no context, as a session does.
        ref_near: with no context, the reference is one of the `ref_near` frames before the run instead of
        the clip's first frame. A reference-only student cannot know where the world's random drift took
        a character since frame 0; trained on far-away chunks it learns the blurred average pose. A near
        reference teaches what it will be asked: this pose, this character, mouth from the audio.
        ref_track >= 0: with no context, the reference is the clip's pose track (add_tracks) at 0 to
        `ref_track` frames before the run: the character exactly where it stands, face at rest. What is
        left to generate is the face the audio makes, so nothing is blurred over poses it cannot know.
        Per-chunk entries gain a chunk axis after the batch: x0 (B, R, C, c, h, w), mel (B, R, S, C, win,
        mels), masks (B, R, C, K, M, M), mouth (B, R, C*F), and with `add_openness` open (B, R, C, K).
        swap_audio: the share of samples whose audio (and openness) is a bank dialogue for as many
        characters (`add_dialogues`) instead of the clip's own; "swapped" (B,) says which. Their frames
        still show the clip's mouths, so only the openness can supervise their mouths.
        """
        cfg, dev = self.cfg, self.device
        c = cfg.chunk_frames
        tc = 0 if from_start else context_chunks * c
        n, t = self.z.shape[:2]
        k = MAX_CHARACTERS
        span = chunks * c
        if tc + span > t:
            raise ValueError(
                f"a run of {chunks} chunks after {context_chunks} does not fit clips of {t} frames"
            )
        i = torch.from_numpy(rng.integers(0, n, size)).to(dev)
        if from_start:
            start = torch.zeros(size, dtype=torch.long, device=dev)
        else:
            start = torch.from_numpy(rng.integers(tc, t - span + 1, size)).to(dev)
        frames = start[:, None] + torch.arange(span, device=dev)  # (B, R*C)
        ref = torch.zeros(size, dtype=torch.long, device=dev)
        ref_z, ref_m = self.z, self.m
        if ref_track >= 0 and tc == 0:
            if not hasattr(self, "track_z"):
                raise ValueError("ref_track needs the pool's pose tracks: call add_tracks() first")
            back = torch.from_numpy(rng.integers(0, ref_track + 1, size)).to(dev)
            ref, ref_z, ref_m = (start - back).clamp_min(0), self.track_z, self.track_m
        elif ref_near > 0 and tc == 0 and not from_start:
            back = torch.from_numpy(rng.integers(1, ref_near + 1, size)).to(dev)
            ref = (start - back).clamp_min(0)
        ctx = start[:, None] + torch.arange(-tc, 0, device=dev)
        perm = torch.from_numpy(np.argsort(rng.random((size, k)), axis=1)).to(dev)
        bind = F.one_hot(perm, k).float()
        mel_idx = (
            frames[:, :, None] * cfg.mel_per_frame + torch.arange(cfg.audio_window, device=dev)[None, None]
        )  # (B, R*C, window)
        mel = self.mel_padded[
            i[:, None, None, None], perm[:, :, None, None], mel_idx[:, None]
        ]  # (B,S,RC,w,m)
        openness = self.open[i[:, None], frames].float() if hasattr(self, "open") else None  # (B, RC, K)
        extra = {}
        if swap_audio > 0:
            if not hasattr(self, "bank_mel") or openness is None:
                raise ValueError("swap_audio needs add_openness() and add_dialogues() first")
            swap = torch.from_numpy(rng.random(size) < swap_audio).to(dev)
            n_chars = self.characters()[i]
            pick = torch.zeros(size, dtype=torch.long, device=dev)
            for n in n_chars[swap].unique().tolist():
                have = (self.bank_n == n).nonzero()[:, 0]
                rows = (swap & (n_chars == n)).nonzero()[:, 0]
                pick[rows] = have[torch.from_numpy(rng.integers(0, len(have), len(rows))).to(dev)]
            alt = self.bank_mel[pick[:, None, None, None], perm[:, :, None, None], mel_idx[:, None]]
            mel = torch.where(swap.view(-1, 1, 1, 1, 1), alt, mel)
            alt_open = self.bank_open[pick[:, None], frames].float()
            openness = torch.where(swap[:, None, None], alt_open, openness)
            extra["swapped"] = swap
        mel = mel.unflatten(2, (chunks, c)).transpose(1, 2)  # (B, R, S, C, win, mels)
        if openness is not None:  # (B, R, C, K): each character's true openness per frame
            extra["open"] = openness.unflatten(1, (chunks, c))
        return {
            **extra,
            "x0": self.z[i[:, None], frames].float().unflatten(1, (chunks, c)),
            "ref": ref_z[i, ref].float(),
            "ctx": self.z[i[:, None], ctx].float(),
            "mel": mel.float(),
            "bind": bind,
            "ref_masks": ref_m[i, ref].float(),
            "masks": self.m[i[:, None], frames].float().unflatten(1, (chunks, c)),
            "mouth": self.w[i[:, None], frames].float().unflatten(1, (chunks, c)).flatten(2),
        }
