"""Benchmarks of the engine (`bya bench ...`): each prints a table and writes JSON. They may reach into
`distill/` and `clients/`; nothing in the engine imports them."""

# The `bya` subcommands this wing provides; realtime.cli assembles every wing's table and imports a
# command's module only when that command runs.
COMMANDS: dict[
    str, tuple[str, str, str]
] = {  # "bya NAME" -> (help, "module:add_arguments", "module:command")
    "bench model": (
        "time the generator's denoiser step and the decoder against the real-time budget",
        "realtime.bench.generator:add_arguments",
        "realtime.bench.generator:bench_command",
    ),
    "bench gpu": (
        "the generator's per-chunk step on the GPU at each preset and batch, Triton kernels vs PyTorch: "
        "time, real-time sessions, and the difference between the two paths",
        "realtime.bench.gpu:add_arguments",
        "realtime.bench.gpu:bench_command",
    ),
    "bench stream": (
        "sustained real-time streaming with the shipped student: fps, latency, stages; teacher as baseline",
        "realtime.bench.stream:add_arguments",
        "realtime.bench.stream:bench_command",
    ),
    "bench drift": (
        "a 10-minute stream through the rolling cache: background PSNR and colour drift per minute",
        "realtime.bench.drift:add_arguments",
        "realtime.bench.drift:bench_command",
    ),
    "bench pictures": (
        "lip sync on pictures judged by a face mesh on the output: AUC own/other voice, PSNR outside faces",
        "realtime.bench.pictures:add_arguments",
        "realtime.bench.pictures:bench_command",
    ),
    "bench binding": (
        "does a listener stay still while another character speaks? mouth leak, listener isolation on/off",
        "realtime.bench.binding:add_arguments",
        "realtime.bench.binding:bench_command",
    ),
    "bench batching": (
        "whether batching two rooms' model work is faster than one worker per room, on this machine",
        "realtime.bench.batching:add_arguments",
        "realtime.bench.batching:bench_command",
    ),
    "bench contention": (
        "bya render's frames/s alone and beside 1 and 2 busy processes, against a fair share of the cores",
        "realtime.bench.contention:add_arguments",
        "realtime.bench.contention:bench_command",
    ),
    "bench all": (
        "every benchmark README.md quotes, with the shipped model at its own settings, each in its own "
        "process: JSON with provenance into --out, then a summary table (--quick: under ~20 min)",
        "realtime.bench.all:add_arguments",
        "realtime.bench.all:bench_command",
    ),
}
