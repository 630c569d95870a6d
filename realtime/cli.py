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
from realtime.engine.threads import wait_passively
from realtime.errors import BYAError

# The wings whose `COMMANDS` tables make up `bya`, in the order `bya --help` lists them. Each table maps
# "bya NAME" to (help, "module:add_arguments", "module:command"); the modules are imported only when run.
WINGS = (
    "realtime.outputs",
    "realtime.server",
    "realtime.bench",
    "clients",
    "distill.data",
    "distill.eval",
    "distill.train",
)
OWN_COMMANDS: dict[
    str, tuple[str, str, str]
] = {  # "bya NAME" -> (help, "module:add_arguments", "module:command")
    "demo": (
        "render a dialogue scene with the shipped default and score it (the first five minutes)",
        "realtime.demo:add_demo_arguments",
        "realtime.demo:demo_command",
    ),
}


def all_commands() -> dict[str, tuple[str, str, str]]:
    """Every subcommand: this module's own, then each wing's, in WINGS order."""
    table = dict(OWN_COMMANDS)
    for wing in WINGS:
        for name, entry in importlib.import_module(wing).COMMANDS.items():
            if name in table:
                raise RuntimeError(f"bya {name} is registered twice ({wing})")
            table[name] = entry
    return table


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
    for name, (help_text, add_args, command) in all_commands().items():
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
    wait_passively()  # before anything imports torch: its OpenMP pool reads the policy once, at load
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
    args._argv = tuple(argv)  # what ran, for the provenance record a benchmark's JSON keeps
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
