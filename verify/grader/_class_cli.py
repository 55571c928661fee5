"""``fnnjax verify --class FOLDER --report OUT``: the command-line side of :mod:`fnnjax.verify.grader._class`."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

__all__ = ["run_class"]

_SUITE_ONLY = ("only", "list", "markdown", "quick", "json", "gradescope", "backprop")


def _usage(message: str):
    from fnnjax.errors import UsageError

    return UsageError(message)


def _check(args) -> tuple[Path, Path]:
    if not args.class_folder:
        raise _usage("--report names the folder of --class; add --class FOLDER (the students' submissions)")
    if not args.report:
        raise _usage(
            f"--class {args.class_folder} needs --report OUT, the folder to write grades.csv and the report to"
        )
    for flag in _SUITE_ONLY:
        if getattr(args, flag, None):
            option = "--" + flag.replace("_", "-")
            raise _usage(f"{option} does not apply to --class (it writes grades.csv and the report to --report OUT)")
    folder, out = Path(args.class_folder), Path(args.report)
    if not folder.exists():
        raise _usage(f"--class {args.class_folder}: no such folder (looked from {Path.cwd()})")
    if not folder.is_dir():
        raise _usage(f"--class {args.class_folder} is a file; give the folder that holds one submission per student")
    if out.exists() and not out.is_dir():
        raise _usage(f"--report {args.report} is a file; give a folder (it is created), e.g. --report grades")
    if not out.exists() and not out.parent.exists():
        raise _usage(
            f"--report {args.report}: the folder {out.parent} does not exist; create it or choose another path"
        )
    if args.jobs is not None and args.jobs < 1:
        raise _usage(f"-j {args.jobs} must be at least 1, e.g. -j 2")
    if args.memory is not None and not (args.memory >= 256 and math.isfinite(args.memory)):
        raise _usage(f"--memory {args.memory:g} must be at least 256 MiB, e.g. --memory 4096")
    if args.timeout is not None and not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise _usage(f"--timeout {args.timeout:g} must be a positive number of seconds, e.g. --timeout 10")
    if args.points is not None and not (args.points > 0 and math.isfinite(args.points)):
        raise _usage(f"--points {args.points:g} must be a positive number, e.g. --points 10")
    return folder, out


def run_class(args) -> int:
    """Grade a class folder and write the report; return 0 (every submission passes), 1 (some fails).

    Raises:
      fnnjax.errors.UsageError: a missing folder, ``--report`` a file, no submission found, options
        that do not apply (one line, exit status 2).
    """
    folder, out = _check(args)
    from fnnjax.cli import show_progress, wrote_line

    from ._class import ClassError, discover, grade_class
    from ._class_report import write_report
    from ._convention_setup import parse_init
    from ._sandbox import Sandbox
    from ._user_backprop import DEFAULT_TIMEOUT

    try:
        init = parse_init(args.init)
    except ValueError as err:
        raise _usage(str(err)) from None
    try:
        students, _ = discover(folder, exclude=out)
    except ClassError as err:
        raise _usage(str(err)) from None
    seed = args.seed if args.seed is not None else 0
    options = {"convention": args.convention, "seed": seed, "timeout": args.timeout or DEFAULT_TIMEOUT}
    options |= {"l2_factor": args.l2_factor, "strict": bool(args.strict), "init": init}
    settings = dict(options) | {
        "memory": args.memory,
        "namespaces": not args.no_namespaces,
        "allow_autodiff": bool(args.allow_autodiff),
    }
    options["sandbox"] = Sandbox.from_options(args)
    jobs = args.jobs or os.cpu_count() or 1
    bar = None
    if not args.no_progress and show_progress(sys.stderr):
        from tqdm import tqdm

        bar = tqdm(total=len(students), desc="fnnjax verify --class", unit="submission", file=sys.stderr, leave=False)

    def progress(done: int, total: int, student: str) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(student[:30], refresh=True)

    try:
        result = grade_class(
            folder,
            out,
            options=options,
            settings=settings,
            points=args.points,
            visibility=args.visibility or "visible",
            jobs=jobs,
            force=args.force,
            progress=progress,
            jax_cache=out / ".cache" / "jax",
        )
    except ClassError as err:
        raise _usage(str(err)) from None
    finally:
        if bar is not None:
            bar.close()
    paths = write_report(result, out)
    n = len(result.graded)
    passed = sum(g.passed for g in result.graded)
    graded = n - result.skipped
    print(result.sandbox or "sandbox: every submission unchanged since the last run (--force regrades)")
    width = max((len(g.student) for g in result.graded), default=10)
    for g in result.graded:
        status = "pass" if g.passed else ", ".join(sorted({p["status"] for p in g.parts} - {"pass"}))
        print(f"  {g.student:<{width}}  {g.score:>6g} / {g.max_score:<6g} {status}")
    skipped = f", {result.skipped} unchanged since the last run (--force regrades them)" if result.skipped else ""
    print(
        f"{'PASS' if result.passed else 'FAIL'}: {passed} of {n} submissions pass; graded {graded} in "
        f"{result.seconds:.1f} s with {jobs} at a time (seed {result.options['seed']}){skipped}"
    )
    sys.stderr.flush()
    print(wrote_line(*paths), flush=True)
    return 0 if result.passed else 1
