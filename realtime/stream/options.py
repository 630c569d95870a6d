"""How a session samples: one frozen `SamplingOptions`, built once and carried to every session.

Every command that generates (`bya render`, `bya serve`, `bya demo`, `bya model eval`, the benches)
builds it the same way, `SamplingOptions.from_args(args, loaded)`: a flag given on the command line wins,
else the loaded checkpoint's default. `StreamingGenerator`, the offline sampler and the chunk scheduler take
it instead of a row of keyword arguments. Limits that depend on the model (the window) are checked where
the model is known (the session).
"""

from __future__ import annotations

import argparse
import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any

from realtime.audio.binding import AUDIO_GUIDANCE_RANGE, ISOLATION, guidance_from_args
from realtime.errors import BindingError, BYAError

NOISE_BANK = 16  # noises a reference-only 1-step session draws each chunk's from
MAX_STEPS = 1000  # what a session accepts (1000 Euler steps is already far past any useful setting)
CLI_MAX_STEPS = 100  # what a command line accepts: past ~100 steps a chunk takes minutes on a CPU
SEED_LIMIT = 2**32  # command-line seeds are 32-bit: the same seed names the same scene everywhere


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BYAError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True)
class SamplingOptions:
    """Steps, context, noise and guidance of a session's sampling (the defaults: the streaming student's)."""

    steps: int = 1  # Euler steps per chunk: the distilled student needs 1 (the teacher 8, offline)
    window: int | None = None  # clean chunks of context kept; None: all the model's window_chunks
    seed: int = 0  # seed of the session's noise: the same options give the same frames
    isolation: str = "on"  # listener isolation: on, off, or auto (a Room's warm-up may turn it off);
    # on by default because a listener moved by another's voice is the artefact it removes. True/False
    # are accepted and stored as "on"/"off".
    audio_guidance: float = 1.0  # speakers' regions move g times as far from the voiceless pass; 1: off
    motion: bool = False  # characters follow the scene's choreography; off: a still scene costs nothing
    noise_bank: int = NOISE_BANK  # noises a reference-only 1-step session draws from (their voiceless
    # passes are computed once); 16 keeps the noise varied at a one-off priming cost; 0: fresh noise

    def __post_init__(self) -> None:
        if isinstance(self.isolation, bool):
            object.__setattr__(self, "isolation", "on" if self.isolation else "off")
        self.check()

    def check(self) -> None:
        """Raise BYAError (BindingError for the guidance) naming any value out of range."""
        _check_int("steps", self.steps, 1, MAX_STEPS)
        if self.window is not None and (
            isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 0
        ):
            raise BYAError(f"window (context chunks) must be None or an integer >= 0, got {self.window!r}")
        _check_int("seed", self.seed, 0, 2**63 - 1)  # what torch.Generator.manual_seed takes
        if self.isolation not in ISOLATION:
            raise BYAError(
                f"isolation must be one of {', '.join(ISOLATION)} or a bool, got {self.isolation!r}"
            )
        lo, hi = AUDIO_GUIDANCE_RANGE
        g = self.audio_guidance
        if isinstance(g, bool) or not isinstance(g, numbers.Real) or not lo <= g <= hi:  # also false for NaN
            raise BindingError(f"audio_guidance must be in [{lo:g}, {hi:g}], got {g!r}")
        if not isinstance(self.motion, bool):
            raise BYAError(f"motion must be a bool, got {self.motion!r}")
        _check_int("noise_bank", self.noise_bank, 0, 256)

    @property
    def isolate_listeners(self) -> bool:
        """Whether a session isolates listeners: "auto" is on until a Room's warm-up says otherwise."""
        return self.isolation != "off"

    def replace(self, **changes: Any) -> SamplingOptions:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def defaults(cls, loaded: Any = None, **overrides: Any) -> SamplingOptions:
        """The loaded model's own settings (steps, window, isolation, guidance; a LoadedModel), or the class
        defaults without one, with `overrides` on top (None values are ignored: "not given")."""
        base: dict[str, Any] = {}
        if loaded is not None:
            base = {
                "steps": loaded.steps,
                "window": loaded.window,
                "isolation": loaded.isolation,
                "audio_guidance": float(loaded.audio_guidance),
            }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    @classmethod
    def from_args(cls, args: argparse.Namespace, loaded: Any = None) -> SamplingOptions:
        """The options a command line asks for: --steps, --window, --seed, --listener-isolation,
        --audio-guidance, --motion where the command has them, else the loaded model's defaults. With no
        model yet (loaded=None) it checks the flags before anything loads. BYAError naming the flag."""
        steps = getattr(args, "steps", None)
        if steps is not None and not 1 <= steps <= CLI_MAX_STEPS:
            raise BYAError(f"--steps must be in [1, {CLI_MAX_STEPS}], got {steps}")
        window = getattr(args, "window", None)
        if window is not None and window < 0:
            raise BYAError(f"--window must be >= 0, got {window}")
        seed = getattr(args, "seed", None)
        if seed is not None and not 0 <= seed < SEED_LIMIT:
            raise BYAError(f"--seed must be in [0, 2^32), got {seed}")
        guidance = guidance_from_args(args, None)  # BindingError naming --audio-guidance
        return cls.defaults(
            loaded,
            steps=steps,
            window=window,
            seed=seed,
            isolation=getattr(args, "listener_isolation", None),
            audio_guidance=guidance,
            motion=getattr(args, "motion", None),
        )
