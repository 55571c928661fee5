"""The ``fnnjax`` command line.

Each subcommand lives in its own module, which provides ``register(subparsers)``: it adds its
parser(s) and sets ``func`` (``args -> exit status``).

Exit statuses: 0 success; 1 the command ran and found a failure (a failed check, a non-finite
loss); 2 the user's input or environment (a wrong option, a missing or damaged file, a full disk:
:class:`fnnjax.errors.UsageError`, :class:`fnnjax.errors.InputError`, ``OSError``), reported as
one line on stderr; 3 an internal error (any other exception: a bug in fnnjax), reported as one
line that says so. ``FNNJAX_DEBUG=1`` shows the traceback instead, for both.

Every command that writes files says where on its last line (:func:`wrote_line`), and draws a progress bar only on a
terminal (:func:`show_progress`: stderr is a TTY and ``TQDM_DISABLE`` is not set), so a log of a
redirected run holds lines, not carriage returns.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from fnnjax._progress import show_progress, wrote_line
from fnnjax.errors import InputError, UsageError

__all__ = ["main", "show_progress", "wrote_line", "UsageError"]

SUBCOMMAND_MODULES = ("fnnjax.verify.cli", "fnnjax._cli_train", "fnnjax.benchmarks.cli")
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
    except (UsageError, InputError, OSError, MemoryError) as err:
        if os.environ.get("FNNJAX_DEBUG"):
            raise
        print(f"fnnjax {args.command}: error: {_first_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fnnjax {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # anything else is a bug: say so, in one line
        if os.environ.get("FNNJAX_DEBUG"):
            raise
        print(
            f"fnnjax {args.command}: internal error (a bug in fnnjax, please report it): "
            f"{type(err).__name__}: {_first_line(err)}; rerun with FNNJAX_DEBUG=1 for the "
            "traceback",
            file=sys.stderr,
        )
        return 3


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0].rstrip(":") if text else type(err).__name__  # details (treedefs) dropped


if __name__ == "__main__":
    sys.exit(main())
