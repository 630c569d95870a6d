"""`bya model eval` end to end on a tiny untrained model: the report's fields and its Markdown table."""

from __future__ import annotations

import math

import torch

from distill.eval.generator import evaluate_checkpoint, load_checkpoint, markdown_table
from realtime.model.checkpoint import save_generator
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.generator import Generator
from realtime.stream.options import SamplingOptions

AE = "realtime/weights/ae-s.safetensors"


def test_a_report_carries_binding_leak_and_the_reference_held_baseline(tmp_path) -> None:
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.safetensors"
    save_generator(Generator(GENERATOR_CONFIGS["tiny"]), ckpt)
    rep = evaluate_checkpoint(
        load_checkpoint(str(ckpt), AE), 3.0, SamplingOptions(steps=1, window=0), seeds=(101,), characters=(2,)
    )
    clip = rep["clips"][0]
    assert clip["seed"] == 101 and clip["characters"] == 2
    for key in (
        "lip_sync_r_mean",
        "auc_own",
        "auc_other",
        "leak_ratio",
        "mask_iou",
        "mask_iou_reference_held",
    ):
        assert key in clip and key in rep["summary"]
    held = clip["mask_iou_reference_held"]
    assert 0.0 < held <= 1.0 and not math.isnan(held)  # the reference masks against the clip's own truth
    assert rep["rebinding"] and rep["autoencoder_ceiling"][0]["seed"] == 101
    table = markdown_table(rep)
    assert "| leak |" in table and "IoU, reference held" in table and "truth via AE" in table


def test_a_tracked_report_scores_the_track_it_was_given(tmp_path) -> None:
    """--track: the clip's choreography re-poses the reference each chunk; the report names it and scores
    the track's own masks against the truth (high: only the faces' motion is missing from it)."""
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.safetensors"
    save_generator(Generator(GENERATOR_CONFIGS["tiny"]), ckpt)
    rep = evaluate_checkpoint(
        load_checkpoint(str(ckpt), AE),
        2.0,
        SamplingOptions(steps=1, window=0),
        seeds=(105,),
        characters=(3,),
        track=True,
    )
    clip = rep["clips"][0]
    assert rep["pose_track"] and clip["mask_iou_track"] > 0.8
    assert clip["mask_iou_track"] >= clip["mask_iou_reference_held"]
    assert "IoU, track held" in markdown_table(rep)


def test_the_shipped_model_keeps_its_quality_floor_on_a_held_out_dialogue() -> None:
    """The shipped student at its shipped settings on held-out seed 101 (2 characters, 4 s): measured
    r 0.92, AUC own 1.00, AUC other 0.19 (8 s: r 0.90). The floors sit a margin below, so a regression
    of the weights, the sampler or the harness fails here rather than in a user's demo."""
    from distill.eval.generator import load_checkpoint
    from realtime.model.spec import SHIPPED
    from realtime.stream.options import SamplingOptions

    loaded = load_checkpoint(str(SHIPPED.generator_path), str(SHIPPED.autoencoder_path))
    options = SamplingOptions.defaults(loaded)
    assert options.steps == 1 and options.audio_guidance == 2.0  # the shipped setting, not a test's own
    clip = evaluate_checkpoint(loaded, 4.0, options, (101,), (2,))["clips"][0]
    assert clip["lip_sync_r_mean"] >= 0.80, clip
    assert clip["auc_own"] >= 0.90, clip  # each mouth moves with its own voice
    assert clip["auc_other"] <= 0.45, clip  # and not with the other's
