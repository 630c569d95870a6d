"""Datasets: shards of world clips, the window loader, the latent pool the generator trains on and
the process pools that make them."""

# The `bya` subcommands this wing provides; realtime.cli assembles every wing's table and imports a
# command's module only when that command runs.
COMMANDS: dict[
    str, tuple[str, str, str]
] = {  # "bya NAME" -> (help, "module:add_arguments", "module:command")
    "data synth": (
        "generate world clips into dataset shards",
        "distill.data.synth:add_synth_arguments",
        "distill.data.synth:synth_command",
    ),
    "data inspect": (
        "check a dataset's manifest and every shard's checksum",
        "distill.data.inspect:add_inspect_arguments",
        "distill.data.inspect:inspect_command",
    ),
    "bench data": (
        "measure world-generation throughput at 128 and 256 px",
        "distill.data.bench_synth:add_bench_arguments",
        "distill.data.bench_synth:bench_command",
    ),
}
