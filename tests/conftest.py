"""Shared pytest set-up: the gpu marker skips without CUDA; tests run on 2 threads like the target CPU."""

from __future__ import annotations

import os

# Triton binds its standard library (tl.zeros, tl.cdiv, ...) to compiled or interpreted mode when
# triton.language is first imported, and torch imports it lazily (an optimizer step is enough). Without
# CUDA the only way to run a kernel is the interpreter, so choose it before anything imports Triton;
# kernels.jit.LazyKernel still reads the variable at each launch, so tests can unset it locally.
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
