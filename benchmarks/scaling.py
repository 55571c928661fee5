"""Data-parallel throughput: samples per second of one training epoch against the device count.

The workload is the notes' network (784-256-10 ReLU, softmax cross-entropy, SGD lr 0.1, batch
256, ``gradient="backprop"``) on random data of Fashion-MNIST's shape (``--samples`` rows; the
time per epoch does not depend on the pixel values), trained by :class:`fnnjax.Trainer` with
``devices=D`` for every D in ``--devices`` (D = 1 is the plain one-device program): each batch
split over D devices, params replicated, the gradient combined by XLA.

Method: one Trainer per D (compiled before timing; compile seconds reported apart); their epochs
run in alternation (``fnnjax.benchmarks._harness.time_interleaved``: round r runs one epoch of every D,
reversed order on odd rounds), 2 warm-up rounds then ``--repeats`` timed rounds. Reported per D:
median/min/max seconds per epoch, samples/s = N / median, and the speed-up over D = 1 (median of
per-round ratios). Results: ``benchmarks/results/scaling_<platform>.json`` and ``.md``.

On CPU the "devices" are XLA host devices carved out of the same cores
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``): they share the machine's cores and
memory bandwidth, so they do not add compute and the speed-up stays near (or below) 1; the CPU
result shows that the sharded program runs and what the collectives cost. Run it on a host with
several GPUs to measure real scaling (there ``jax.devices()`` lists them and no flag is needed).

Run: ``python -m fnnjax.benchmarks.scaling`` (sets the XLA flag itself when run this way on CPU) or
``fnnjax bench scaling`` (re-runs itself in a subprocess with the flag when the process has fewer
CPU devices than asked for); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

__all__ = ["add_arguments", "run", "main"]

SIZES = (784, 256, 10)
LR, BATCH = 0.1, 256
FLAG = "--xla_force_host_platform_device_count"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this benchmark's options (and the shared --quick, --out, --repeats, --tag) to ``parser``."""
    from fnnjax.benchmarks._harness import add_common_arguments, int_list

    add_common_arguments(parser, default_repeats=20)
    parser.add_argument(
        "--devices",
        type=int_list,
        default=(1, 2, 4, 8),
        help="device counts to compare, comma-separated (default 1,2,4,8)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=15360,
        help="training samples N (default 15360 = 60 batches of 256; --quick: 2048)",
    )


def _with_host_devices(argv: list[str], count: int) -> int:
    """Run this benchmark again in a fresh Python whose XLA has ``count`` CPU host devices."""
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {FLAG}={count}".strip())
    cmd = [sys.executable, "-m", "fnnjax.benchmarks.scaling", *argv]
    return subprocess.run(cmd, env=env, check=False).returncode


def _argv(args) -> list[str]:
    argv = [
        "--devices",
        ",".join(map(str, args.devices)),
        "--samples",
        str(args.samples),
        "--repeats",
        str(args.repeats),
        "--out",
        str(args.out),
    ]
    if args.tag:
        argv += ["--tag", args.tag]
    return argv + (["--quick"] if args.quick else [])


def _trainer(x, y, devices: int, epochs: int):
    import jax
    import optax

    import fnnjax

    mlp = fnnjax.MLP(SIZES, hidden="relu", output="softmax")
    params = fnnjax.init_params(jax.random.key(0), mlp, std=0.01)
    return fnnjax.Trainer(
        mlp,
        params,
        (x, y),
        optimizer=optax.sgd(LR),
        epochs=epochs,
        batch_size=BATCH,
        key=jax.random.key(1),
        devices=devices,
    )


def run(args) -> int:
    """Measure, print the table, write the results; returns 0."""
    import jax

    from fnnjax.benchmarks._harness import (
        markdown_table,
        result_name,
        time_interleaved,
        write_results,
        wrote_line,
    )
    from fnnjax.errors import UsageError

    if args.quick:
        args.samples, args.repeats = min(args.samples, 2048), min(args.repeats, 3)
    if args.samples < BATCH:
        raise UsageError(f"--samples {args.samples} is below the batch size {BATCH}; use >= {BATCH}")
    need = max(args.devices)
    if jax.device_count() < need:
        if jax.devices()[0].platform == "cpu" and FLAG not in os.environ.get("XLA_FLAGS", ""):
            return _with_host_devices(_argv(args), need)
        raise UsageError(
            f"--devices asks for {need} devices but only {jax.device_count()} are "
            f"available; on CPU set XLA_FLAGS={FLAG}={need} before jax is imported"
        )
    rng = np.random.default_rng(0)
    x = rng.random((args.samples, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], args.samples).astype(np.int32)
    warmup = 2
    trainers = {d: _trainer(x, y, d, args.repeats + warmup) for d in args.devices}
    timings = time_interleaved(
        {d: (lambda t=t: next(t)) for d, t in trainers.items()}, repeats=args.repeats, warmup=warmup
    )
    base = args.devices[0]
    rows = _rows(trainers, timings, base, args.samples)
    columns = [
        "devices",
        "median_s",
        "min_s",
        "max_s",
        "samples_per_s",
        f"speedup_vs_{base}",
        "compile_s",
        "final_train_loss",
    ]
    table = markdown_table(rows, columns)
    note = (
        ""
        if jax.devices()[0].platform != "cpu"
        else "\n\nCPU host devices share the same cores: no speed-up is expected here; the numbers "
        "show the sharded program runs and what its collectives cost."
    )
    data = {
        "workload": {
            "sizes": list(SIZES),
            "samples": args.samples,
            "batch_size": BATCH,
            "lr": LR,
            "gradient": "backprop",
            "steps_per_epoch": -(-args.samples // BATCH),
        },
        "repeats": args.repeats,
        "results": rows,
    }
    name = result_name("scaling", args)
    json_path, md_path = write_results(name, data, table + note, args.out)
    print(table + note)
    print(wrote_line(json_path, md_path))
    return 0


def _rows(trainers: dict, timings: dict, base: int, samples: int) -> list[dict]:
    """One result row per device count: its epoch times, throughput and speedup over ``base`` devices."""
    from fnnjax.benchmarks._harness import paired_ratio

    rows = []
    for d, t in trainers.items():
        tm = timings[d]
        rows.append(
            {
                "devices": d,
                "median_s": tm["median_s"],
                "min_s": tm["min_s"],
                "max_s": tm["max_s"],
                "samples_per_s": samples / tm["median_s"],
                "compile_s": t.compile_seconds,
                f"speedup_vs_{base}": paired_ratio(timings[base]["times_s"], tm["times_s"]),
                "final_train_loss": t.history.epochs[-1]["train_loss"],
                "times_s": tm["times_s"],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m fnnjax.benchmarks.scaling [options]``; on CPU gives this process 8 host devices."""
    if "jax" not in sys.modules and FLAG not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FLAG}=8".strip()
    parser = argparse.ArgumentParser(
        prog="python -m fnnjax.benchmarks.scaling", description=(__doc__ or "").split("\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
