"""Shared benchmark method: warm-up, ``block_until_ready``, median of repeats, compile time apart,
and results written as JSON plus a markdown table with the device, versions and sizes."""

from __future__ import annotations

import importlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from fnnjax.cli import wrote_line

__all__ = [
    "Timing",
    "time_compiled",
    "time_call",
    "environment",
    "write_results",
    "markdown_table",
    "RESULTS_DIR",
    "OUT_HELP",
    "wrote_line",
    "compile_timed",
    "memory_stats",
    "flop_count",
    "time_interleaved",
    "add_common_arguments",
    "result_name",
    "paired_ratio",
    "int_list",
]

RESULTS_DIR = Path("benchmarks", "results")
"""Where results go without ``--out``: ``benchmarks/results`` under the current directory (from a
checkout's root, the folder of the committed results; elsewhere, a new folder where the user stands;
never inside the installed package)."""

OUT_HELP = (
    "directory for the JSON, markdown and PNG results (default: ./benchmarks/results, under the "
    "current directory: from a checkout's root, where the committed results are)"
)
"""The ``--out`` help every benchmark shares."""


class Timing(dict):
    """``{"median_s", "min_s", "max_s", "repeats", "compile_s"}`` (a dict, so it serialises)."""


def _block(out):
    return jax.block_until_ready(out)


def time_call(fn: Callable[[], Any], *, repeats: int = 20, warmup: int = 2) -> Timing:
    """Time ``fn()`` (already compiled or plain Python): warm up, then ``repeats`` timed calls."""
    for _ in range(warmup):
        _block(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - t0)
    return Timing(
        median_s=statistics.median(times), min_s=min(times), max_s=max(times), repeats=repeats, compile_s=None
    )


def time_compiled(fn: Callable, *args, repeats: int = 20, warmup: int = 2, static_argnums=()) -> Timing:
    """Compile ``jax.jit(fn)`` ahead of time for ``args`` (compile time recorded apart), then time it."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn, static_argnums=static_argnums).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    dyn = [a for i, a in enumerate(args) if i not in static_argnums]
    timing = time_call(lambda: compiled(*dyn), repeats=repeats, warmup=warmup)
    timing["compile_s"] = compile_s
    return timing


def environment() -> dict:
    """The device, versions and machine a result was measured on."""
    import jaxlib
    import numpy

    dev = jax.devices()[0]
    env = {
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
        "device_count": jax.device_count(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.version.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for name in ("torch", "flax", "equinox", "optax"):  # the peers' libraries, where installed
        try:
            env[name] = importlib.import_module(name).__version__
        except (ImportError, AttributeError):
            pass
    return env


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """A markdown table of ``rows`` (dicts) with the given columns; floats get 4 significant digits."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_results(name: str, data: dict, table: str, out_dir: Path | str | None = None) -> tuple[Path, Path]:
    """Write ``NAME.json`` (data + environment) and ``NAME.md`` (environment + table); return paths."""
    out = Path(out_dir) if out_dir is not None else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    payload = {"benchmark": name, "environment": env, **data}
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    header = ", ".join(f"{k} {v}" for k, v in env.items())
    md_path.write_text(f"# {name}\n\n{header}\n\n{table}\n")
    return json_path, md_path


# ----------------------------------------------------------------------------------------------
# Extensions (helper C): compile apart with the compiled object kept (for XLA's memory and cost
# analyses), interleaved timing of several functions, and the arguments every benchmark shares.


def compile_timed(fn: Callable, *args, static_argnums=()) -> tuple[Any, float]:
    """``(compiled, seconds)``: ``jax.jit(fn).lower(*args).compile()`` and how long it took.

    Call the compiled object with the non-static arguments only.
    """
    t0 = time.perf_counter()
    compiled = jax.jit(fn, static_argnums=static_argnums).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def memory_stats(compiled) -> dict | None:
    """XLA's memory analysis of a compiled function, in bytes (None where the backend has none).

    ``peak_bytes = argument + output + temp - alias``: XLA packs every temporary buffer into one
    scratch block sized by its buffer assignment (``temp``), so this is the memory the call holds
    at its peak (inputs, outputs and that block). ``xla_peak_bytes`` is the backend's own
    ``peak_memory_in_bytes`` where it reports one (on CPU it omits the scratch block).
    """
    try:
        m = compiled.memory_analysis()
    except (NotImplementedError, RuntimeError, AttributeError):
        return None
    if m is None:
        return None
    stats: dict[str, Any] = {
        "argument_bytes": int(m.argument_size_in_bytes),
        "output_bytes": int(m.output_size_in_bytes),
        "temp_bytes": int(m.temp_size_in_bytes),
        "alias_bytes": int(m.alias_size_in_bytes),
    }
    stats["peak_bytes"] = stats["argument_bytes"] + stats["output_bytes"] + stats["temp_bytes"] - stats["alias_bytes"]
    xla_peak = getattr(m, "peak_memory_in_bytes", None)
    stats["xla_peak_bytes"] = int(xla_peak) if xla_peak is not None else None
    return stats


def flop_count(compiled) -> float | None:
    """The floating-point operations XLA's cost analysis counts for one call (None if unknown)."""
    try:
        cost = compiled.cost_analysis()
    except (NotImplementedError, RuntimeError, AttributeError):
        return None
    if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        return None
    return float(cost["flops"])


def time_interleaved(fns: dict[str, Callable[[], Any]], *, repeats: int = 20, warmup: int = 2) -> dict[str, Timing]:
    """Time several functions in alternation, so that drift in the machine's load hits all alike.

    Round r calls every function once, in the given order on even rounds and reversed on odd
    ones (so none is always first). Each Timing also holds the raw ``times_s`` (one per round, so
    ``times_s[i]`` of two functions are a pair measured side by side).
    """
    for _ in range(warmup):
        for fn in fns.values():
            _block(fn())
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        for k in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            _block(fns[k]())
            times[k].append(time.perf_counter() - t0)
    return {
        k: Timing(median_s=statistics.median(v), min_s=min(v), max_s=max(v), repeats=repeats, compile_s=None, times_s=v)
        for k, v in times.items()
    }


def add_common_arguments(parser, *, default_repeats: int = 20, timing: bool = True) -> None:
    """The arguments every benchmark takes: ``--quick``, ``--out``, ``--tag``, and ``--repeats``
    for the timing benchmarks (``timing=False`` leaves it out)."""
    parser.add_argument(
        "--quick", action="store_true", help="a small version that runs in well under a minute (smoke test)"
    )
    parser.add_argument("--out", default=str(RESULTS_DIR), help=OUT_HELP)
    if timing:
        parser.add_argument(
            "--repeats",
            type=int,
            default=default_repeats,
            help="timed calls per measurement, median reported (>= 20; default %(default)s)",
        )
    parser.add_argument(
        "--tag", default=None, help="suffix of the result names (default: the JAX platform, e.g. cpu or gpu)"
    )


def result_name(name: str, args) -> str:
    """``NAME_TAG`` (``NAME_TAG_quick`` for ``--quick``), TAG defaulting to the JAX platform."""
    tag = args.tag or jax.devices()[0].platform
    return f"{name}_{tag}" + ("_quick" if args.quick else "")


def paired_ratio(times_a, times_b) -> float:
    """The median over rounds of ``times_a[i] / times_b[i]`` (the ``times_s`` of one
    :func:`time_interleaved` call: both measured in round i, so drift in the load cancels)."""
    if len(times_a) != len(times_b) or not times_a:
        raise ValueError(f"paired timings need equal, non-zero lengths, got {len(times_a)} and {len(times_b)}")
    return statistics.median(a / b for a, b in zip(times_a, times_b))


def int_list(text: str, minimum: int = 1) -> tuple[int, ...]:
    """argparse type: comma-separated integers >= ``minimum`` (default 1: positive), e.g. ``1,4,16``;
    ``functools.partial(int_list, minimum=0)`` also admits 0 (seeds)."""
    import argparse

    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,4,16, got {text!r}") from None
    if not values or any(v < minimum for v in values):
        raise argparse.ArgumentTypeError(f"every value must be an integer >= {minimum}, got {text!r}")
    return values
