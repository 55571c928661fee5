"""``fnnjax bench NAME [--quick] [--out DIR] ...``: run one of the benchmarks in ``benchmarks/``.

Each benchmark is a module ``benchmarks.NAME`` with ``add_arguments(parser)`` and
``run(args) -> int``; it is imported only when asked for (so ``fnnjax --help`` stays fast and a
benchmark module added later is picked up without changes here).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

__all__ = ["BENCHMARKS", "register", "build_parser", "run_benchmark"]

BENCHMARKS = {
    "modes": "forward vs reverse mode: input Jacobians and Hessians as the input dimension n grows",
    "gradients": "time per gradient of the risk for every method against the parameter count P",
    "backprop": "hand-written backprop vs jax.grad on the notes' network 784-256-10",
    "train": "seconds per epoch of the notes' training recipe: fnnjax against its strongest peers "
    "(PyTorch, torch.compile, Flax NNX, Equinox) and the machine's BLAS",
    "levers": "what makes fnnjax's CPU epoch faster: each lever (data layout, gathering, XLA "
    "options, evaluation) measured on the whole epoch, side by side",
    "time_to_accuracy": "seconds to 0.89 test accuracy: fnnjax train --preset fast against PyTorch "
    "and the other peers on the same recipe",
    "reference": "the notes' 50-epoch Fashion-MNIST recipe over several seeds: the notes' table",
    "pretrain": "greedy layer-wise pretraining (F28) vs random init on a deep sigmoid net",
    "scaling": "data-parallel epoch throughput (samples/s) against the device count 1,2,4,8",
    "grading": "grading speed: one submission cold, and submissions per minute for a class folder on the cores",
    "suite": "every benchmark in one call inside a time budget, packed into one archive (e.g. on a GPU machine)",
}
"""Benchmark names and what each measures."""


def build_parser(name: str, prog: str = "fnnjax bench") -> argparse.ArgumentParser:
    """The argument parser of benchmark ``name`` (imports ``fnnjax.benchmarks.NAME``).

    Raises:
      fnnjax.errors.UsageError: for an unknown name or a benchmark whose module is not installed.
    """
    from fnnjax.errors import UsageError

    if name not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {name!r}; valid names are {', '.join(BENCHMARKS)}")
    module_name = f"{__package__}.{name}"
    if importlib.util.find_spec(module_name) is None:
        raise UsageError(
            f"benchmark {name!r} is not available: module {module_name} is missing from this "
            "checkout; run one of the others"
        )
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"{prog} {name}", description=BENCHMARKS[name])
    module.add_arguments(parser)
    parser.set_defaults(run=module.run)
    return parser


def run_benchmark(args: argparse.Namespace) -> int:
    """Parse the benchmark's own options (everything after NAME) and run it."""
    inner = build_parser(args.benchmark).parse_args(args.options)
    return int(inner.run(inner) or 0)


def register(subparsers) -> None:
    """Add ``bench`` to the ``fnnjax`` command line."""
    listing = "\n".join(f"  {k:10s} {v}" for k, v in BENCHMARKS.items())
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark (" + ", ".join(BENCHMARKS) + "); results under ./benchmarks/results/ (of the "
        "current directory) unless --out DIR",
        description="Run a benchmark and write its JSON, markdown table and PNG plots.\n\nbenchmarks:\n"
        + listing
        + "\n\nevery benchmark takes --quick (a small version, under a minute; the suite's "
        "runs every step's), --out DIR (default ./benchmarks/results under the current directory: from "
        "a checkout's root, where the committed results are; the last line says where it wrote), "
        "--tag TAG, and every timing benchmark also --repeats R "
        "(pretrain, reference and time_to_accuracy measure accuracy or whole runs, and the suite "
        "sets its steps' own: they have none); `fnnjax bench NAME --help` lists its own options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("benchmark", metavar="NAME", help="one of: " + ", ".join(BENCHMARKS))
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's options (--quick, --out DIR, ...)")
    parser.set_defaults(func=run_benchmark)
