"""`bya model eval` end to end on a tiny untrained model: the report's fields and its Markdown table."""

from __future__ import annotations

import math

import torch

from distill.eval.generator import evaluate_checkpoint, markdown_table
from realtime.model.checkpoint import save_generator
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.generator import Generator


def test_a_report_carries_binding_leak_and_the_reference_held_baseline(tmp_path) -> None:
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.safetensors"
    save_generator(Generator(GENERATOR_CONFIGS["tiny"]), ckpt)
    rep = evaluate_checkpoint(
        str(ckpt), "realtime/weights/ae-s.safetensors", 3.0, 1, seeds=(101,), characters=(2,), window=0
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
        str(ckpt),
        "realtime/weights/ae-s.safetensors",
        2.0,
        1,
        seeds=(105,),
        characters=(3,),
        window=0,
        track=True,
    )
    clip = rep["clips"][0]
    assert rep["pose_track"] and clip["mask_iou_track"] > 0.8
    assert clip["mask_iou_track"] >= clip["mask_iou_reference_held"]
    assert "IoU, track held" in markdown_table(rep)
