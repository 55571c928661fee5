"""``fnnjax verify``: run the verification suite, or check a user's own backprop.

Registered by :mod:`fnnjax.cli` through :func:`register`; ``python -m fnnjax.verify`` runs the same command.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

__all__ = ["register", "run"]

from .grader import CONVENTIONS, VISIBILITIES

CONVENTION_NAMES = tuple(CONVENTIONS)
"""The --convention names."""

DESCRIPTION = """\
Check every formula F1-F28 against independent evidence (jax.grad, jacfwd/jacrev, jvp/vjp, finite
differences, exact closed forms, worked examples, an LP proof), in float64 on the CPU with no data
set, and print what each check measured. Each formula is derived in docs/formulas/ (see --list).
Exit status 1 when any check fails. With --backprop FILE.py[:NAME], check a hand-written backprop
instead: your own function in fnnjax's conventions, or a course submission (cs231n,
deeplearning.ai, Nielsen), run in its own process with a time limit per case; --gradescope writes
Gradescope's results.json. With --class FOLDER --report OUT, grade a whole class: every student's
submission in FOLDER, each as --backprop grades it, into OUT/grades.csv, report.md, report.html
and mistakes.png."""

EPILOG = """\
examples:
  fnnjax verify                          run every check (under a minute on 2 CPU cores)
  fnnjax verify --only F10,F11           the F10-* and F11-* checks
  fnnjax verify --json report.json --markdown report.md
  fnnjax verify --backprop mymodule:my_backprop
  fnnjax verify --backprop fc_net.py                      convention detected (cs231n's FullyConnectedNet)
  fnnjax verify --backprop network.py:Network --convention nielsen
  fnnjax verify --backprop assignment2/cs231n/classifiers/fc_net.py      as the course imports it
  fnnjax verify --backprop Building_your_Deep_Neural_Network_Step_by_Step.ipynb
  fnnjax verify --backprop submission.zip                 each gradable file graded as its own part
  fnnjax verify --backprop dnn.py:L_model_backward --gradescope /autograder/results/results.json --points 20

  fnnjax verify --class submissions/ --report grades/ --points 10 -j 2   a whole class, 2 at a time

--class exit status: 0 every submission passes, 1 the report was written and some submission fails or
could not be graded (its own row says why), 2 bad usage (no such folder, --report is a file, no
submission found).

--backprop exit status: 0 every case passes, 1 a case fails (wrong, raised, timed out, crashed, wrong
structure), 2 bad usage (with --gradescope, a submission that cannot be imported is a failure, 1).
"""


def register(subparsers) -> None:
    """Add the ``verify`` subcommand to ``fnnjax``'s subparsers.

    Args:
      subparsers: the object returned by ``ArgumentParser.add_subparsers``.
    """
    parser = subparsers.add_parser(
        "verify",
        help="check every formula of the notes against independent evidence, or your own backprop",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only", metavar="IDS", help="comma-separated check IDs or prefixes (F10 selects every F10-* check)"
    )
    parser.add_argument(
        "--list", action="store_true", help="list the checks (ID, formula page, the check's docs entry, claim) and exit"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="base seed of every random draw (default 0; with --gradescope a fresh seed per run, "
        "recorded in results.json, so that --seed reproduces the run)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes and one seed per check; timing criteria reported, not judged",
    )
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the report as markdown (a handout)")
    parser.add_argument(
        "--backprop",
        metavar="FILE.py[:NAME]",
        help="check a hand-written backprop instead of running the suite: FILE.py[:NAME] (also inside a "
        "course package, e.g. cs231n/classifiers/fc_net.py), NOTEBOOK.ipynb[:NAME], a FOLDER or a .zip as "
        "handed in (each gradable file a part), or MODULE[:NAME]; run in its own process (see --convention)",
    )
    parser.add_argument(
        "--class",
        dest="class_folder",
        metavar="FOLDER",
        help="grade a whole class: each entry of FOLDER (a folder, .zip, .ipynb or .py; or a Canvas, Moodle "
        "or Blackboard export, grouped by student) is one student's submission, graded as --backprop grades "
        "it (with --report OUT)",
    )
    klass = parser.add_argument_group("--class options")
    klass.add_argument(
        "--report",
        metavar="OUT",
        help="the folder --class writes grades.csv, report.md, report.html and mistakes.png to",
    )
    klass.add_argument(
        "-j", "--jobs", type=int, metavar="N", help="submissions graded at a time (default: the number of CPU cores)"
    )
    klass.add_argument(
        "--force",
        action="store_true",
        help="regrade every submission (default: skip those unchanged since the last run)",
    )
    group = parser.add_argument_group("--backprop options")
    group.add_argument(
        "--convention",
        choices=CONVENTION_NAMES,
        metavar="NAME",
        help="the convention the backprop is written in: "
        + ", ".join(CONVENTION_NAMES)
        + " (default: detected from what the file defines)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="seconds the backprop may take on each case (default 10; its import may take max(SECONDS, 60))",
    )
    group.add_argument(
        "--memory",
        type=float,
        metavar="MIB",
        help="address space the submission may use, in MiB (default 4096; see the grader security page)",
    )
    group.add_argument(
        "--no-namespaces",
        action="store_true",
        help="do not use PID/network/mount namespaces even where the kernel allows them (the path a "
        "default Docker container takes: the user, limit and environment layers only)",
    )
    group.add_argument(
        "--allow-autodiff",
        action="store_true",
        help="let the submission call automatic differentiation (jax.grad, torch.autograd...); by "
        "default a case that does fails: the course asks for a backward pass written by hand",
    )
    group.add_argument(
        "--gradescope",
        metavar="PATH",
        help="write Gradescope's results.json there (one test per case, the diagnosis in its "
        "output), atomically, even when the submission cannot be imported",
    )
    group.add_argument(
        "--points",
        type=float,
        metavar="X",
        help="the total score of --gradescope, split evenly over the cases; when the file defines course "
        "functions (per-function credit), evenly over the parts (each function, the whole network), then "
        "each part's share over its cases (default: 1 per case)",
    )
    group.add_argument(
        "--visibility",
        choices=VISIBILITIES,
        metavar="WHEN",
        help="Gradescope visibility of the tests: " + ", ".join(VISIBILITIES) + " (default visible)",
    )
    group.add_argument(
        "--l2-factor",
        type=float,
        metavar="F",
        help="cs231n's L2 term is F·reg·Σ‖W‖² (default: 1 for assignment 1's neural_net.py TwoLayerNet, "
        "2017 on; 0.5 otherwise; --l2-factor 0.5 grades 2016's assignment 1)",
    )
    group.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="judge with fnnjax's float64 tolerances instead of the course's own standard (cs231n's "
        "rel_error <= 1e-7, deeplearning.ai's gradient_check_n <= 2e-7)",
    )
    group.add_argument(
        "--init",
        action="append",
        metavar="KEY=VALUE",
        help="a constructor keyword the grader cannot fill on its own (repeatable; VALUE a Python literal "
        "or a string), e.g. --init activation_mode=sigmoid",
    )
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
        raise _usage(
            f"{option} {path} is a directory; give a file name, e.g. {option} {out / 'report'}"
            f"{'.md' if option == '--markdown' else '.json'}"
        )
    if not out.parent.exists():
        raise _usage(f"{option} {path}: the folder {out.parent} does not exist; create it or choose another path")
    return out


def _say_wrote(*paths: Path | None) -> None:
    """End with the line naming the files written (nothing when none was), after anything on stderr."""
    from fnnjax.cli import wrote_line

    if any(p is not None for p in paths):
        sys.stderr.flush()
        print(wrote_line(*paths), flush=True)


def _list(checks) -> int:
    from .formulas._report import render_list

    print(render_list(checks))
    return 0


def _backprop_options(args) -> tuple[Path | None, float | None]:
    for flag, value in (
        ("--only", args.only),
        ("--list", args.list),
        ("--markdown", args.markdown),
        ("--quick", args.quick),
    ):
        if value:
            raise _usage(
                f"{flag} applies to the formula suite, not to --backprop; use --backprop with "
                "--convention, --timeout, --seed, --json and --gradescope"
            )
    if args.memory is not None and not (args.memory >= 256 and math.isfinite(args.memory)):
        raise _usage(f"--memory {args.memory:g} must be at least 256 MiB, e.g. --memory 4096")
    if args.timeout is not None and not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise _usage(f"--timeout {args.timeout:g} must be a positive number of seconds, e.g. --timeout 10")
    gradescope = _check_output(args.gradescope, "--gradescope")
    if args.points is not None:
        if gradescope is None:
            raise _usage("--points sets the total of --gradescope; add --gradescope PATH")
        if not (args.points > 0 and math.isfinite(args.points)):
            raise _usage(f"--points {args.points:g} must be a positive number, e.g. --points 10")
    if args.visibility is not None and gradescope is None:
        raise _usage("--visibility applies to --gradescope; add --gradescope PATH")
    return gradescope, args.points


def _run_backprop(args, json_path: Path | None) -> int:
    gradescope, points = _backprop_options(args)
    import time
    import traceback

    from fnnjax.errors import UsageError

    from .formulas._runner import environment
    from .grader._convention_setup import parse_init
    from .grader._conventions import CONVENTIONS
    from .grader._gradescope import failure_results, gradescope_results, write_results
    from .grader._sandbox import Sandbox, fresh_seed
    from .grader._user_backprop import DEFAULT_TIMEOUT, BackpropReport, SubmissionError, check_user_backprop

    visibility = args.visibility or "visible"
    start = time.perf_counter()
    seed = args.seed if args.seed is not None else (fresh_seed() if gradescope is not None else 0)
    try:
        init = parse_init(args.init)
    except ValueError as err:
        raise _usage(str(err)) from None
    sandbox = Sandbox.from_options(args)
    if gradescope is not None:  # provisional: a grader stopped midway still leaves a file that says so
        write_results(
            gradescope,
            failure_results(
                "not graded yet: the grader stopped before it finished; please tell your instructor",
                convention=CONVENTIONS[args.convention] if args.convention else None,
                points=points,
                visibility=visibility,
            )
            | {"extra_data": {"seed": seed}},
        )
    from .grader._handin import HandInError, check_handin, is_handin

    options = {"convention": args.convention, "seed": seed, "timeout": args.timeout or DEFAULT_TIMEOUT}
    options |= {"sandbox": sandbox, "l2_factor": args.l2_factor, "strict": bool(args.strict), "init": init}
    try:
        if is_handin(args.backprop):  # a folder or .zip: each gradable file is a part
            report = check_handin(args.backprop, **options)
        else:
            report = check_user_backprop(args.backprop, **options)
    except (SubmissionError, HandInError) as err:
        if gradescope is None:
            if isinstance(err, SubmissionError):
                raise
            raise SubmissionError(str(err)) from None
        convention = getattr(err, "convention", None)
        write_results(
            gradescope,
            failure_results(
                str(err),
                convention=convention,
                points=points,
                visibility=visibility,
                seconds=time.perf_counter() - start,
            )
            | {"extra_data": {"convention": None if convention is None else convention.name, "seed": seed}},
        )
        print(f"FAIL: {err}")
        _say_wrote(gradescope)
        return 1
    except UsageError:  # the command line is wrong: the instructor's to fix (exit status 2)
        raise
    except Exception as err:  # the grader itself failed: the student still gets a results.json
        if gradescope is None:
            raise
        write_results(
            gradescope,
            failure_results(
                f"the grader failed ({type(err).__name__}: {err}); please tell your instructor",
                points=points,
                visibility=visibility,
                seconds=time.perf_counter() - start,
            )
            | {"extra_data": {"seed": seed}},
        )
        traceback.print_exc()
        _say_wrote(gradescope)
        return 1
    print(sandbox.summary() if isinstance(report, BackpropReport) else report.sandbox)
    print(report.render())
    notes = report.notes if isinstance(report, BackpropReport) else ()  # a hand-in prints its parts' own
    print("".join(f"  note         {note}\n" for note in notes), end="")
    if json_path is not None:
        env = environment()
        device = env.pop("device")
        json_path.write_text(
            json.dumps({"backprop": report.to_dict(), "versions": env, "device": device}, indent=2) + "\n"
        )
    if gradescope is not None:
        if isinstance(report, BackpropReport):
            results = gradescope_results(report, points=points, visibility=visibility)
            results["output"] += "".join(f"\n{note}" for note in notes)
        else:
            results = report.gradescope(points=points, visibility=visibility)
        results.setdefault("extra_data", {})["sandbox"] = (
            sandbox.summary() if isinstance(report, BackpropReport) else report.sandbox
        )
        write_results(gradescope, results)
    _say_wrote(json_path, gradescope)
    return 0 if report.passed else 1


def run(args: argparse.Namespace) -> int:
    """Run ``fnnjax verify`` with parsed arguments; return the exit status (0 pass, 1 a check failed).

    The last line on stdout names the files written (``--json``, ``--markdown``, ``--gradescope``):
    ``wrote DIR/: NAME, NAME``.

    Raises:
      fnnjax.errors.UsageError: for an unknown check ID, an unwritable output path, or options that do
        not go together (printed as one line, exit status 2, by ``fnnjax.cli.main``).
    """
    json_path = _check_output(args.json, "--json")
    md_path = _check_output(args.markdown, "--markdown")
    if getattr(args, "class_folder", None) or getattr(args, "report", None):
        from .grader._class_cli import run_class

        return run_class(args)
    if args.backprop:
        return _run_backprop(args, json_path)
    for flag in ("convention", "timeout", "gradescope", "points", "visibility", "l2_factor", "strict", "init"):
        if getattr(args, flag) is not None:
            option = "--" + flag.replace("_", "-")
            raise _usage(f"{option} applies to --backprop; add --backprop FILE.py[:NAME] or leave {option} out")

    from .formulas._registry import all_checks, select_checks
    from .formulas._report import render_markdown, render_table, to_json
    from .formulas._runner import run_suite

    checks = all_checks()
    try:
        selected = select_checks(checks, args.only)
    except ValueError as err:
        raise _usage(str(err)) from None
    if args.list:
        return _list(selected)
    result = run_suite(selected, seed=args.seed or 0, quick=args.quick, progress=not args.no_progress)
    print(render_table(result))
    if json_path is not None:
        json_path.write_text(to_json(result))
    if md_path is not None:
        md_path.write_text(render_markdown(result))
    _say_wrote(json_path, md_path)
    sys.stdout.flush()
    return 0 if result.passed else 1
