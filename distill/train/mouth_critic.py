"""A conditional critic of mouths, for the 1-step student (`bya train student --adv-weight W`).

A 1-step student trained by regression predicts the conditional mean of each chunk. Around a speaking
mouth that mean averages over what the audio leaves open (the viseme, the exact height, where the lips
sit inside the token), so the mouth comes out as a faint smudge whose height a viewer (and the mouth
reader) barely sees move. Regression plus an adversarial term is the classic cure (pix2pix; adversarial
diffusion distillation): the critic learns what a real mouth token looks like for this face and this
audio, and the student is pushed to commit to one such mouth instead of the average of all of them.

The critic is small and sees only mouth tokens: the chunk's latent patch at a mouth, the reference
frame's patch at the same place (which face, where it stands) and the audio the token's character
hears in that frame (the student's own audio features, detached). Hinge losses; the critic warms up
alone before the student feels it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Adversary:
    """The critic, its optimiser, the student's adversarial weight, and the critic's warm-up (steps)."""

    critic: MouthCritic
    opt: torch.optim.Optimizer
    weight: float
    warmup: int
    step: int = 0

    @property
    def live(self) -> bool:
        """Whether the student feels the critic yet (the critic first learns alone)."""
        return self.step >= self.warmup

    def state_dict(self) -> dict:
        return {"critic": self.critic.state_dict(), "opt": self.opt.state_dict(), "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["opt"])
        self.step = int(state["step"])


class MouthCritic(nn.Module):
    """(patch, reference patch, audio feature) per mouth token -> a realness logit."""

    def __init__(self, token_dim: int, audio_width: int, hidden: int = 256) -> None:
        super().__init__()
        self.audio = nn.Linear(audio_width, 64)
        self.net = nn.Sequential(
            nn.Linear(2 * token_dim + 64, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, patch: torch.Tensor, ref: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        # the critic judges the change a mouth makes to its face, and the face itself
        x = torch.cat((patch - ref, ref, self.audio(audio)), -1)
        return self.net(x).squeeze(-1)


def mouth_audio(
    model,
    seq: dict[str, torch.Tensor],
    r: int,
    idx: torch.Tensor,
    owner: torch.Tensor,
    frame: torch.Tensor,
) -> torch.Tensor:
    """(n, W): what conditions each of chunk r's mouth tokens (`distill.train.mouth_probe.mouth_owners`): its
    character's audio tokens for the token's frame, averaged (no gradient)."""
    cfg = model.cfg
    with torch.no_grad():
        audio = model.encode_audio(seq["mel"][:, r], seq["bind"])  # (B, K, C*A, W)
        audio = audio.unflatten(2, (cfg.chunk_frames, cfg.audio_tokens)).mean(3)  # (B, K, C, W)
    return audio[idx[:, 0], owner, frame]


def critic_loss(
    critic: MouthCritic, real: torch.Tensor, fake: torch.Tensor, ref: torch.Tensor, audio: torch.Tensor
) -> torch.Tensor:
    """Hinge loss of the critic: real mouths above +1, the student's below -1."""
    return (
        F.relu(1.0 - critic(real, ref, audio)).mean() + F.relu(1.0 + critic(fake.detach(), ref, audio)).mean()
    )


def student_adv_loss(
    critic: MouthCritic, fake: torch.Tensor, ref: torch.Tensor, audio: torch.Tensor
) -> torch.Tensor:
    """The student's hinge term: make the critic call its mouths real."""
    return -critic(fake, ref, audio).mean()
