"""`bya model eval` end to end on a tiny untrained model: the report's fields and its Markdown table."""

from __future__ import annotations

import math

import torch

from distill.eval_generator import evaluate_checkpoint, markdown_table
from realtime.generator import Generator
from realtime.generator_checkpoint import save_generator
from realtime.generator_config import GENERATOR_CONFIGS


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
