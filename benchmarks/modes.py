"""Forward vs reverse mode for the input Jacobian of an MLP f: R^n -> R^m as n grows (F21).

``python -m fnnjax.benchmarks.modes [--quick] [--out DIR]`` (or ``fnnjax bench modes``) times, for a tanh
MLP ``n -> width^depth -> m``, one evaluation of f, one jvp (J v), one vjp (u^T J, forward pass
included), the full Jacobian by ``jax.jacfwd`` (n jvps, vmapped) and by ``jax.jacrev`` (m vjps),
for one input and for B inputs under ``jax.vmap``; and the input Hessian of a scalar f
forward-over-reverse, reverse-over-reverse and reverse-over-forward.

What theory predicts, and what is fitted. One pass of either mode costs a small constant times
one evaluation of f, so time is measured in *passes*: ``t(method) / t(f)`` at the same n.

- jacfwd: n passes, so ``t/t_f ~ n``: slope 1 against n. jacrev: m passes, independent of n:
  slope 0 (F21). One jvp or one vjp: slope 0.
- The absolute time adds the slope of f itself, which is not 0: f's first layer costs
  ``width * n`` of its ``width * (n + (depth-1) * width + m)`` multiply-adds, so f's own slope goes
  from 0 (n << depth * width) to 1 (n >> depth * width), and jacfwd's absolute slope from 1 to 2.
  The fitted passes slope removes that; the tables give both, and the slope of XLA's own flop
  count (from ``compiled.cost_analysis()``), which follows the theory exactly.
- Crossover: jacfwd costs ~ n c_fwd passes, jacrev ~ 1 + m c_rev, so reverse mode wins from
  n* ~ m (times c_rev / c_fwd): n* grows with slope 1 against m.
- Hessians (n x n, scalar f): forward-over-reverse = n jvps of the gradient, reverse-over-reverse
  = n vjps of the gradient: n passes each, slope 1. Reverse-over-forward differentiates in reverse
  the n-tangent forward pass: n cotangents times n tangents through every hidden layer, slope 2
  while the hidden layers dominate f (n < depth * width), and memory ~ n^2 width depth.

Under ``jax.vmap`` (B inputs) jacfwd is cheaper than B separate Jacobians: the first layer's
tangents ``W^(1) e_i`` do not depend on the input, so the vmapped program computes them once for
the whole batch. Its passes ratio is then ~n for n << B * depth * width and ~n / B beyond, with a
dip of up to ~2 in between, so its slope approaches 1 only asymptotically (XLA's flop count shows
the same); single-input jacfwd has exactly n passes.

Small sizes are dominated by a fixed per-call cost (dispatch, ~10 us on CPU, more on a GPU), so
every ratio is ~1 and every slope ~0 there; each slope is therefore fitted over the largest
sizes, from the smallest size from which it holds within ``--tol`` (reported as "from n").

Peak memory of every compiled function comes from XLA's memory analysis (no run needed), also
against depth (reverse mode stores the activations of every layer: its memory grows with depth).
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import jax
from tqdm import tqdm

import fnnjax
from fnnjax.cli import show_progress
from fnnjax.errors import UsageError

from . import _fit, _harness, _plot

__all__ = [
    "JACOBIAN_METHODS",
    "HESSIAN_METHODS",
    "PASSES_SLOPE",
    "add_arguments",
    "run",
    "main",
    "network",
    "jacobian_functions",
    "hessian_functions",
    "analyse",
]

JACOBIAN_METHODS = ("f", "jvp", "vjp", "jacfwd", "jacrev")
"""What is timed for the Jacobian: f itself (the unit of cost), one jvp, one vjp, the two Jacobians."""

HESSIAN_METHODS = ("f", "fwd_over_rev", "rev_over_rev", "rev_over_fwd")
"""What is timed for the Hessian of a scalar f: f itself and the three compositions."""

PASSES_SLOPE = {
    "jvp": 0.0,
    "vjp": 0.0,
    "jacfwd": 1.0,
    "jacrev": 0.0,
    "fwd_over_rev": 1.0,
    "rev_over_rev": 1.0,
    "rev_over_fwd": 2.0,
}
"""Theory: the slope of ``t(method) / t(f)`` against n (see the module docstring)."""

CROSSOVER_FACTOR = 4.0
"""Tolerance on the crossover: n* within this factor of m (a jvp and a vjp cost different constants)."""

N_STAR_SLOPE_TOL = 0.3
"""Tolerance on the slope of n* against m (theory 1; three values of m, so a loose one)."""

FULL = dict(
    ns=tuple(4**k for k in range(8)),
    ms=(1, 10, 100),
    width=128,
    depth=2,
    hessian_ns=tuple(4**k for k in range(7)),
    memory_depths=(1, 2, 4, 8, 16),
    memory_n=1024,
)
QUICK = dict(ns=(1, 16, 256), ms=(2,), width=32, depth=1, hessian_ns=(1, 16), memory_depths=(1, 2), memory_n=64)


# ----------------------------------------------------------------------------------------------
# The functions under test (params are arguments, never closed-over constants XLA could fold)


def network(n: int, m: int, width: int, depth: int, *, key) -> tuple[fnnjax.MLP, fnnjax.Params]:
    """The tanh MLP ``n -> width (depth times) -> m`` with identity output and Xavier weights."""
    mlp = fnnjax.MLP((n,) + (width,) * depth + (m,), hidden="tanh", output="identity")
    return mlp, fnnjax.init_params(key, mlp, "xavier")


def jacobian_functions(mlp: fnnjax.MLP) -> dict:
    """name -> (fn(params, x, ...), names of its array inputs), for one input x: (n,)."""

    def f(p, x):
        return fnnjax.forward(mlp, p, x)

    def jvp(p, x, v):
        return jax.jvp(functools.partial(f, p), (x,), (v,))

    def vjp(p, x, u):
        y, pullback = jax.vjp(functools.partial(f, p), x)
        return y, pullback(u)[0]

    def jacfwd(p, x):
        return jax.jacfwd(functools.partial(f, p))(x)

    def jacrev(p, x):
        return jax.jacrev(functools.partial(f, p))(x)

    return {
        "f": (f, ("x",)),
        "jvp": (jvp, ("x", "v")),
        "vjp": (vjp, ("x", "u")),
        "jacfwd": (jacfwd, ("x",)),
        "jacrev": (jacrev, ("x",)),
    }


def hessian_functions(mlp: fnnjax.MLP) -> dict:
    """name -> (fn(params, x), ("x",)) for the input Hessian of the scalar ``f(x)[0]``."""

    def s(p, x):
        return fnnjax.forward(mlp, p, x)[0]

    def compose(outer, inner):
        return lambda p, x: outer(inner(functools.partial(s, p)))(x)

    return {
        "f": (s, ("x",)),
        "fwd_over_rev": (compose(jax.jacfwd, jax.jacrev), ("x",)),
        "rev_over_rev": (compose(jax.jacrev, jax.jacrev), ("x",)),
        "rev_over_fwd": (compose(jax.jacrev, jax.jacfwd), ("x",)),
    }


def _inputs(names, n: int, m: int, batch: int | None, *, key) -> tuple:
    widths = {"x": n, "v": n, "u": m}
    keys = jax.random.split(key, len(names))
    shape = (lambda w: (w,)) if batch is None else (lambda w: (batch, w))
    return tuple(jax.random.normal(k, shape(widths[a])) for k, a in zip(keys, names))


def _batched(fn, names, batch: int | None):
    if batch is None:
        return fn
    return jax.vmap(fn, in_axes=(None,) + (0,) * len(names))


# ----------------------------------------------------------------------------------------------
# Measuring


def _measure_point(fns: dict, params, arrays: dict, cut: dict, opts) -> dict:
    """Compile every method (memory and flops even for methods cut from timing), time the rest."""
    rows, calls = {}, {}
    for name, fn in fns.items():
        compiled, compile_s = _harness.compile_timed(fn, params, *arrays[name])
        mem = _harness.memory_stats(compiled) or {}
        rows[name] = dict(
            method=name,
            median_s=None,
            min_s=None,
            max_s=None,
            repeats=None,
            passes=None,
            compile_s=compile_s,
            flops=_harness.flop_count(compiled),
            peak_bytes=mem.get("peak_bytes"),
            temp_bytes=mem.get("temp_bytes"),
            skipped=cut.get(name),
        )
        if rows[name]["skipped"] is None and (mem.get("peak_bytes") or 0) > opts.max_memory_mb * 2**20:
            rows[name]["skipped"] = (
                f"peak memory {mem['peak_bytes'] / 2**20:.0f} MiB > --max-memory-mb {opts.max_memory_mb:g}"
            )
        if rows[name]["skipped"] is None:
            args = (params, *arrays[name])
            calls[name] = functools.partial(compiled, *args)
    if calls:
        timings = _harness.time_interleaved(calls, repeats=opts.repeats)
        for name, timing in timings.items():
            rows[name].update({k: timing[k] for k in ("median_s", "min_s", "max_s", "repeats")})
            if "f" in timings:  # paired with f in the same round, so load drift cancels
                rows[name]["passes"] = _harness.paired_ratio(timing["times_s"], timings["f"]["times_s"])
    return rows


def _sweep(kind: str, mode: str, m: int, ns, build, opts, bar) -> list[dict]:
    """Measure one curve family over ns; a method whose call exceeds --max-call-s (or whose memory
    exceeds --max-memory-mb) is timed no further (larger n cost more), and says so."""
    records, cut = [], {}
    batch = opts.batch if mode == "batched" else None
    for n in ns:
        key = jax.random.fold_in(jax.random.key(opts.seed), n * 1000 + m)
        mlp, params, table = build(n, key)
        fns = {k: _batched(fn, names, batch) for k, (fn, names) in table.items()}
        arrays = {k: _inputs(names, n, m, batch, key=jax.random.fold_in(key, 1)) for k, (_, names) in table.items()}
        rows = _measure_point(fns, params, arrays, cut, opts)
        for name, row in rows.items():
            records.append(dict(kind=kind, mode=mode, m=m, n=n, batch=batch or 1, **row))
            if name not in cut:
                if row["skipped"] is not None:
                    cut[name] = row["skipped"] + f" at n = {n}"
                elif row["median_s"] > opts.max_call_s:
                    cut[name] = f"n = {n} took {row['median_s']:.3g} s > --max-call-s {opts.max_call_s:g}"
        bar.update(1)
    return records


def _memory_vs_depth(opts) -> list[dict]:
    """Compile only: XLA's memory analysis of each method against depth, batched, m = 10."""
    records = []
    n, m, batch = opts.memory_n, 10, opts.batch
    for depth in opts.memory_depths:
        mlp, params = network(n, m, opts.width, depth, key=jax.random.key(opts.seed))
        for name, (fn, names) in jacobian_functions(mlp).items():
            arrays = _inputs(names, n, m, batch, key=jax.random.key(1))
            compiled, _ = _harness.compile_timed(_batched(fn, names, batch), params, *arrays)
            mem = _harness.memory_stats(compiled) or {}
            records.append(
                dict(
                    kind="memory_depth",
                    depth=depth,
                    n=n,
                    m=m,
                    batch=batch,
                    method=name,
                    peak_bytes=mem.get("peak_bytes"),
                    temp_bytes=mem.get("temp_bytes"),
                )
            )
    return records


# ----------------------------------------------------------------------------------------------
# Analysis


def _curve(records, kind, mode, m, method, field="median_s"):
    rows = sorted(
        (r for r in records if r["kind"] == kind and r["mode"] == mode and r["m"] == m and r["method"] == method),
        key=lambda r: r["n"],
    )
    return [r["n"] for r in rows], [r[field] for r in rows]


def _ratio(a, b):
    return [None if (u is None or v is None) else u / v for u, v in zip(a, b)]


def _slope_or_none(x, y):
    try:
        return _fit.loglog_fit(x, y)
    except ValueError:
        return None


def analyse_curves(records, kind, mode, m, methods, tol) -> list[dict]:
    """One summary row per method: fitted slopes (passes, absolute, f, XLA flops) vs theory."""
    ns, tf = _curve(records, kind, mode, m, "f")
    _, ff = _curve(records, kind, mode, m, "f", "flops")
    rows = []
    for method in methods:
        if method == "f":
            continue
        _, t = _curve(records, kind, mode, m, method)
        _, fl = _curve(records, kind, mode, m, method, "flops")
        _, passes = _curve(records, kind, mode, m, method, "passes")
        expected = PASSES_SLOPE[method]
        tail = _fit.fit_from(ns, passes, expected, tol)
        measured = [n for n, v in zip(ns, passes) if v is not None]
        if tail is None:  # report the slope over the largest sizes measured
            last = measured[-3:]
            shown = _slope_or_none(last, [passes[ns.index(n)] for n in last]) if len(last) >= 2 else None
            lo = last[0] if last else None
        else:
            shown, lo = tail, tail.x_min
        in_range = [i for i, v in enumerate(t) if v is not None][-3:]  # the largest sizes timed
        abs_fit = _slope_or_none([ns[i] for i in in_range], [t[i] for i in in_range])
        f_fit = _slope_or_none([ns[i] for i in in_range], [tf[i] for i in in_range])
        big = ns[len(ns) // 2 :]  # the asymptotic half, measured or not: XLA counts every size
        flop_fit = _slope_or_none(big, _ratio(fl, ff)[len(ns) // 2 :])
        rows.append(
            dict(
                kind=kind,
                mode=mode,
                m=m,
                method=method,
                theory_passes_slope=expected,
                passes_slope=None if shown is None else shown.slope,
                holds=tail is not None,
                from_n=None if lo is None else int(lo),
                to_n=None if shown is None else int(shown.x_max),
                time_slope=None if abs_fit is None else abs_fit.slope,
                f_slope=None if f_fit is None else f_fit.slope,
                flops_ratio_slope=None if flop_fit is None else flop_fit.slope,
                flops_range=[big[0], big[-1]],
                measured_up_to=measured[-1] if measured else None,
            )
        )
    return rows


def analyse(records: list[dict], tol: float) -> dict:
    """Slopes for every curve, crossovers n*(m) of jacfwd vs jacrev, and n* against m."""
    slopes, crossings = [], []
    jac = [r for r in records if r["kind"] == "jacobian"]
    modes = sorted({r["mode"] for r in jac}, reverse=True)  # single, batched
    ms = sorted({r["m"] for r in jac})
    for mode in modes:
        for m in ms:
            slopes += analyse_curves(records, "jacobian", mode, m, JACOBIAN_METHODS, tol)
            ns, t_fwd = _curve(records, "jacobian", mode, m, "jacfwd", "passes")
            _, t_rev = _curve(records, "jacobian", mode, m, "jacrev", "passes")
            try:
                c = _fit.crossover(ns, t_fwd, t_rev)
            except ValueError:
                c = _fit.Crossover(None, "not measured")
            ratio = None if c.x is None else c.x / m
            crossings.append(
                dict(
                    mode=mode,
                    m=m,
                    n_star=c.x,
                    status=c.status,
                    n_star_over_m=ratio,
                    within_factor=None if ratio is None else bool(1 / CROSSOVER_FACTOR <= ratio <= CROSSOVER_FACTOR),
                )
            )
    if any(r["kind"] == "hessian" for r in records):
        slopes += analyse_curves(records, "hessian", "single", 1, HESSIAN_METHODS, tol)
    against_m = {}
    for mode in modes:
        pts = [(c["m"], c["n_star"]) for c in crossings if c["mode"] == mode and c["n_star"]]
        fit = _slope_or_none([p[0] for p in pts], [p[1] for p in pts]) if len(pts) >= 2 else None
        against_m[mode] = None if fit is None else fit.slope
    holds_m = {k: None if v is None else bool(abs(v - 1.0) <= N_STAR_SLOPE_TOL) for k, v in against_m.items()}
    return dict(
        tolerance=tol, slopes=slopes, crossovers=crossings, n_star_slope_vs_m=against_m, n_star_slope_holds=holds_m
    )


# ----------------------------------------------------------------------------------------------
# Output


def _fmt_bytes(b):
    return None if b is None else b / 2**20


def _tables(records, summary, opts) -> str:
    parts = []
    parts.append(
        f"Network: tanh MLP n -> {opts.width} x {opts.depth} -> m, float32; batched = "
        f"jax.vmap over B = {opts.batch} inputs. Times: median of {opts.repeats} interleaved "
        f"calls after warm-up; compile time apart (JSON). Slope tolerance: +-{opts.tol}."
    )
    parts.append(
        "### Slopes against n\n\n`passes` = t(method)/t(f), the median over rounds of the "
        "ratio to f timed in the same round; `theory_passes_slope` from the module docstring; "
        "`passes_slope` fitted over `range` = from the smallest n from which it stays within "
        "tolerance (`holds`), or, where it does not, over the largest 3 measured sizes; "
        "`time_slope` and `f_slope`: slopes of the absolute times of the method and of f over "
        "the largest 3 sizes the method was timed at (asymptotically, time slope = f slope + passes "
        "slope); `flops_ratio_slope`: the slope of "
        "XLA's flop-count ratio (cost analysis, no timing) over the larger half of the sizes."
    )
    rows = [
        dict(r, holds="yes" if r["holds"] else "NO", range=f"{r['from_n']}..{r['to_n']}" if r["to_n"] else None)
        for r in summary["slopes"]
    ]
    parts.append(
        _harness.markdown_table(
            rows,
            [
                "kind",
                "mode",
                "m",
                "method",
                "theory_passes_slope",
                "passes_slope",
                "holds",
                "range",
                "time_slope",
                "f_slope",
                "flops_ratio_slope",
                "measured_up_to",
            ],
        )
    )
    parts.append(
        "### Crossover n* (jacrev faster than jacfwd from n*)\n\nTheory: n* ~ m, held to "
        f"n*/m within a factor {CROSSOVER_FACTOR:g}, and a slope of n* against m of 1 +- "
        f"{N_STAR_SLOPE_TOL:g}. Fitted slope of n* against m: "
        + ", ".join(f"{k}: {'-' if v is None else f'{v:.2f}'}" for k, v in summary["n_star_slope_vs_m"].items())
    )
    parts.append(
        _harness.markdown_table(
            summary["crossovers"], ["mode", "m", "n_star", "n_star_over_m", "within_factor", "status"]
        )
    )
    parts.append("### Median time (microseconds) and peak memory (MiB, XLA memory analysis)")
    parts.extend(_time_memory_tables(records))
    mem = [r for r in records if r["kind"] == "memory_depth"]
    if mem:
        parts.append(_depth_memory_table(mem))
    return "\n\n".join(parts)


def _time_memory_tables(records) -> list[str]:
    """One table of median times and peak memory per kind, mode and m; then why a method was not timed."""
    parts = []
    for kind, methods in (("jacobian", JACOBIAN_METHODS), ("hessian", HESSIAN_METHODS)):
        keys = sorted(
            {(r["mode"], r["m"]) for r in records if r["kind"] == kind}, key=lambda k: (k[0] != "single", k[1])
        )
        for mode, m in keys:
            ns = sorted({r["n"] for r in records if r["kind"] == kind and r["mode"] == mode and r["m"] == m})
            table = []
            for n in ns:
                row = {"n": n}
                for r in records:
                    if r["kind"] == kind and r["mode"] == mode and r["m"] == m and r["n"] == n:
                        row[f"{r['method']} us"] = "skip" if r["median_s"] is None else r["median_s"] * 1e6
                        if r["method"] != "f":
                            row[f"{r['method']} MiB"] = _fmt_bytes(r["peak_bytes"])
                table.append(row)
            cols = ["n"] + [f"{k} us" for k in methods] + [f"{k} MiB" for k in methods if k != "f"]
            parts.append(f"**{kind}, {mode}, m = {m}**\n\n" + _harness.markdown_table(table, cols))
    first_skip = {}
    for r in sorted((r for r in records if r.get("skipped")), key=lambda r: r["n"]):
        first_skip.setdefault((r["kind"], r["mode"], r["m"], r["method"]), r["skipped"])
    if first_skip:
        parts.append(
            "Not timed (`skip` above; larger n only cost more):\n\n"
            + "\n".join(f"- {k} {mo} m={m} {me}: {why}" for (k, mo, m, me), why in first_skip.items())
        )
    return parts


def _depth_memory_table(mem: list[dict]) -> str:
    """Peak and temporary memory of every Jacobian method against depth (the memory_depth records)."""
    depths = sorted({r["depth"] for r in mem})
    table = [
        {
            "depth": d,
            **{f"{r['method']} MiB": _fmt_bytes(r["peak_bytes"]) for r in mem if r["depth"] == d},
            **{f"{r['method']} temp KiB": r["temp_bytes"] / 1024 for r in mem if r["depth"] == d},
        }
        for d in depths
    ]
    r0 = mem[0]
    return (
        f"### Peak memory against depth (n = {r0['n']}, m = {r0['m']}, B = {r0['batch']}; "
        "compile only)\n\n"
        + _harness.markdown_table(
            table, ["depth"] + [f"{k} MiB" for k in JACOBIAN_METHODS] + [f"{k} temp KiB" for k in JACOBIAN_METHODS]
        )
    )


def _plots(records, summary, out: Path, name: str) -> list[Path]:
    paths = _jacobian_plots(records, summary, out, name)
    paths.append(_hessian_memory_plot(records, summary, out, name))
    return paths


def _jacobian_plots(records, summary, out: Path, name: str) -> list[Path]:
    """Time and passes of every Jacobian method against n, one panel per mode and m."""
    paths = []
    jac = [r for r in records if r["kind"] == "jacobian"]
    modes = sorted({r["mode"] for r in jac}, reverse=True)
    ms = sorted({r["m"] for r in jac})
    fit_of = {(s["kind"], s["mode"], s["m"], s["method"]): s for s in summary["slopes"]}
    cross = {(c["mode"], c["m"]): c["n_star"] for c in summary["crossovers"]}
    batch = max(r["batch"] for r in jac)
    for what, fname in (("time", f"{name}.png"), ("passes", f"{name}_passes.png")):
        fig, axes = _plot.new_figure(len(ms), len(modes))  # a row per m, the modes side by side
        for i, mode in enumerate(modes):
            for j, m in enumerate(ms):
                ns, tf = _curve(records, "jacobian", mode, m, "f")
                curves, fits = {}, {}
                for method in JACOBIAN_METHODS:
                    if what == "passes" and method == "f":
                        continue
                    _, t = _curve(records, "jacobian", mode, m, method, "median_s" if what == "time" else "passes")
                    curves[method] = t
                    s = fit_of.get(("jacobian", mode, m, method))
                    if what == "time":  # the asymptotic slope: over the largest 3 sizes timed
                        sel = [k for k, v in enumerate(t) if v is not None][-3:]
                    elif s and s["from_n"]:  # the passes slope over the range where it holds
                        sel = [k for k, n in enumerate(ns) if s["from_n"] <= n <= (s["to_n"] or n)]
                    else:
                        sel = []
                    if len(sel) >= 2:
                        fits[method] = _slope_or_none([ns[k] for k in sel], [curves[method][k] for k in sel])
                label = f"n* = {cross[(mode, m)]:.3g}" if cross.get((mode, m)) else None
                _plot.loglog_panel(
                    axes[j, i],
                    ns,
                    curves,
                    fits=fits,
                    colors=_plot.palette(JACOBIAN_METHODS),
                    marks={label: cross[(mode, m)]} if label else None,
                    title=f"{mode} input, m = {m}"
                    + (f", B = {batch}" if mode == "batched" else "")
                    + ("" if what == "time" else "; fit where theory holds"),
                    xlabel="input dimension n",
                    ylabel="median time (s)" if what == "time" else "t / t(f)  (passes)",
                )
        paths.append(_plot.save(fig, out / fname))
    return paths


def _hessian_memory_plot(records, summary, out: Path, name: str) -> Path:
    """The input Hessian's times, the Jacobians' peak memory against n and their temporaries against depth."""
    jac = [r for r in records if r["kind"] == "jacobian"]
    modes = sorted({r["mode"] for r in jac}, reverse=True)
    ms = sorted({r["m"] for r in jac})
    fit_of = {(s["kind"], s["mode"], s["m"], s["method"]): s for s in summary["slopes"]}
    hes = [r for r in records if r["kind"] == "hessian"]
    mem = [r for r in records if r["kind"] == "memory_depth"]
    fig, axes = _plot.new_panels(3)
    if hes:
        ns, _ = _curve(records, "hessian", "single", 1, "f")
        curves = {k: _curve(records, "hessian", "single", 1, k)[1] for k in HESSIAN_METHODS}
        fits = {}
        for k in HESSIAN_METHODS[1:]:
            s = fit_of.get(("hessian", "single", 1, k))
            if s and s["from_n"]:
                sel = [i for i, n in enumerate(ns) if s["from_n"] <= n <= (s["to_n"] or n)]
                fits[k] = _slope_or_none([ns[i] for i in sel], [curves[k][i] for i in sel])
        _plot.loglog_panel(
            axes[0],
            ns,
            curves,
            fits=fits,
            title="input Hessian, one input",
            colors=_plot.palette(HESSIAN_METHODS),
            xlabel="input dimension n",
            ylabel="median time (s)",
        )
    mode0, m0 = modes[-1], ms[-1]
    ns, _ = _curve(records, "jacobian", mode0, m0, "f")
    curves = {
        k: [_fmt_bytes(b) for b in _curve(records, "jacobian", mode0, m0, k, "peak_bytes")[1]] for k in JACOBIAN_METHODS
    }
    _plot.loglog_panel(
        axes[1],
        ns,
        curves,
        title=f"peak memory, {mode0}, m = {m0}",
        colors=_plot.palette(JACOBIAN_METHODS),
        xlabel="input dimension n",
        ylabel="MiB (XLA memory analysis)",
    )
    if mem:
        depths = sorted({r["depth"] for r in mem})
        curves = {
            k: [r["temp_bytes"] / 1024 for d in depths for r in mem if r["depth"] == d and r["method"] == k]
            for k in JACOBIAN_METHODS
        }
        _plot.loglog_panel(
            axes[2],
            depths,
            curves,
            title=f"temporaries vs depth (n = {mem[0]['n']}, m = {mem[0]['m']}, B = {mem[0]['batch']})",
            colors=_plot.palette(JACOBIAN_METHODS),
            xlabel="depth (hidden layers)",
            ylabel="KiB (XLA temp buffer)",
        )
    return _plot.save(fig, out / f"{name}_hessian_memory.png")


# ----------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``modes`` benchmark's options (``--quick``, ``--out`` ... and the sizes)."""
    _harness.add_common_arguments(parser)
    parser.add_argument("--ns", type=_harness.int_list, default=None, help=f"input dimensions n (default {FULL['ns']})")
    parser.add_argument(
        "--ms", type=_harness.int_list, default=None, help=f"output dimensions m (default {FULL['ms']})"
    )
    parser.add_argument("--width", type=int, default=None, help=f"hidden width (default {FULL['width']})")
    parser.add_argument("--depth", type=int, default=None, help=f"hidden layers (default {FULL['depth']})")
    parser.add_argument(
        "--batch", type=int, default=None, help="B inputs for the vmapped runs (default 16 on CPU, 256 on a GPU)"
    )
    parser.add_argument(
        "--hessian-ns", type=_harness.int_list, default=None, help=f"n for the Hessians (default {FULL['hessian_ns']})"
    )
    parser.add_argument(
        "--max-call-s",
        type=float,
        default=0.2,
        help="stop timing a method beyond the n where one call takes longer (default %(default)s)",
    )
    parser.add_argument(
        "--max-memory-mb",
        type=float,
        default=None,
        help="do not run a compiled function needing more (default 1024 on CPU, 16384 on a GPU)",
    )
    parser.add_argument(
        "--tol", type=float, default=0.15, help="tolerance of the slopes against theory (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed of weights and inputs")


def _resolve(args) -> argparse.Namespace:
    base = QUICK if args.quick else FULL
    on_gpu = jax.devices()[0].platform != "cpu"
    opts = argparse.Namespace(**vars(args))
    for k, v in base.items():
        if getattr(opts, k, None) is None:
            setattr(opts, k, v)
    if opts.batch is None:
        opts.batch = 4 if args.quick else (256 if on_gpu else 16)
    if opts.max_memory_mb is None:
        opts.max_memory_mb = 16384.0 if on_gpu else 1024.0
    if opts.repeats < 20:
        raise UsageError(f"--repeats {opts.repeats} is below 20; the method asks for a median of >= 20 calls")
    return opts


def run(args) -> int:
    """Run the benchmark; write ``modes_TAG.{json,md,png}`` under ``--out``; return 0."""
    opts = _resolve(args)
    out, name = Path(opts.out), _harness.result_name("modes", args)
    records = []
    total = 2 * len(opts.ms) * len(opts.ns) + len(opts.hessian_ns)
    with tqdm(total=total, desc="modes", unit="size", leave=False, file=sys.stderr, disable=not show_progress()) as bar:
        for mode in ("single", "batched"):
            for m in opts.ms:

                def build(n, key, m=m):
                    mlp, params = network(n, m, opts.width, opts.depth, key=key)
                    return mlp, params, jacobian_functions(mlp)

                records += _sweep("jacobian", mode, m, opts.ns, build, opts, bar)

        def build_h(n, key):
            mlp, params = network(n, 1, opts.width, opts.depth, key=key)
            return mlp, params, hessian_functions(mlp)

        records += _sweep("hessian", "single", 1, opts.hessian_ns, build_h, opts, bar)
    records += _memory_vs_depth(opts)
    summary = analyse(records, opts.tol)
    config = {
        k: getattr(opts, k)
        for k in (
            "ns",
            "ms",
            "width",
            "depth",
            "batch",
            "hessian_ns",
            "repeats",
            "max_call_s",
            "max_memory_mb",
            "tol",
            "seed",
            "memory_depths",
            "memory_n",
            "quick",
        )
    }
    json_path, md_path = _harness.write_results(
        name, dict(config=config, summary=summary, records=records), _tables(records, summary, opts), out
    )
    pngs = _plots(records, summary, out, name)
    print(_summary_text(summary))
    print(_harness.wrote_line(json_path, md_path, *pngs))
    return 0


def _summary_text(summary) -> str:
    lines = []
    for s in summary["slopes"]:
        p = "-" if s["passes_slope"] is None else f"{s['passes_slope']:.2f}"
        holds = f"holds from n = {s['from_n']}" if s["holds"] else "does NOT hold"
        lines.append(
            f"{s['kind']:8s} {s['mode']:7s} m={s['m']:<3d} {s['method']:12s} passes slope {p} "
            f"(theory {s['theory_passes_slope']:g}, {holds})"
        )
    for c in summary["crossovers"]:
        lines.append(
            f"crossover {c['mode']:7s} m={c['m']:<3d} n* = "
            f"{'-' if c['n_star'] is None else format(c['n_star'], '.3g')} ({c['status']})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m fnnjax.benchmarks.modes [--quick] [--out DIR] ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m fnnjax.benchmarks.modes", description=(__doc__ or "").splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
