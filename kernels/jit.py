"""Late `triton.jit`: kernels are compiled or interpreted according to TRITON_INTERPRET at launch time.

Triton decides between compiling and interpreting when `@triton.jit` runs, i.e. at import. Tests that
flip TRITON_INTERPRET=1 after some module already imported the kernels would then launch compiled
kernels on CPU tensors; decorating on first launch, once per mode, makes the import order irrelevant.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

_TRUTHY = {"1", "true", "on", "yes"}


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in _TRUTHY


def triton_available() -> bool:
    """True when the triton package imports (it may still lack a GPU driver)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


class LazyKernel:
    """A Triton kernel function decorated on first launch, once for each mode (compiled / interpreted).

    `configs` ((meta-parameters, num_warps, num_stages) triples) and `key`, when given, wrap the compiled
    kernel in `triton.autotune`; interpreted launches
    never autotune (every config would run ~1000x slower) and must pass their block sizes explicitly.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        configs: Sequence[tuple[dict[str, int], int, int]] | None = None,
        key: Sequence[str] = (),
    ) -> None:
        self.fn = fn
        self.configs = configs
        self.key = list(key)
        self._kernels: dict[bool, Any] = {}

    @property
    def autotuned(self) -> bool:
        """Whether the next launch goes through the autotuner (so block sizes must not be passed)."""
        return self.configs is not None and not interpreting()

    def get(self) -> Any:
        """The decorated kernel for the current mode."""
        mode = interpreting()
        kernel = self._kernels.get(mode)
        if kernel is None:
            import triton

            kernel = triton.jit(self.fn)
            if self.configs is not None and not mode:
                configs = [triton.Config(dict(kw), num_warps=w, num_stages=s) for kw, w, s in self.configs]
                kernel = triton.autotune(configs=configs, key=self.key)(kernel)
            self._kernels[mode] = kernel
        return kernel

    def __getitem__(self, grid: Any) -> Any:
        return self.get()[grid]
