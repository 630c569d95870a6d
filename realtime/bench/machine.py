"""The machine a benchmark ran on, described the same way in every benchmark's JSON."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe_machine(threads: int) -> dict:
    """CPU model, cores, the model's threads, library versions and the load average right now."""
    import torch

    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    model = next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }
