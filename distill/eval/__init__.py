"""Evaluation: the harness (lip sync, binding, motion), metrics, mouth reader and tracker, and
`bya model eval`."""

# The `bya` subcommands this wing provides; realtime.cli assembles every wing's table and imports a
# command's module only when that command runs.
COMMANDS: dict[
    str, tuple[str, str, str]
] = {  # "bya NAME" -> (help, "module:add_arguments", "module:command")
    "eval": (
        "score a video of the world against its ground truth (lip sync, binding, masks, fidelity)",
        "distill.eval.harness:add_eval_arguments",
        "distill.eval.harness:eval_command",
    ),
    "bench harness": (
        "what the evaluation harness itself loses: mouth tracker error, and the truth's scores read at true "
        "and tracked mouths, raw and through the autoencoder",
        "distill.eval.bench_harness:add_arguments",
        "distill.eval.bench_harness:bench_command",
    ),
    "model eval": (
        "generate held-out world dialogues with a generator checkpoint and score them",
        "distill.eval.generator:add_arguments",
        "distill.eval.generator:eval_model_command",
    ),
}
