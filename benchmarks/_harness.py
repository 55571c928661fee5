"""Shared benchmark method: warm-up, ``block_until_ready``, median of repeats, compile time apart,
and results written as JSON plus a markdown table with the device, versions and sizes."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import jax

__all__ = ["Timing", "time_compiled", "time_call", "environment", "write_results", "markdown_table",
           "RESULTS_DIR"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


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
    return Timing(median_s=statistics.median(times), min_s=min(times), max_s=max(times),
                  repeats=repeats, compile_s=None)


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
        "jaxlib": jaxlib.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        import torch

        env["torch"] = torch.__version__
    except ImportError:
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
