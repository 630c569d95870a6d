"""The machine a benchmark ran on, and where its figures came from, described the same way in every
benchmark's JSON: `describe_machine` names the CPU and load, `provenance` adds the command that ran and
the sha256 of every weight file loaded, so a figure can be traced to the exact model (tests/test_figures.py
checks the ones README.md quotes against the shipped model)."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
from collections.abc import Iterable
from pathlib import Path

PROVENANCE_KEY = "provenance"  # the one key every benchmark JSON keeps its provenance record under


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


def command_line(args: argparse.Namespace, name: str) -> str:
    """The `bya NAME ...` command that produced `args`: the argv realtime.cli.main parsed when it ran
    (args._argv), else one rebuilt from the parsed options (a caller that built the Namespace itself)."""
    argv = getattr(args, "_argv", None)
    if argv is not None:
        return shlex.join(["bya", *argv])
    words = ["bya", *name.split()]
    for key, value in sorted(vars(args).items()):
        if key.startswith("_") or key == "argv" or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            words.append(flag)
        elif isinstance(value, list | tuple):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def provenance(model_paths: Iterable[str | Path | None], command: str, threads: int | None = None) -> dict:
    """Where a benchmark's figures came from: the command that ran, {file name: sha256} of the weight
    files it loaded (generator checkpoints and autoencoders; None entries are skipped), the machine
    (`threads`: the model's threads, default torch's now) and the UTC date."""
    import torch

    from realtime.model.spec import file_sha256

    weights: dict[str, str] = {}
    for path in model_paths:
        if path is None:
            continue
        name = Path(path).name
        digest = file_sha256(path)
        if weights.get(name, digest) != digest:  # two files of one name: keep both, told apart by path
            name = str(path)
        weights[name] = digest
    return {
        "command": command,
        "weights": weights,
        "machine": describe_machine(torch.get_num_threads() if threads is None else threads),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
