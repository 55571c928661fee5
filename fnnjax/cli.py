"""The ``fnnjax`` command line.

Each subcommand lives in its own module, which provides ``register(subparsers)``: it adds its
parser(s) and sets ``func`` (``args -> exit status``). A user error (bad name, bad shape, missing
file) is reported as one line on stderr with exit status 2; set ``FNNJAX_DEBUG=1`` to get the
traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from fnnjax.errors import UsageError

__all__ = ["main", "UsageError"]

SUBCOMMAND_MODULES = ("verify.cli", "fnnjax._cli_train", "benchmarks.cli")
"""Modules that register subcommands, in the order they appear in ``--help``."""


def build_parser() -> argparse.ArgumentParser:
    import fnnjax

    parser = argparse.ArgumentParser(
        prog="fnnjax",
        description="The mathematics of fully connected feedforward networks in JAX: verify the "
        "formulas, check your own backprop, benchmark the differentiation methods, train.",
    )
    parser.add_argument("--version", action="version", version=f"fnnjax {fnnjax.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        if importlib.util.find_spec(name.rpartition(".")[0]) is None:
            continue
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, TypeError, FileNotFoundError) as err:
        if os.environ.get("FNNJAX_DEBUG"):
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"fnnjax {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fnnjax {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
