"""Every benchmark in one call, inside a time budget: what one session on a GPU machine runs.

``python -m fnnjax.benchmarks.suite --out DIR --archive FILE`` runs, in this order (the most important
numbers first), each benchmark in a subprocess of its own with a time limit:

1. ``train``: seconds per epoch of the notes' recipe (fnnjax backprop and grad at several
   ``lax.scan`` unroll factors, the ``fnnjax train`` command, a plain jax.grad loop, the notes'
   PyTorch loop, and the peers: the best-effort PyTorch loop, torch.compile, Flax NNX,
   Equinox), plus a whole 50-epoch ``fnnjax.fit`` (compile time apart);
2. ``time_to_accuracy``: seconds to 0.89 test accuracy of ``fnnjax train --preset fast`` and
   of the peers on the same recipe, seeds 0-2;
3. ``backprop``: hand-written backprop against jax.grad on 784-256-10;
4. ``reference``: the notes' 50-epoch recipe over several seeds (accuracy, not speed);
5. ``gradients``: time per gradient of every method against the parameter count P;
6. ``modes``: forward vs reverse mode as the input dimension n grows;
7. ``train_while``: the fnnjax methods of ``train`` again (unroll 1 and 16), with XLA's command
   buffers (CUDA graphs) extended to the epoch's while loop (``XLA_FLAGS`` below), results tagged
   ``TAG_cmdbuf_while``: whether capturing the whole loop cuts the per-step launch overhead that
   the 5 ms-per-epoch target is about. Last, because it is an experiment: a flag this XLA does not
   know fails only this step.

A step that fails or runs out of time is recorded (status, seconds, the end of its log) and the
suite moves on, so one bad step never costs the others' results. Each step gets
``min(its cap, the budget left)`` seconds. Everything lands in ``DIR`` (the benchmarks' usual
``NAME_TAG.{json,md,png}`` files, one log per step, ``suite_TAG.json`` with the statuses and the
GPU's ``nvidia-smi`` line), and ``--archive`` packs ``DIR`` into one ``.tar.gz``: one file to
copy back from the GPU machine, whatever happened. The end of the
output is a summary: the steps' statuses and the tables that matter.

On a GPU machine with jax (CUDA), optax, orbax, matplotlib, tqdm and torch installed. The
data set has to be there: copy it into an ignored folder of the checkout first (see the how-to guide
"Run the benchmarks on a GPU")::

    mkdir -p .devdata && cp -r /path/to/fashion-mnist .devdata/ && echo /.devdata/ >> .git/info/exclude
    PYTHONPATH=. FNNJAX_DATA=.devdata python3 -m fnnjax.benchmarks.suite --out /tmp/gpu \\
        --archive gpu_results.tar.gz

then unpack the archive into ``benchmarks/results/`` and commit the ``*_gpu.*`` files.
``--quick`` runs every step's ``--quick`` version (a smoke test of the whole suite, on any
machine, in a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from fnnjax.errors import UsageError

__all__ = ["STEPS", "add_arguments", "run", "main", "step_commands"]

STEPS = ("train", "time_to_accuracy", "backprop", "reference", "gradients", "modes", "train_while")
"""The benchmarks the suite runs, in order."""

CAPS_S = {
    "train": 170,
    "time_to_accuracy": 130,
    "backprop": 45,
    "reference": 100,
    "gradients": 120,
    "modes": 120,
    "train_while": 90,
}
"""Each step's own time limit in seconds (the budget left can cut it further)."""

STEP_ENV = {
    "train_while": {
        "XLA_FLAGS": "--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL"
    }
}
"""Environment variables a step runs with in addition to the suite's."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The suite's options."""
    parser.add_argument("--quick", action="store_true", help="every step's --quick version (smoke test)")
    parser.add_argument("--out", required=True, help="directory for every result and log")
    parser.add_argument("--archive", default=None, help="also pack --out into this .tar.gz (e.g. gpu_results.tar.gz)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=480.0,
        help="seconds for all steps together (default %(default)s: a 600 s device call with room to pack and return)",
    )
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated subset of {', '.join(STEPS)}, run in the suite's order",
    )
    parser.add_argument("--tag", default=None, help="suffix of the result names (default: the JAX platform, e.g. gpu)")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="seeds of the reference step (default 0..4)")


def _package_root() -> Path:
    """The folder that holds the ``fnnjax`` package (a checkout's root, or site-packages)."""
    import fnnjax

    return Path(fnnjax.__file__).resolve().parent.parent


def step_commands(out: str, *, quick: bool, tag: str | None, seeds: str, platform: str = "cpu") -> dict[str, list[str]]:
    """The command line (after ``python -m``) of every step (``platform`` names results when
    ``tag`` is None)."""
    common = ["--out", out] + (["--tag", tag] if tag else []) + (["--quick"] if quick else [])
    return {
        "train": [
            "fnnjax.benchmarks.train",
            *common,
            "--unroll",
            "1,4,16" if quick else "1,4,16,64",
            "--full-run",
            "2" if quick else "50",
        ]
        + (["--samples", "4096"] if quick else []),
        "time_to_accuracy": ["fnnjax.benchmarks.time_to_accuracy", *common],
        "backprop": ["fnnjax.benchmarks.backprop", *common],
        "reference": ["fnnjax.benchmarks.reference", *common, "--seeds", seeds],
        "gradients": ["fnnjax.benchmarks.gradients", *common],
        "modes": ["fnnjax.benchmarks.modes", *common],
        "train_while": [
            "fnnjax.benchmarks.train",
            "--out",
            out,
            "--tag",
            f"{tag or platform}_cmdbuf_while",
            "--methods",
            "fnnjax_backprop,fnnjax_grad",
            "--unroll",
            "1,16",
        ]
        + (["--quick", "--samples", "4096"] if quick else []),
    }


def _gpu_description() -> str | None:
    try:
        done = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _run_step(name: str, command: list[str], limit_s: float, log: Path, env: dict) -> dict:
    """Run one step in its own process group; kill the group at ``limit_s``."""
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", *command], stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=limit_s)
            status = "ok" if rc == 0 else f"failed (exit {rc})"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc, status = None, f"timed out after {limit_s:.0f} s"
    return {
        "step": name,
        "command": " ".join(["python", "-m", *command]),
        "env": STEP_ENV.get(name),
        "status": status,
        "exit_code": rc,
        "seconds": round(time.perf_counter() - t0, 1),
        "limit_s": round(limit_s),
        "log": log.name,
    }


def _tail(path: Path, lines: int) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(text[-lines:])


def run(args) -> int:
    """Run the steps; write the statuses; pack the archive; print the summary. Returns 0 when every
    step succeeded, 1 otherwise."""
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        raise UsageError(f"unknown --steps {', '.join(unknown) or '(none)'}; valid steps are {', '.join(STEPS)}")
    if args.budget_s <= 0:
        raise UsageError(f"--budget-s {args.budget_s} must be positive (seconds for all steps)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_DISABLE="1")  # no progress bars in the logs
    # JAX would otherwise take 75% of the GPU's memory at start, leaving torch (train step) little
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.5")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_package_root()), env.get("PYTHONPATH")]))
    platform = _platform()
    commands = step_commands(str(out), quick=args.quick, tag=args.tag, seeds=args.seeds, platform=platform)
    deadline = time.perf_counter() + args.budget_s
    gpu = _gpu_description()
    records = []
    for name in (s for s in STEPS if s in steps):
        left = deadline - time.perf_counter()
        if left < 2:  # too little for a step to start (importing jax alone takes seconds)
            records.append({"step": name, "status": "not run: the budget is spent", "seconds": 0.0})
            continue
        print(f"suite: {name} (limit {min(CAPS_S[name], left):.0f} s) ...", file=sys.stderr, flush=True)
        step_env = {**env, **STEP_ENV.get(name, {})}
        records.append(_run_step(name, commands[name], min(CAPS_S[name], left), out / f"suite_{name}.log", step_env))
        print(f"suite: {name}: {records[-1]['status']} in {records[-1]['seconds']} s", file=sys.stderr, flush=True)
    tag = args.tag or platform
    summary = {
        "suite": f"suite_{tag}",
        "platform": platform,
        "gpu": gpu,
        "budget_s": args.budget_s,
        "quick": args.quick,
        "steps": records,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / f"suite_{tag}{'_quick' if args.quick else ''}.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.archive:
        archive = Path(args.archive)
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(out.iterdir()):
                tar.add(path, arcname=path.name)
    print(f"\n# suite on {gpu or 'no GPU seen by nvidia-smi'}")
    for r in records:
        print(f"- {r['step']}: {r['status']} ({r['seconds']} s)")
    for r in reversed(records):  # the first steps matter most: their tables end the output
        if "log" in r:
            print(f"\n## {r['step']} (end of {r['log']})\n{_tail(out / r['log'], 30)}")
    summary_name = f"suite_{tag}{'_quick' if args.quick else ''}.json"
    where = f"wrote {out.resolve()}{os.sep}: {summary_name}, each step's results and log"
    if args.archive:
        archive = Path(args.archive)
        where += f"; packed into {archive.resolve()} ({archive.stat().st_size / 1e6:.1f} MB)"
    print(f"\n{where}")
    return 0 if all(r["status"] == "ok" for r in records) else 1


def _platform() -> str:
    """JAX's platform (cpu, gpu, ...), asked of a child process: initialising JAX's GPU backend in
    the suite's own process would hold GPU memory for the whole suite."""
    probe = subprocess.run(
        [sys.executable, "-c", "import jax; print(jax.devices()[0].platform)"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false"),
    )
    return probe.stdout.strip().splitlines()[-1] if probe.returncode == 0 and probe.stdout.strip() else "unknown"


def main(argv: list[str] | None = None) -> int:
    """``python -m fnnjax.benchmarks.suite --out DIR [--archive FILE] [--quick] ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m fnnjax.benchmarks.suite", description=(__doc__ or "").split("\n")[0]
    )
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except UsageError as err:
        print(f"fnnjax.benchmarks.suite: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
