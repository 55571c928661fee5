"""Time to accuracy (the DAWNBench/MLPerf measure): wall seconds from start until the test
accuracy first reaches the target, for ``fnnjax train --preset fast`` and its peers running the same
recipe, seed by seed in one run.

The recipe is a preset of ``fnnjax train`` (:mod:`fnnjax.presets`; default ``fast``: 784-256-10
ReLU, He init, Adam at a peak learning rate of 0.003 with a cosine decay over the run, batch 256,
its epochs); every method trains it from the same initial weights for each seed (the command's:
``init_key, train_key = jax.random.split(jax.random.key(seed))``, ``fnnjax.init_params(init_key,
mlp, "he")``), evaluates the test set after every epoch (the evaluation is part of the time, as
in DAWNBench), and runs to the end of the recipe (so the final accuracy is reported too):

- ``fnnjax_fit``: ``fnnjax.fit`` with ``eval={"test": ...}``; the clock starts before the call
  (putting the data on the device and compiling are included);
- ``fnnjax_train``: the ``fnnjax train --preset fast --seed S`` command itself, in-process, with
  its defaults (checkpoints included); the clock starts before the command, so reading the IDX
  files is included too;
- ``torch_loop``, ``torch_compile``, ``flax_nnx``, ``equinox``: the peers of
  :mod:`fnnjax.benchmarks._peers` (the ``bench`` extra) on the same recipe, with a test evaluation after
  every epoch; the clock starts before the loop is built (the tensors' placement and, for
  ``torch_compile``, compilation in the first epoch are included).

For every seed the methods run one after the other, in reversed order on odd seeds (so drift in
the machine's load hits all alike). Reported per method and seed: seconds to the target (None
when never reached), the epoch that reached it, the final and best test accuracy, the whole run's
seconds; per method: the medians over seeds (a run that never reaches the target counts as
infinitely long, DAWNBench's rule: the median is "never" only when most runs never reach it), and
``speedup_vs_torch``, the median over seeds of ``torch_loop / method`` seconds to target.
Targets (on 2 CPU cores): fnnjax's median time to 0.89 under 60 s and below the PyTorch loop's,
and the preset's median final test accuracy over the seeds at least 0.89. Results:
``time_to_accuracy_<platform>.json``, ``.md`` and ``.png`` (test accuracy against wall time), with
the load average before and after.

Run: ``FNNJAX_DATA=/path/holding/fashion-mnist python -m fnnjax.benchmarks.time_to_accuracy`` (or
``fnnjax bench time_to_accuracy``); it needs the real data set (accuracy on random labels means
nothing), except with ``--quick`` (2 epochs, one seed, a small random problem; a smoke test).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fnnjax.errors import UsageError

__all__ = ["add_arguments", "run", "main", "METHODS", "TARGET_ACCURACY", "TARGET_SECONDS"]

METHODS = ("fnnjax_fit", "fnnjax_train", "torch_loop", "torch_compile", "flax_nnx", "equinox")
"""Every method this benchmark knows (see the module docstring)."""
TARGET_ACCURACY = 0.89
"""The test accuracy to reach (Fashion-MNIST)."""
TARGET_SECONDS = 60.0
"""The time-to-accuracy target on 2 CPU cores: under 60 s (and faster than the PyTorch loop)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this benchmark's options to ``parser``."""
    from fnnjax.benchmarks._harness import add_common_arguments, int_list

    add_common_arguments(parser, timing=False)
    parser.add_argument("--data-dir", default=None, help="folder holding fashion-mnist/ (default: $FNNJAX_DATA)")
    parser.add_argument("--preset", default="fast", help="the fnnjax train preset to run (default fast)")
    parser.add_argument(
        "--seeds",
        type=functools.partial(int_list, minimum=0),
        default=(0, 1, 2),
        help="comma-separated seeds (default 0,1,2)",
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated subset of {', '.join(METHODS)} (default: all; peers whose "
        "package is missing are skipped)",
    )
    parser.add_argument(
        "--target", type=float, default=TARGET_ACCURACY, help=f"the test accuracy to reach (default {TARGET_ACCURACY})"
    )
    parser.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (default 0: one per core)")


class _Clock:
    """Test accuracy against wall time since ``start``; the time the target is first reached."""

    def __init__(self, target: float, start: float):
        self.target, self.start, self.curve = target, start, []
        self.reached_s = self.reached_epoch = None

    def tick(self, test_acc: float) -> None:
        seconds = time.perf_counter() - self.start
        self.curve.append((seconds, float(test_acc)))
        if self.reached_s is None and test_acc >= self.target:
            self.reached_s, self.reached_epoch = seconds, len(self.curve)

    def record(self) -> dict:
        accs = [a for _, a in self.curve]
        return {
            "seconds_to_target": self.reached_s,
            "epoch_reached": self.reached_epoch,
            "final_test_acc": accs[-1],
            "best_test_acc": max(accs),
            "total_s": self.curve[-1][0],
            "curve": self.curve,
        }


def _initial(recipe, seed: int):
    """The command's init for a seed: (mlp, params, train_key, weights as numpy)."""
    import jax

    import fnnjax

    mlp = fnnjax.MLP(recipe.sizes, hidden="relu", output="softmax")
    init_key, train_key = jax.random.split(jax.random.key(seed))
    scheme, _, value = recipe.init.partition(":")
    options = {fnnjax.SCHEMES[scheme][0]: float(value)} if value else {}
    params = fnnjax.init_params(init_key, mlp, scheme, **options)
    return mlp, params, train_key, [(np.asarray(layer.W), np.asarray(layer.b)) for layer in params]


def _run_fit(recipe, seed: int, d, target: float) -> dict:
    import fnnjax
    from fnnjax.benchmarks._peers import optax_optimizer

    mlp, params, train_key, _ = _initial(recipe, seed)
    clock = _Clock(target, time.perf_counter())
    fnnjax.fit(
        mlp,
        params,
        (d["x"], d["y"]),
        optimizer=optax_optimizer(recipe, len(d["x"])),
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        key=train_key,
        dropout=recipe.dropout,
        eval={"test": (d["x_test"], d["y_test"])},
        callbacks=[lambda r, s: clock.tick(r["test_acc"])],
    )
    return clock.record()


def _run_command(preset: str, seed: int, folder: str | None, target: float, epochs: int | None) -> dict:
    from fnnjax.benchmarks._command import fit_callbacks
    from fnnjax.cli import main

    with tempfile.TemporaryDirectory(prefix="fnnjax-bench-tta-") as tmp:
        argv = [
            "train",
            "--preset",
            preset,
            "--seed",
            str(seed),
            "--data-dir",
            str(folder),
            "--quiet",
            "--out",
            str(Path(tmp) / "run"),
        ] + (["--epochs", str(epochs)] if epochs else [])
        clock = _Clock(target, time.perf_counter())
        with fit_callbacks(lambda r, s: clock.tick(r["test_acc"])), contextlib.redirect_stdout(io.StringIO()):
            status = main(argv)
        if status != 0:
            raise RuntimeError(f"fnnjax {' '.join(argv)} exited with status {status}")
        record = clock.record()
        record["total_s"] = time.perf_counter() - clock.start  # the command ends by writing its outputs
    return record


def _run_peer(name: str, recipe, seed: int, d, target: float, threads: int) -> dict:
    from . import _peers

    _, _, _, weights = _initial(recipe, seed)
    clock = _Clock(target, time.perf_counter())
    if name in ("torch_loop", "torch_compile"):
        loop = _peers.TorchLoop(
            d["x"], d["y"], weights, recipe, threads=threads, seed=seed, compile=name == "torch_compile"
        )
    elif name == "flax_nnx":
        loop = _peers.NnxLoop(d["x"], d["y"], weights, recipe, seed=seed)
    else:
        loop = _peers.EquinoxLoop(d["x"], d["y"], weights, recipe, seed=seed)
    for _ in range(recipe.epochs):
        loop.epoch()
        clock.tick(loop.evaluate(d["x_test"], d["y_test"]))
    return clock.record()


def _load(args):
    """The data as a dict of arrays, its description, and a folder the command can read."""
    from fnnjax import data

    if args.quick:
        rng = np.random.default_rng(0)
        y = rng.integers(0, 10, 3000).astype(np.int32)
        x = rng.random((3000, 784), dtype=np.float32) * 0.3
        for c in range(10):  # class c brightens rows 2c..2c+2: learnable in an epoch or two
            x[y == c, 56 * c : 56 * c + 84] += 0.6
        x = np.rint(x * 255) / np.float32(255)
        arrays = {"x": x[:2000], "y": y[:2000], "x_test": x[2000:], "y_test": y[2000:]}
        return arrays, "random look-alike (2000, 784)", None
    if args.data_dir is None and not os.environ.get(data.DATA_ENV_VAR):
        raise UsageError(
            "time_to_accuracy needs the real data set: pass --data-dir or set "
            f"${data.DATA_ENV_VAR} to the folder holding fashion-mnist/ (or use --quick)"
        )
    ds = data.load_fashion_mnist(args.data_dir)
    folder = args.data_dir if args.data_dir is not None else os.environ[data.DATA_ENV_VAR]
    return ({"x": ds.x_train, "y": ds.y_train, "x_test": ds.x_test, "y_test": ds.y_test}, "fashion-mnist", str(folder))


def _write_folder(d: dict, root: Path) -> str:
    from fnnjax.benchmarks.train import _Data, _write_idx_folder

    return _write_idx_folder(_Data(d["x"], d["y"], d["x_test"], d["y_test"], "", None), root)


def _seconds(r: dict) -> float:
    """A run's seconds to the target; a run that never reached it counts as infinitely long
    (DAWNBench's rule), so a median over seeds is defined whenever most runs reach it."""
    return math.inf if r["seconds_to_target"] is None else r["seconds_to_target"]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _summary(runs: dict[str, list[dict]], target: float) -> dict:
    out = {}
    torch = runs.get("torch_loop")
    for m, rs in runs.items():
        reached = [r for r in rs if r["seconds_to_target"] is not None]
        out[m] = {
            "runs": len(rs),
            "reached": len(reached),
            "median_seconds_to_target": _finite(statistics.median(_seconds(r) for r in rs)),
            "median_epoch_reached": _finite(
                statistics.median(math.inf if r["epoch_reached"] is None else r["epoch_reached"] for r in rs)
            ),
            "median_final_test_acc": statistics.median(r["final_test_acc"] for r in rs),
            "median_total_s": statistics.median(r["total_s"] for r in rs),
        }
        if torch and len(torch) == len(rs):  # paired by seed: torch_loop / method
            ratios = [
                _seconds(a) / _seconds(b)
                for a, b in zip(torch, rs)
                if math.isfinite(_seconds(a)) or math.isfinite(_seconds(b))
            ]
            if ratios:
                speedup = statistics.median(ratios)  # inf when torch mostly never reached it
                out[m]["speedup_vs_torch"] = _finite(speedup)
                out[m]["faster_than_torch"] = speedup > 1
    return out


def _targets(summary: dict, target: float, platform: str) -> dict:
    out = {}
    fnnjax = {m: s for m, s in summary.items() if m.startswith("fnnjax")}
    for m, s in fnnjax.items():
        t = {
            "median_final_test_acc": s["median_final_test_acc"],
            "accuracy_met": s["median_final_test_acc"] >= target,
            "median_seconds_to_target": s["median_seconds_to_target"],
        }
        if platform == "cpu":
            secs = s["median_seconds_to_target"]
            t["under_60_s"] = secs is not None and secs < TARGET_SECONDS
        if "faster_than_torch" in s:
            t["speedup_vs_torch"] = s["speedup_vs_torch"]
            t["faster_than_torch"] = s["faster_than_torch"]
        out[m] = t
    return out


def _plot(runs: dict[str, list[dict]], target: float, path: Path, title: str) -> Path:
    from fnnjax.benchmarks._plot import new_figure, save

    fig, axes = new_figure(1, 1, width=7.5, height=4.5)
    ax = axes[0, 0]
    for i, (m, rs) in enumerate(runs.items()):
        for k, r in enumerate(rs):
            t, a = zip(*r["curve"])
            ax.plot(t, a, marker="o", markersize=2.5, color=f"C{i}", linewidth=1, label=m if k == 0 else None)
    ax.axhline(target, color="k", linestyle=":", label=f"target {target}")
    lo = min(a for rs in runs.values() for r in rs for _, a in r["curve"])
    ax.set_ylim(max(lo, target - 0.08), None)
    ax.set_xlabel("wall seconds from start")
    ax.set_ylabel("test accuracy after the epoch")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save(fig, path)


def run(args) -> int:
    """Run every method for every seed; write the results; return 0."""
    from fnnjax.benchmarks._harness import result_name, write_results, wrote_line
    from fnnjax.presets import PRESETS

    from . import _peers

    methods, skipped = _checked_methods(args)
    d, source, folder = _load(args)
    recipe = _peers.Recipe.from_preset(args.preset, **({"epochs": 2} if args.quick else {}))
    seeds = args.seeds[:1] if args.quick else args.seeds
    import jax

    platform = jax.devices()[0].platform
    load_before = os.getloadavg()
    runs, failed = _run_all(args, methods, seeds, recipe, d, folder)
    load_after = os.getloadavg()
    summary = _summary(runs, args.target)
    targets = _targets(summary, args.target, platform)
    notes = {**skipped, **failed}
    table = _report(args, source, seeds, summary, targets, runs, notes, load_before, load_after)
    preset = PRESETS[args.preset]
    payload = {
        "preset": args.preset,
        "recipe": preset,
        "epochs": recipe.epochs,
        "target": args.target,
        "data": source,
        "seeds": list(seeds),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "summary": summary,
        "targets": targets,
        "runs": runs,
        "skipped": skipped,
        "failed": failed,
    }
    json_path, md_path = write_results(result_name("time_to_accuracy", args), payload, table, args.out)
    png = _plot(
        runs,
        args.target,
        Path(json_path).with_suffix(".png"),
        f"--preset {args.preset} on {source}: test accuracy against wall time",
    )
    print(table)
    print(wrote_line(json_path, md_path, png))
    return 0


def _report(args, source: str, seeds, summary, targets, runs, notes, load_before, load_after) -> str:
    """The Markdown report: the workload and the machine's load, the summary per method (``notes``:
    why a method has no runs), the targets and every run."""
    from fnnjax.benchmarks._harness import markdown_table
    from fnnjax.presets import PRESETS

    per_run = [
        {"method": m, "seed": r["seed"], **{k: v for k, v in r.items() if k not in ("seed", "curve")}}
        for m, rs in runs.items()
        for r in rs
    ]
    load = lambda v: ", ".join(f"{x:.1f}" for x in v)  # noqa: E731
    preset = PRESETS[args.preset]
    recipe_text = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in preset.items())
    lines = [
        f"Time to {args.target} test accuracy, {source}: `fnnjax train --preset {args.preset}` "
        f"({recipe_text}{', epochs 2 (quick)' if args.quick else ''}) and its peers on the same "
        f"recipe, from the same initial weights per seed, the test set evaluated after every "
        f"epoch; seconds from start (compilation included). Seeds {', '.join(map(str, seeds))}; "
        f"methods run one after the other per seed. Machine load average (1/5/15 min) before: "
        f"{load(load_before)}, after: {load(load_after)}; cores: {os.cpu_count()}.",
        "",
        markdown_table(
            [{"method": m, **s} for m, s in summary.items()]
            + [{"method": m, "runs": note} for m, note in notes.items()],
            [
                "method",
                "runs",
                "reached",
                "median_seconds_to_target",
                "median_epoch_reached",
                "median_final_test_acc",
                "median_total_s",
                "speedup_vs_torch",
            ],
        ),
        "",
        "### Targets",
        "",
        *_target_lines(targets, args.target),
        "",
        "### Every run",
        "",
        markdown_table(
            per_run,
            ["method", "seed", "seconds_to_target", "epoch_reached", "final_test_acc", "best_test_acc", "total_s"],
        ),
    ]
    return "\n".join(lines)


def _checked_methods(args) -> tuple[list[str], dict[str, str]]:
    """The methods to run (--methods less the peers not installed) and the skipped ones with why;
    --preset and --target checked."""
    from fnnjax.presets import PRESETS

    from . import _peers

    if args.preset not in PRESETS:
        raise UsageError(f"unknown --preset {args.preset!r}; valid presets are {', '.join(PRESETS)}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UsageError(f"unknown --methods {', '.join(unknown) or '(none)'}; valid methods are {', '.join(METHODS)}")
    if not 0 < args.target <= 1:
        raise UsageError(f"--target {args.target} must be an accuracy in (0, 1]")
    skipped = {
        m: f"skipped: {_peers.PEER_PACKAGES[m]} is not installed (pip install 'fnnjax[bench]')"
        for m in methods
        if m in _peers.PEER_PACKAGES and not _peers.available(m)
    }
    methods = [m for m in methods if m not in skipped]
    for m, note in skipped.items():
        print(f"time_to_accuracy: {m} {note}", file=sys.stderr)
    return methods, skipped


def _run_all(args, methods: list[str], seeds, recipe, d, folder) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Every method for every seed (the order reversed every other seed): the runs that finished,
    per method, and the methods that failed (torch_compile only) with why."""
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fnnjax-bench-tta-data-") as tmp:
        if folder is None and "fnnjax_train" in methods:
            folder = _write_folder(d, Path(tmp))
        for i, seed in enumerate(seeds):
            for m in methods if i % 2 == 0 else methods[::-1]:
                if m in failed:
                    continue
                print(f"time_to_accuracy: {m}, seed {seed} ...", file=sys.stderr)
                try:
                    if m == "fnnjax_fit":
                        r = _run_fit(recipe, seed, d, args.target)
                    elif m == "fnnjax_train":
                        r = _run_command(args.preset, seed, folder, args.target, recipe.epochs if args.quick else None)
                    else:
                        r = _run_peer(m, recipe, seed, d, args.target, args.torch_threads)
                except Exception as err:
                    if m != "torch_compile":
                        raise
                    failed[m] = f"failed to compile: {type(err).__name__}: {str(err).strip().splitlines()[0][:300]}"
                    continue
                runs[m].append({"seed": seed, **r})
                print(
                    f"  reached {args.target} after {r['seconds_to_target']} s (epoch {r['epoch_reached']}); "
                    f"final test acc {r['final_test_acc']:.4f}",
                    file=sys.stderr,
                )
    return {m: rs for m, rs in runs.items() if rs}, failed


def _target_lines(targets: dict, target: float) -> list[str]:
    """One Markdown bullet per judged method: each of its targets, met or not."""
    lines = []
    for m, t in targets.items():
        parts = [
            f"median final test accuracy {t['median_final_test_acc']:.4f} (>= {target}: "
            f"{'met' if t['accuracy_met'] else 'NOT met'})"
        ]
        if "under_60_s" in t:
            secs = t["median_seconds_to_target"]
            parts.append(
                f"median time to {target} {'never' if secs is None else f'{secs:.1f} s'} "
                f"(< {TARGET_SECONDS:g} s: {'met' if t['under_60_s'] else 'NOT met'})"
            )
        if "faster_than_torch" in t:
            speed = "infinitely" if t["speedup_vs_torch"] is None else f"{t['speedup_vs_torch']:.2f}x"
            parts.append(
                f"{speed} the PyTorch loop's speed, median over seeds (faster: "
                f"{'met' if t['faster_than_torch'] else 'NOT met'})"
            )
        lines.append(f"- {m}: " + "; ".join(parts))
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m fnnjax.benchmarks.time_to_accuracy [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m fnnjax.benchmarks.time_to_accuracy", description=(__doc__ or "").split("\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
