"""Training: the autoencoder, the teacher, the student, the rig generator, the mouth reader, probe and critic."""

# The `bya` subcommands this wing provides; realtime.cli assembles every wing's table and imports a
# command's module only when that command runs.
COMMANDS: dict[
    str, tuple[str, str, str]
] = {  # "bya NAME" -> (help, "module:add_arguments", "module:command")
    "train teacher": (
        "train the flow-matching teacher (MM-DiT + Embedding Router); resumable",
        "distill.train.teacher:add_arguments",
        "distill.train.teacher:train_command",
    ),
    "train student": (
        "distil the teacher into the 1-step streaming student on its own rollouts; resumable",
        "distill.train.student:add_arguments",
        "distill.train.student:train_command",
    ),
    "train mouth-probe": (
        "train the latent lip-sync probe the student's --sync-weight reads mouths with (from a saved pool)",
        "distill.train.mouth_probe:add_arguments",
        "distill.train.mouth_probe:train_command",
    ),
    "train autoencoder": (
        "train the frame autoencoder the generator works in (world frames, mouth-weighted); resumable",
        "distill.train.autoencoder:add_arguments",
        "distill.train.autoencoder:train_command",
    ),
    "train rig": (
        "fine-tune the shipped student into the rig generator (rig fields that move any picture); resumable",
        "distill.train.rig:add_arguments",
        "distill.train.rig:train_command",
    ),
    "train mouth-reader": (
        "train the evaluation harness's pixel mouth reader on world clips",
        "distill.train.mouth_reader:add_arguments",
        "distill.train.mouth_reader:train_command",
    ),
}
