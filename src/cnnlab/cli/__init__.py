"""The ``cnnlab`` command: a thin shell over library functions.

Each command group lives in its own module (``cli/analysis_cmds.py``, ``cli/data_cmds.py``,
``cli/train_cmds.py``, ``cli/show_cmds.py``), which exposes ``register(subparsers)`` and sets
``func`` on its parsers. Registration must not import torch: ``cnnlab summary`` stays fast.

Run ``cnnlab --help`` or ``python -m cnnlab --help``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from cnnlab.cli.help import HelpFormatter, command_names, unknown_command
from cnnlab.errors import CnnlabError

COMMAND_MODULES = ("analysis_cmds", "data_cmds", "train_cmds", "use_cmds", "show_cmds", "scale_cmds",
                   "explore_cmds", "sweep_cmds", "study_cmds")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnnlab",
        description="Describe, understand, train and inspect convolutional neural networks.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"cnnlab.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    mistyped = unknown_command(words[0], command_names(parser)) if words else None
    if mistyped:
        print(f"error: {mistyped}", file=sys.stderr)
        return 2
    try:
        args = parser.parse_args(words)
    except CnnlabError as exc:  # a bad option (see _Parser.error): one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CnnlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if getattr(exc, "hard_exit", False):  # a distributed peer failed: see distributed.PeerFailure
            from cnnlab.distributed import exit_process

            exit_process(exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RecursionError) as exc:  # a last net: each reader bounds its input first
        kind = "out of memory" if isinstance(exc, MemoryError) else "the input is nested too deeply"
        print(f"error: {kind} while running `{args.command}`; the input is too large or too deep for this "
              "machine (see the limits in README, 'Hostile and broken input')", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is a ``CnnlabError`` naming the command and the option (sub-parsers
    inherit the class), so it prints as ``error: cnnlab train: argument --seed: ...`` like any other."""

    def error(self, message: str) -> NoReturn:
        raise CnnlabError(f"{self.prog}: {message} (see `{self.prog} --help`)")


class _VersionAction(argparse.Action):
    """Like argparse's ``version`` action, but reads the package metadata only when asked."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"cnnlab {_version()}")
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cnnlab")
    except PackageNotFoundError:
        return "0+unknown"


if __name__ == "__main__":
    sys.exit(main())
