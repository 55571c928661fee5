"""``fnnjax verify``: run the verification suite, or check a user's own backprop.

Registered by :mod:`fnnjax.cli` through :func:`register`; ``python -m verify`` runs the same command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "run"]

DESCRIPTION = """\
Check every formula F1-F28 against independent evidence (jax.grad, jacfwd/jacrev, jvp/vjp, finite
differences, exact closed forms, worked examples, an LP proof), in float64 on the CPU with no data
set, and print what each check measured. Each formula is derived in docs/formulas/ (see --list). Exit status 1 when any
check fails. With --backprop MODULE:FUNCTION, check your own backprop function instead."""

EPILOG = """\
examples:
  fnnjax verify                          run every check (under a minute on 2 CPU cores)
  fnnjax verify --only F10,F11           the F10-* and F11-* checks
  fnnjax verify --json report.json --markdown report.md
  fnnjax verify --backprop mymodule:my_backprop
"""


def register(subparsers) -> None:
    """Add the ``verify`` subcommand to ``fnnjax``'s subparsers.

    Args:
      subparsers: the object returned by ``ArgumentParser.add_subparsers``.
    """
    parser = subparsers.add_parser(
        "verify", help="check every formula of the notes against independent evidence, or your own backprop",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", metavar="IDS",
                        help="comma-separated check IDs or prefixes (F10 selects every F10-* check)")
    parser.add_argument("--list", action="store_true", help="list the checks (ID, formula page, claim) and exit")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every random draw (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes and one seed per check; timing criteria reported, not judged")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the report as markdown (a handout)")
    parser.add_argument("--backprop", metavar="MODULE:FUNCTION",
                        help="check your own function with the signature of fnnjax.backprop "
                             "(mlp, params, x, y, loss=..., l2=...) instead of running the suite")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _usage(message: str):
    from fnnjax.errors import UsageError

    return UsageError(message)


def _check_output(path: str | None, option: str) -> Path | None:
    if path is None:
        return None
    out = Path(path)
    if out.is_dir():
        raise _usage(f"{option} {path} is a directory; give a file name, e.g. {option} {out / 'report'}"
                     f"{'.json' if option == '--json' else '.md'}")
    if not out.parent.exists():
        raise _usage(f"{option} {path}: the folder {out.parent} does not exist; create it or choose another path")
    return out


def _list(checks) -> int:
    from verify._report import render_list

    print(render_list(checks))
    return 0


def _run_backprop(args, json_path: Path | None) -> int:
    for flag, value in (("--only", args.only), ("--list", args.list), ("--markdown", args.markdown),
                        ("--quick", args.quick)):
        if value:
            raise _usage(f"{flag} applies to the formula suite, not to --backprop; use --backprop with "
                         "--seed and --json only")
    import jax

    from verify._runner import environment
    from verify._user_backprop import check_user_backprop, load_user_function

    fn = load_user_function(args.backprop)
    with jax.enable_x64(True):
        report = check_user_backprop(fn, seed=args.seed)
    print(report.render())
    if json_path is not None:
        env = environment()
        device = env.pop("device")
        json_path.write_text(json.dumps({"backprop": report.to_dict(), "versions": env, "device": device},
                                        indent=2) + "\n")
    return 0 if report.passed else 1


def run(args: argparse.Namespace) -> int:
    """Run ``fnnjax verify`` with parsed arguments; return the exit status (0 pass, 1 a check failed).

    Raises:
      fnnjax.errors.UsageError: for an unknown check ID, an unwritable output path, or options that do
        not go together (printed as one line, exit status 2, by ``fnnjax.cli.main``).
    """
    json_path = _check_output(args.json, "--json")
    md_path = _check_output(args.markdown, "--markdown")
    if args.backprop:
        return _run_backprop(args, json_path)

    from verify._registry import all_checks, select_checks
    from verify._report import render_markdown, render_table, to_json
    from verify._runner import run_suite

    checks = all_checks()
    try:
        selected = select_checks(checks, args.only)
    except ValueError as err:
        raise _usage(str(err)) from None
    if args.list:
        return _list(selected)
    result = run_suite(selected, seed=args.seed, quick=args.quick, progress=not args.no_progress)
    print(render_table(result))
    if json_path is not None:
        json_path.write_text(to_json(result))
    if md_path is not None:
        md_path.write_text(render_markdown(result))
    sys.stdout.flush()
    return 0 if result.passed else 1
