"""Model specs: a generator checkpoint names the autoencoder it was trained in, and loading holds it to it."""

from __future__ import annotations

import json

import pytest
import torch

from realtime.errors import CheckpointError
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder, save_autoencoder
from realtime.model.checkpoint import save_generator
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.default_model import AUTOENCODER, STUDENT, load_model
from realtime.model.generator import Generator
from realtime.model.spec import SHIPPED, SPECS, check_autoencoder, file_sha256, recorded_autoencoder


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_shipped_checkpoint_names_its_autoencoder_and_that_file_matches(name) -> None:
    spec = SPECS[name]
    ref = recorded_autoencoder(spec.generator_path)
    assert ref is not None, f"{spec.generator_path.with_suffix('.json')} names no autoencoder"
    assert ref["file"] == spec.autoencoder
    assert ref["sha256"] == file_sha256(spec.autoencoder_path)


def test_the_default_model_is_the_shipped_spec() -> None:
    assert SHIPPED.generator_path == STUDENT and SHIPPED.autoencoder_path == AUTOENCODER
    assert load_model().path == SHIPPED.generator_path


@pytest.fixture(scope="module")
def other_autoencoder(tmp_path_factory):
    """An autoencoder of the shipped preset (same channels and factor) with other weights."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("ae") / "other-ae.safetensors"
    return save_autoencoder(FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]), path)


def test_a_wrong_autoencoder_with_the_same_channels_is_refused(other_autoencoder) -> None:
    with pytest.raises(CheckpointError, match=r"trained with autoencoder ae-s\.safetensors"):
        load_model(STUDENT, other_autoencoder)


def test_a_saved_checkpoint_records_the_autoencoder_it_was_given(tmp_path, other_autoencoder) -> None:
    torch.manual_seed(0)
    path = save_generator(
        Generator(GENERATOR_CONFIGS["tiny"]), tmp_path / "g.safetensors", autoencoder=other_autoencoder
    )
    assert recorded_autoencoder(path) == {
        "file": "other-ae.safetensors",
        "sha256": file_sha256(other_autoencoder),
    }
    check_autoencoder(path, other_autoencoder)  # its own: accepted
    with pytest.raises(CheckpointError, match="pass --autoencoder"):
        check_autoencoder(path, SHIPPED.autoencoder_path)


def test_a_checkpoint_without_a_recorded_autoencoder_is_taken_as_it_is(tmp_path) -> None:
    path = save_generator(Generator(GENERATOR_CONFIGS["tiny"]), tmp_path / "g.safetensors")
    assert recorded_autoencoder(path) is None
    check_autoencoder(path, SHIPPED.autoencoder_path)


@pytest.mark.parametrize(
    "bad", ["ae-s.safetensors", {"file": "ae-s.safetensors"}, {"sha256": 3, "file": "x"}]
)
def test_a_malformed_autoencoder_entry_is_a_checkpoint_error(tmp_path, bad) -> None:
    path = save_generator(Generator(GENERATOR_CONFIGS["tiny"]), tmp_path / "g.safetensors")
    meta = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "autoencoder": bad}))
    with pytest.raises(CheckpointError, match="'autoencoder' must be"):
        check_autoencoder(path, SHIPPED.autoencoder_path)
