"""Grading speed: one submission cold, and a whole class on the machine's cores.

``python -m fnnjax.benchmarks.grading [--quick] [--out DIR]`` (or ``fnnjax bench grading``) writes a
class folder of cs231n ``FullyConnectedNet`` submissions (:func:`make_class`: right ones, wrong
ones of the classic kinds — a missing ``reg·W``, a missing ReLU mask, a flipped sign, a doubled L2
term — and unfinished ones that still raise ``NotImplementedError``), then measures, each command in
a new process with the sandbox on:

- **one submission cold**: ``fnnjax verify --backprop fc_net.py --seed 1`` of a right submission
  in a new process, with JAX's persistent compilation cache warmed once beforehand, as the
  Gradescope setup does (``JAX_COMPILATION_CACHE_DIR``); wall time and the CPU time of the
  command (its processes together), median of the repeats; target at most 5 s;
- **a class**: ``fnnjax verify --class FOLDER --report OUT --force -j CORES`` of the whole folder
  (each submission in its own sandbox), its compilation cache warmed by one earlier run;
  submissions per minute from the wall time, median of the repeats; target at least 20 per minute.

The machine's other load is recorded (the load average before and after), since the wall times
depend on it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import _harness

__all__ = ["KINDS", "add_arguments", "main", "make_class", "run"]

TARGET_COLD_S = 5.0
"""One submission, cold, must take at most this (seconds)."""
TARGET_PER_MINUTE = 20.0
"""A class must be graded at least this fast (submissions per minute)."""

_EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "courses" / "cs231n"

KINDS = {
    "right": [],
    "missing-l2": [('            grads[f"W{l}"] += self.reg * W\n', "")],
    "missing-relu-mask": [("            dout = relu_backward(dout, relu_cache)\n", "")],
    "sign-flip": [
        (
            '        dout, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dout, last_cache)\n',
            '        dout, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dout, last_cache)\n'
            '        grads[f"W{L}"] = -grads[f"W{L}"]\n',
        )
    ],
    "double-l2": [('            grads[f"W{l}"] += self.reg * W\n', '            grads[f"W{l}"] += 2 * self.reg * W\n')],
    "unfinished": [
        (
            "        grads = {}\n",
            '        grads = {}\n        raise NotImplementedError("TODO: the backward pass")\n',
        )
    ],
}
"""The kinds of submission :func:`make_class` writes: edits of a right ``fc_net.py`` (old, new)."""

HOSTILE = {
    "hangs": "        while True:\n            pass\n",
    "kills-the-grader": (
        "        import os, signal\n"
        "        for pid in (os.getppid(), 1):\n"
        "            try:\n"
        "                os.kill(pid, signal.SIGKILL)\n"
        "            except OSError:\n"
        "                pass\n"
        "        os._exit(3)\n"
    ),
    "floods-stdout": "        while True:\n            print('x' * 10000)\n",
    "injects-markup": (
        '        raise ValueError(\'<script>alert(1)</script> =HYPERLINK("http://evil.example","click") '
        "\\x1b[31mred\\x1b[0m')\n"
    ),
}
"""Hostile submissions: code put at the start of ``FullyConnectedNet.loss``."""


def _source(kind: str) -> str:
    text = (_EXAMPLES / "fc_net.py").read_text()
    if kind in HOSTILE:
        anchor = '        """The scores when y is None, else (loss, grads) with grads[k] = dloss/dparams[k]."""\n'
        head, sep, tail = text.rpartition(anchor)
        return head + sep + HOSTILE[kind] + tail
    for old, new in KINDS[kind]:
        if old not in text:
            raise RuntimeError(f"examples/courses/cs231n/fc_net.py changed: cannot make a {kind!r} submission")
        text = text.replace(old, new)
    return text


def make_class(folder: Path | str, counts: dict[str, int], *, zipped: int = 0) -> list[tuple[str, str]]:
    """Write a class folder: one folder per student holding ``fc_net.py`` and ``layers.py``.

    Args:
      folder: where (created).
      counts: how many submissions of each kind (:data:`KINDS` and :data:`HOSTILE` keys).
      zipped: how many of them (the first ones) are handed in as a ``.zip`` instead of a folder.

    Returns:
      ``(student, kind)`` of each submission, in the order written.

    Example:
      >>> import tempfile
      >>> from fnnjax.benchmarks.grading import make_class
      >>> make_class(tempfile.mkdtemp(), {"right": 1, "missing-l2": 1})
      [('student01-right', 'right'), ('student02-missing-l2', 'missing-l2')]
    """
    import zipfile

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    layers = (_EXAMPLES / "layers.py").read_text()
    written = []
    k = 0
    for kind, n in counts.items():
        for _ in range(n):
            k += 1
            name = f"student{k:02d}-{kind}"
            if k <= zipped:
                with zipfile.ZipFile(root / f"{name}.zip", "w") as zf:
                    zf.writestr(f"{name}/fc_net.py", _source(kind))
                    zf.writestr(f"{name}/layers.py", layers)
            else:
                (root / name).mkdir(exist_ok=True)
                (root / name / "fc_net.py").write_text(_source(kind))
                (root / name / "layers.py").write_text(layers)
            written.append((name, kind))
    return written


def _fnnjax() -> list[str]:
    return [sys.executable, "-m", "fnnjax.cli"]


def _timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> dict:
    """Run a command in a new process: its wall time, its CPU time (children included), its status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return {"wall_s": wall, "cpu_s": cpu, "status": done.returncode, "stdout": done.stdout}


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        TQDM_DISABLE="1",
        JAX_PLATFORMS="cpu",
    )
    return env


def measure(work: Path, *, counts: dict[str, int], repeats: int, jobs: int) -> dict:
    """The measurements (see the module's docstring) in the folder ``work``."""
    load_before = os.getloadavg()
    class_dir = work / "class"
    make_class(class_dir, counts)
    one = work / "one"
    make_class(one, {"right": 1})
    target = one / "student01-right" / "fc_net.py"
    cache = work / "jax-cache"
    env = _env(cache)
    cmd = [*_fnnjax(), "verify", "--backprop", str(target), "--seed", "1"]
    first = _timed(cmd, env)  # the Gradescope setup: the cache warmed once (compiles everything)
    cold = [_timed(cmd, env) for _ in range(repeats)]
    out = work / "report"
    klass = [*_fnnjax(), "verify", "--class", str(class_dir), "--report", str(out), "-j", str(jobs), "--force"]
    class_first = _timed(klass, env)  # its compilation cache (OUT/.cache/jax) warmed by this run
    runs = [_timed(klass, env) for _ in range(repeats)]
    n = sum(counts.values())
    walls = [r["wall_s"] for r in runs]
    return {
        "submissions": n,
        "kinds": counts,
        "jobs": jobs,
        "repeats": repeats,
        "cold": {
            "first_wall_s": first["wall_s"],
            "first_cpu_s": first["cpu_s"],
            "wall_s": [r["wall_s"] for r in cold],
            "cpu_s": [r["cpu_s"] for r in cold],
            "median_wall_s": statistics.median(r["wall_s"] for r in cold),
            "median_cpu_s": statistics.median(r["cpu_s"] for r in cold),
        },
        "class": {
            "first_wall_s": class_first["wall_s"],
            "first_per_minute": 60 * n / class_first["wall_s"],
            "wall_s": walls,
            "cpu_s": [r["cpu_s"] for r in runs],
            "median_wall_s": statistics.median(walls),
            "per_minute": 60 * n / statistics.median(walls),
            "status": runs[-1]["status"],
            "last_line": runs[-1]["stdout"].strip().splitlines()[-1] if runs[-1]["stdout"].strip() else "",
        },
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "sandbox": next((line for line in cold[-1]["stdout"].splitlines() if line.startswith("sandbox:")), ""),
    }


def _table(data: dict) -> str:
    cold, klass = data["cold"], data["class"]
    rows = [
        {
            "measure": "one submission cold (new process, compilation cache warm), wall",
            "value": f"{cold['median_wall_s']:.2f} s",
            "target": f"<= {TARGET_COLD_S:g} s",
            "met": "yes" if cold["median_wall_s"] <= TARGET_COLD_S else "no",
        },
        {
            "measure": "one submission cold, CPU time of the command",
            "value": f"{cold['median_cpu_s']:.2f} s",
            "target": f"<= {TARGET_COLD_S:g} s",
            "met": "yes" if cold["median_cpu_s"] <= TARGET_COLD_S else "no",
        },
        {
            "measure": "the first run ever (compiles the reference programs, fills the cache), wall",
            "value": f"{cold['first_wall_s']:.2f} s",
            "target": "",
            "met": "",
        },
        {
            "measure": f"a class of {data['submissions']}, -j {data['jobs']}, submissions per minute",
            "value": f"{klass['per_minute']:.1f}",
            "target": f">= {TARGET_PER_MINUTE:g}",
            "met": "yes" if klass["per_minute"] >= TARGET_PER_MINUTE else "no",
        },
        {
            "measure": f"a class of {data['submissions']}, -j {data['jobs']}, wall (median of {data['repeats']})",
            "value": f"{klass['median_wall_s']:.1f} s",
            "target": "",
            "met": "",
        },
        {
            "measure": "a class, its first run (empty compilation cache), submissions per minute",
            "value": f"{klass['first_per_minute']:.1f}",
            "target": "",
            "met": "",
        },
    ]
    load = ", ".join(f"{x:.2f}" for x in data["load_average_before"])
    kinds = ", ".join(f"{n} {k}" for k, n in data["kinds"].items())
    return (
        _harness.markdown_table(rows, ["measure", "value", "target", "met"])
        + f"\n\nThe class: {kinds} (cs231n FullyConnectedNet folders). {data['sandbox']}. "
        f"Load average before the run: {load} (on {os.cpu_count()} cores)."
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    parser.add_argument("--quick", action="store_true", help="a class of 4 and one repeat (for tests)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each measurement (default %(default)s)")
    parser.add_argument("-j", "--jobs", type=int, default=None, help="submissions at a time (default: the cores)")
    parser.add_argument("--out", type=Path, default=None, help=_harness.OUT_HELP)


def run(args) -> int:
    """Measure, then write ``grading_cpu.json`` and ``grading_cpu.md`` (``_quick`` added for ``--quick``)."""
    counts = (
        {"right": 2, "missing-l2": 1, "unfinished": 1}
        if args.quick
        else {"right": 8, "missing-l2": 3, "missing-relu-mask": 3, "sign-flip": 2, "double-l2": 2, "unfinished": 2}
    )
    repeats = 1 if args.quick else args.repeats
    jobs = args.jobs or os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="fnnjax-bench-grading-"))
    os.chmod(work, 0o755)  # the sandbox user reads the submissions' copies, never this folder itself
    try:
        data = measure(work, counts=counts, repeats=repeats, jobs=jobs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    data["quick"] = bool(args.quick)
    data["targets"] = {"cold_s": TARGET_COLD_S, "per_minute": TARGET_PER_MINUTE}
    name = "grading_cpu" + ("_quick" if args.quick else "")
    json_path, md_path = _harness.write_results(name, data, _table(data), args.out)
    print(_table(data))
    print(_harness.wrote_line(json_path, md_path))
    return 0  # the numbers are results (the table says whether each target is met), not a verdict


def main(argv: list[str] | None = None) -> int:
    """``python -m fnnjax.benchmarks.grading [--quick] [--out DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m fnnjax.benchmarks.grading", description=(__doc__ or "").splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
