"""The `bya` command line: one entry point, subcommands looked up in a table and imported lazily.

Lazy imports keep `bya --help` instant and let each subcommand live beside what it drives. Every
error caused by the user's input (a BYAError) ends as one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
from collections.abc import Callable, Sequence

from realtime import __version__
from realtime.errors import BYAError

# name -> (help, "module:add_arguments", "module:command")
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "render a dialogue scene with the shipped default and score it (the first five minutes)",
        "realtime.demo:add_demo_arguments",
        "realtime.demo:demo_command",
    ),
    "render": (
        "generate a scene from one audio file per character: MP4 with the mixed audio + JSON of boxes/timings",
        "realtime.render:add_arguments",
        "realtime.render:render_command",
    ),
    "serve": (
        "serve a live room: WHIP speakers per character or one diarized mix, WHEP viewers, re-binding, recording",
        "realtime.serve_command:add_arguments",
        "realtime.serve_command:serve_command",
    ),
    "data synth": (
        "generate world clips into dataset shards",
        "distill.synth:add_synth_arguments",
        "distill.synth:synth_command",
    ),
    "data inspect": (
        "check a dataset's manifest and every shard's checksum",
        "distill.inspect:add_inspect_arguments",
        "distill.inspect:inspect_command",
    ),
    "eval": (
        "score a video of the world against its ground truth (lip sync, binding, masks, fidelity)",
        "distill.harness:add_eval_arguments",
        "distill.harness:eval_command",
    ),
    "bench harness": (
        "what the evaluation harness itself loses: mouth tracker error, and the truth's scores read at true "
        "and tracked mouths, raw and through the autoencoder",
        "distill.bench_harness:add_arguments",
        "distill.bench_harness:bench_command",
    ),
    "model eval": (
        "generate held-out world dialogues with a generator checkpoint and score them",
        "distill.eval_generator:add_arguments",
        "distill.eval_generator:eval_model_command",
    ),
    "train teacher": (
        "train the flow-matching teacher (MM-DiT + Embedding Router); resumable",
        "distill.train_teacher:add_arguments",
        "distill.train_teacher:train_command",
    ),
    "bench model": (
        "time the generator's denoiser step and the decoder against the real-time budget",
        "realtime.bench_generator:add_arguments",
        "realtime.bench_generator:bench_command",
    ),
    "bench gpu": (
        "the generator's per-chunk step on the GPU at each preset and batch, Triton kernels vs PyTorch: "
        "time, real-time sessions, and the difference between the two paths",
        "realtime.bench_gpu:add_arguments",
        "realtime.bench_gpu:bench_command",
    ),
    "bench stream": (
        "sustained real-time streaming with the shipped student: fps, latency, stages; teacher as baseline",
        "realtime.bench_stream:add_arguments",
        "realtime.bench_stream:bench_command",
    ),
    "bench drift": (
        "a 10-minute stream through the rolling cache: background PSNR and colour drift per minute",
        "realtime.bench_drift:add_arguments",
        "realtime.bench_drift:bench_command",
    ),
    "bench latency": (
        "glass-to-glass latency of bya serve over loopback (WHIP speech onset -> moving mouth over WHEP)",
        "clients.bench_latency:add_arguments",
        "clients.bench_latency:bench_command",
    ),
    "bench load": (
        "rooms this machine holds at >= 24 fps through bya serve (loopback), and the 503 for one more",
        "clients.bench_load:add_arguments",
        "clients.bench_load:bench_command",
    ),
    "bench soak": (
        "a long 2-character dialogue through bya serve: memory, fps, latency and A/V offset over time",
        "clients.bench_soak:add_arguments",
        "clients.bench_soak:bench_command",
    ),
    "bench binding": (
        "does a listener stay still while another character speaks? mouth leak, listener isolation on/off",
        "realtime.bench_binding:add_arguments",
        "realtime.bench_binding:bench_command",
    ),
    "bench batching": (
        "whether batching two rooms' model work is faster than one worker per room, on this machine",
        "realtime.bench_batching:add_arguments",
        "realtime.bench_batching:bench_command",
    ),
    "train student": (
        "distil the teacher into the 1-step streaming student on its own rollouts; resumable",
        "distill.train_student:add_arguments",
        "distill.train_student:train_command",
    ),
    "train mouth-probe": (
        "train the latent lip-sync probe the student's --sync-weight reads mouths with (from a saved pool)",
        "distill.mouth_probe:add_arguments",
        "distill.mouth_probe:train_command",
    ),
    "bench data": (
        "measure world-generation throughput at 128 and 256 px",
        "distill.bench_data:add_bench_arguments",
        "distill.bench_data:bench_command",
    ),
}


def _load(ref: str) -> Callable:
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bya", description="Bind-Your-Avatar Live: several talking characters, one scene, live voices."
    )
    parser.add_argument("--version", action="version", version=f"bya {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, (help_text, add_args, command) in COMMANDS.items():
        words = name.split()
        if len(words) == 1:
            sub = top.add_parser(words[0], help=help_text, description=help_text)
        else:
            if words[0] not in groups:
                group = top.add_parser(words[0], help=f"{words[0]} commands")
                groups[words[0]] = group.add_subparsers(
                    dest="subcommand", metavar="SUBCOMMAND", required=True
                )
            sub = groups[words[0]].add_parser(words[1], help=help_text, description=help_text)
        sub.set_defaults(_add_args=add_args, _command=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # A quiet first pass finds the subcommand; its own arguments are attached only then (lazy imports).
    probe = [a for a in argv if a not in ("-h", "--help")]
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            known, _ = parser.parse_known_args(probe)
    except SystemExit:
        known = None  # no valid subcommand: the real parse below reports it
    if known is not None and hasattr(known, "_add_args"):
        _load(known._add_args)(_find_subparser(parser, known))
    args = parser.parse_args(argv)
    try:
        return int(_load(args._command)(args) or 0)
    except BYAError as exc:
        print(f"bya: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bya: interrupted", file=sys.stderr)
        return 130


def _find_subparser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = action.choices[args.command]
    if getattr(args, "subcommand", None):
        inner = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
        sub = inner.choices[args.subcommand]
    return sub


if __name__ == "__main__":
    sys.exit(main())
