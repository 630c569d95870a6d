"""SamplingOptions: checked values, one way from the command line for every command, and the number of
characters a session takes coming from its model's config (GeneratorConfig.max_characters)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.cli import _find_subparser, _load, build_parser
from realtime.errors import BindingError, BYAError, CharacterCountError
from realtime.media import SAMPLES_PER_FRAME
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.default_model import LoadedModel
from realtime.model.generator import Generator
from realtime.stream.options import SamplingOptions
from realtime.stream.session import StreamingGenerator


@pytest.fixture(scope="module")
def ae() -> FrameAutoencoder:
    return FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval()


def _generator(max_characters: int) -> Generator:
    torch.manual_seed(0)
    return Generator(dataclasses.replace(GENERATOR_CONFIGS["tiny"], max_characters=max_characters)).eval()


def _scene(n: int) -> tuple[np.ndarray, np.ndarray]:
    ref = np.random.default_rng(1).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    masks = np.zeros((n, 128, 128), np.float32)
    for k in range(n):
        masks[k, 40:90, 4 + 24 * k : 24 + 24 * k] = 1.0
    return ref, masks


def test_the_defaults_are_the_streaming_sessions() -> None:
    o = SamplingOptions()
    assert (o.steps, o.window, o.seed, o.isolation, o.audio_guidance, o.motion, o.noise_bank) == (
        1,
        None,
        0,
        "on",
        1.0,
        False,
        16,
    )
    assert o.isolate_listeners
    assert SamplingOptions(isolation=False).isolation == "off"  # a bool, as sessions took it
    assert SamplingOptions(isolation=True).isolation == "on"
    assert SamplingOptions(isolation="auto").isolate_listeners  # on until a room's warm-up decides
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.steps = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("steps", 0, "steps must be an integer in [1, 1000], got 0"),
        ("steps", 1.5, "steps must be an integer in [1, 1000], got 1.5"),
        ("steps", True, "steps must be an integer in [1, 1000], got True"),
        ("window", -1, "window (context chunks) must be None or an integer >= 0, got -1"),
        ("seed", -3, "seed must be an integer in [0, "),
        ("isolation", "maybe", "isolation must be one of auto, on, off or a bool, got 'maybe'"),
        ("audio_guidance", 0.5, "audio_guidance must be in [1, 4], got 0.5"),
        ("audio_guidance", float("nan"), "audio_guidance must be in [1, 4], got nan"),
        ("motion", "yes", "motion must be a bool, got 'yes'"),
        ("noise_bank", 300, "noise_bank must be an integer in [0, 256], got 300"),
    ],
)
def test_a_bad_value_is_refused_naming_it(field: str, value, message: str) -> None:
    kind = BindingError if field == "audio_guidance" else BYAError
    with pytest.raises(kind) as err:
        SamplingOptions(**{field: value})
    assert message in str(err.value)
    with pytest.raises(kind):  # a copy is checked again
        SamplingOptions().replace(**{field: value})


def _parse(argv: list[str]):
    parser = build_parser()
    known, _ = parser.parse_known_args(argv)
    _load(known._add_args)(_find_subparser(parser, known))
    return parser.parse_args(argv)


FLAGS = ["--steps", "3", "--listener-isolation", "off", "--audio-guidance", "1.5"]


def test_render_and_model_eval_build_the_same_options_from_the_same_flags(ae) -> None:
    loaded = LoadedModel(_generator(4), ae, 1, Path("tiny"), 0, audio_guidance=2.0)
    render = _parse(["render", "--audio", "a.wav", "--out", "o.mp4", *FLAGS])
    model_eval = _parse(["model", "eval", *FLAGS])
    a = SamplingOptions.from_args(render, loaded)
    assert a == SamplingOptions.from_args(model_eval, loaded)
    assert a == SamplingOptions(steps=3, window=0, seed=0, isolation="off", audio_guidance=1.5)
    # a flag not given: the loaded model's own setting
    bare = SamplingOptions.from_args(_parse(["render", "--audio", "a.wav", "--out", "o.mp4"]), loaded)
    assert bare == SamplingOptions(steps=1, window=0, isolation="auto", audio_guidance=2.0)
    assert bare == SamplingOptions.from_args(_parse(["model", "eval"]), loaded)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "--steps must be in [1, 100], got 0"),
        (["--steps", "101"], "--steps must be in [1, 100], got 101"),
        (["--audio-guidance", "5"], "--audio-guidance must be in [1, 4], got 5"),
        (["--seed", "-1"], "--seed must be in [0, 2^32), got -1"),
    ],
)
def test_bad_flags_are_refused_before_a_model_loads(argv: list[str], message: str) -> None:
    args = _parse(["render", "--audio", "a.wav", "--out", "o.mp4", *argv])
    with pytest.raises(BYAError) as err:
        SamplingOptions.from_args(args)
    assert message in str(err.value)


def test_a_two_character_model_refuses_a_three_character_session(ae) -> None:
    g = _generator(2)
    ref, masks = _scene(3)
    with pytest.raises(CharacterCountError, match=r"3 characters, but this model's router has 2 character"):
        StreamingGenerator(g, ae, ref, masks)
    with pytest.raises(CharacterCountError, match=r"streams must be 1-2 \(this model's max_characters\)"):
        StreamingGenerator(g, ae, ref, masks[:2], streams=3, bind=np.ones((3, 2), np.float32))
    StreamingGenerator(g, ae, ref, masks[:2])  # two are fine


def test_a_five_character_model_streams_five_characters(ae) -> None:
    """The router's character axis is sized by the config, not by a constant: nothing else to change."""
    g = _generator(5)
    ref, masks = _scene(5)
    s = StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1, window=0, noise_bank=0))
    assert s.bind.shape == (1, 5, 5) and s.tail.shape[0] == 5
    audio = (np.random.default_rng(2).standard_normal((5, 4 * SAMPLES_PER_FRAME)) * 0.1).astype(np.float32)
    chunks = s.push(audio, decode=False) + s.flush(decode=False)
    m = g.cfg.mask_size
    assert chunks and all(ch.masks.shape == (g.cfg.chunk_frames, 5, m, m) for ch in chunks)
    assert all(torch.isfinite(ch.latents).all() for ch in chunks)
