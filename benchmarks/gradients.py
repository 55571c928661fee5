"""The cost of every way to compute the gradient of the risk R (F7), against the parameter count P.

``python -m fnnjax.benchmarks.gradients [--quick] [--out DIR]`` (or ``fnnjax bench gradients``) times
``fnnjax.gradient(..., method=M)`` (jitted) for M in backprop, grad, jacrev, jacfwd, jvp,
fd_central and fd_forward, next to one evaluation of R itself (``fnnjax.loss``), for ReLU MLPs
with a softmax + cross-entropy output on a batch of N inputs: a width sweep
``d_in -> w -> 10``, a depth sweep ``d_in -> w0 (d times) -> 10``, and the notes' network
784-256-10 at batch 256.

What theory predicts (F19, F21). Cost is counted in *passes* of R. The one-pass methods are
dispatched once, like one call of R, so their unit is one call of R: ``t(method) / t(R)``. The
O(P) methods loop inside one compiled call, so their unit is one evaluation of R inside a compiled
loop (``loss_loop``: R at P points in one ``lax.map``, the loop of ``fd_forward`` without the
differences): a single call of R at small P is almost all dispatch overhead (~0.05-0.2 ms on CPU),
which a loop iteration does not pay, and dividing by it would turn the O(P) curves' slope against
P from 1 into ~2. (``fd_forward`` is that loop plus a subtraction per step, so its ~P + 1 passes
check the unit; jvp, jacfwd and fd_central are the test.)

- backprop, grad, jacrev: one reverse pass (R: R^P -> R has one output): a constant number of
  passes, independent of P (slope 0 against P). ``t(grad) / t(R)`` is the cheap-gradient ratio,
  bounded by a small constant (the usual bound is 3-5; the target here is <= 3 at 784-256-10).
- jvp (one forward-mode pass per parameter), jacfwd (the same P tangents, vmapped), fd_forward
  (P + 1 evaluations of R), fd_central (2P): P passes, slope 1 against P.
- In absolute time, a pass itself costs ~ N P multiply-adds once the arithmetic dominates the
  per-call overhead, so one-pass methods grow with slope ~1 against P and the O(P) methods with
  slope ~2 (the O(P^2) of F19); at small P, where a pass costs its fixed overhead, the slopes are
  ~0 and ~1. The passes slope removes that; the tables give both.

The O(P) methods are O(P^2) in total, so they are timed only up to ``--max-params`` and, in each
sweep, no further than the first size whose call exceeds ``--max-call-s`` (or whose compiled
memory exceeds ``--max-memory-mb``); the tables say which and why. backprop, grad and the loss
are timed in alternation, round by round, so the ratios backprop/grad and grad/loss are medians of
ratios measured side by side.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from tqdm import tqdm

import fnnjax
from fnnjax.cli import show_progress
from fnnjax.errors import UsageError

from . import _fit, _harness, _plot

__all__ = ["METHODS", "ONE_PASS", "O_P", "PASSES_SLOPE", "configurations", "add_arguments", "run", "main", "analyse"]

ONE_PASS = ("backprop", "grad", "jacrev")
"""Gradient methods that take one reverse pass, whatever P."""

O_P = ("jacfwd", "jvp", "fd_forward", "fd_central")
"""Gradient methods that take O(P) passes."""


PASSES_SLOPE = {**{m: 0.0 for m in ONE_PASS}, **{m: 1.0 for m in O_P}}
"""Theory: the slope of ``t(method) / t(R)`` against P."""

LOOP = "loss_loop"
"""R evaluated P times in one compiled loop: the unit of cost of the O(P) methods."""

METHODS = ("loss", LOOP) + ONE_PASS + O_P
"""What is timed: R itself and R in a loop (the units of cost) and every gradient method."""

CHEAP_GRADIENT_TARGET = 3.0
"""Target for t(grad) / t(loss) at the notes' network."""

BACKPROP_TARGET = 1.0
"""Target for t(backprop) / t(grad) (median) at every size."""

NOTES = (784, 256, 10)
"""The notes' network (F-reference experiment)."""

FULL = dict(
    d_in=32,
    widths=(2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
    w0=32,
    depths=(1, 2, 3, 4, 6, 8, 12, 16),
    batch=64,
    notes_batch=256,
    ratio_repeats=100,
)
QUICK = dict(d_in=16, widths=(2, 16), w0=8, depths=(), batch=32, notes_batch=256, ratio_repeats=20)


def configurations(opts) -> list[tuple[str, tuple[int, ...]]]:
    """``(sweep, sizes)`` for the width sweep, the depth sweep and the notes' network."""
    out = [("width", (opts.d_in, w, 10)) for w in opts.widths]
    out += [("depth", (opts.d_in,) + (opts.w0,) * d + (10,)) for d in opts.depths]
    out.append(("notes", NOTES))
    return out


def _functions(mlp: fnnjax.MLP, l2: float) -> dict:
    fns: dict[str, Callable] = {"loss": lambda p, x, y: fnnjax.loss(mlp, p, x, y, l2=l2)}
    for method in ONE_PASS + O_P:
        fns[method] = functools.partial(
            lambda p, x, y, method: fnnjax.gradient(mlp, p, x, y, l2=l2, method=method), method=method
        )
    fns[LOOP] = functools.partial(loss_loop, mlp, l2=l2)
    return fns


def loss_loop(mlp: fnnjax.MLP, params, x, y, *, l2: float = 0.0):
    """R at the P points ``theta + 1e-3 e_i``, i = 1..P, in one compiled ``lax.map`` loop.

    What F19 says a gradient by differences costs: P passes of R. The O(P) methods loop inside
    one compiled call too, so their time divided by this loop's time per evaluation counts passes
    of R free of the per-call dispatch overhead a single call of R carries, with the same trip
    count (a loop's cost per iteration depends on how many it runs). ``fd_forward`` is this loop
    plus one subtraction per step, so its passes (~P + 1) check the unit; jvp, jacfwd and
    fd_central are the test.
    """
    theta, unravel = ravel_pytree(params)
    return jax.lax.map(
        lambda i: fnnjax.loss(mlp, unravel(theta.at[i].add(1e-3)), x, y, l2=l2), jnp.arange(theta.shape[0])
    )


def _compile_rows(fns, methods, sweep, sizes, P, batch, args, opts, cut) -> tuple[dict, dict]:
    rows, calls = {}, {}
    for method in methods:
        row: dict[str, Any] = dict(
            sweep=sweep,
            sizes=list(sizes),
            P=P,
            batch=batch,
            method=method,
            median_s=None,
            min_s=None,
            max_s=None,
            repeats=None,
            compile_s=None,
            peak_bytes=None,
            passes=None,
            skipped=cut.get((sweep, method)),
        )
        if row["skipped"] is None and method in O_P and P > opts.max_params:
            row["skipped"] = f"P = {P} > --max-params {opts.max_params} (O(P^2) in total)"
        rows[method] = row
        if row["skipped"] is not None:
            continue
        compiled, row["compile_s"] = _harness.compile_timed(fns[method], *args)
        peak = row["peak_bytes"] = (_harness.memory_stats(compiled) or {}).get("peak_bytes")
        if peak is not None and peak > opts.max_memory_mb * 2**20:
            row["skipped"] = f"peak memory {peak / 2**20:.0f} MiB > --max-memory-mb {opts.max_memory_mb:g}"
            continue
        calls[method] = functools.partial(compiled, *args)
    return rows, calls


def _measure(sweep, sizes, opts, cut: dict) -> list[dict]:
    """Compile and time every method not cut for one network; update ``cut`` for the sweep.

    Two groups, each interleaved round by round: the loss and the one-pass methods
    (``--ratio-repeats`` rounds; passes = t / t(loss)), and the loss loop and the O(P) methods
    (``--repeats`` rounds; passes = t / (t(loss loop) / P)).
    """
    batch = opts.notes_batch if sweep == "notes" else opts.batch
    mlp = fnnjax.MLP(sizes, hidden="relu", output="softmax")
    kp, kx, ky = jax.random.split(jax.random.key(opts.seed), 3)
    params = fnnjax.init_params(kp, mlp, "normal", std=0.01)
    args = (params, jax.random.uniform(kx, (batch, sizes[0])), jax.random.randint(ky, (batch,), 0, sizes[-1]))
    P = mlp.num_params
    fns = _functions(mlp, opts.l2)
    rows, cheap = _compile_rows(fns, ("loss",) + ONE_PASS, sweep, sizes, P, batch, args, opts, cut)
    t1 = _harness.time_interleaved(cheap, repeats=opts.ratio_repeats)
    for method, t in t1.items():
        rows[method].update({k: t[k] for k in ("median_s", "min_s", "max_s", "repeats")})
        rows[method]["passes"] = _harness.paired_ratio(t["times_s"], t1["loss"]["times_s"])
    rows["backprop"]["vs_grad"] = _harness.paired_ratio(t1["backprop"]["times_s"], t1["grad"]["times_s"])
    if all(cut.get((sweep, m)) or (P > opts.max_params) for m in O_P):  # all skipped: nothing compiles
        rows.update(_compile_rows(fns, O_P, sweep, sizes, P, batch, args, opts, cut)[0])
        return list(rows.values())
    rows2, slow = _compile_rows(fns, (LOOP,) + O_P, sweep, sizes, P, batch, args, opts, cut)
    rows.update(rows2)
    t2 = _harness.time_interleaved(slow, repeats=opts.repeats)
    for method, t in t2.items():
        rows[method].update({k: t[k] for k in ("median_s", "min_s", "max_s", "repeats")})
        rows[method]["passes"] = P * _harness.paired_ratio(t["times_s"], t2[LOOP]["times_s"])
        if method in O_P and t["median_s"] > opts.max_call_s:
            cut[(sweep, method)] = (
                f"P = {P} took {t['median_s']:.3g} s > --max-call-s {opts.max_call_s:g}; larger P only cost more"
            )
    if LOOP in t2:
        rows[LOOP]["per_evaluation_s"] = t2[LOOP]["median_s"] / P
    for method, row in rows.items():
        if row["skipped"] and method in O_P and (sweep, method) not in cut and "--max-params" not in row["skipped"]:
            cut[(sweep, method)] = row["skipped"]
    return list(rows.values())


def _slope_or_none(x, y):
    try:
        return _fit.loglog_fit(x, y)
    except ValueError:
        return None


def analyse(records: list[dict], tol: float) -> dict:
    """Slopes against P per sweep and method; the ratios backprop/grad and grad/loss per network."""
    slopes = []
    for sweep in ("width", "depth"):
        rows = [r for r in records if r["sweep"] == sweep]
        for method in ONE_PASS + O_P:
            pts = sorted(
                (r["P"], r["median_s"], r["passes"])
                for r in rows
                if r["method"] == method and r["median_s"] is not None
            )
            if method in O_P:  # unit: one evaluation of R inside a compiled loop
                unit = {r["P"]: r.get("per_evaluation_s") for r in rows if r["method"] == LOOP}
            else:  # unit: one (dispatched) call of R
                unit = {r["P"]: r["median_s"] for r in rows if r["method"] == "loss"}
            if len(pts) < 2:
                slopes.append(
                    dict(
                        sweep=sweep,
                        method=method,
                        theory_passes_slope=PASSES_SLOPE[method],
                        passes_slope=None,
                        holds=False,
                        from_P=None,
                        to_P=None,
                        time_slope=None,
                        unit_slope=None,
                        points=len(pts),
                    )
                )
                continue
            Ps, ts, ps = zip(*pts)
            tail = _fit.fit_from(Ps, ps, PASSES_SLOPE[method], tol)
            shown = tail or _slope_or_none(Ps[-3:], ps[-3:])
            if shown is None:  # fewer than 2 distinct sizes timed: nothing to fit
                continue
            lo = shown.x_min
            sel = list(range(len(Ps)))[-3:]  # absolute slopes: over the largest 3 P timed
            abs_fit = _slope_or_none([Ps[i] for i in sel], [ts[i] for i in sel])
            unit_fit = _slope_or_none([Ps[i] for i in sel], [unit.get(Ps[i]) for i in sel])
            slopes.append(
                dict(
                    sweep=sweep,
                    method=method,
                    theory_passes_slope=PASSES_SLOPE[method],
                    passes_slope=shown.slope,
                    holds=tail is not None,
                    from_P=int(lo),
                    to_P=int(shown.x_max),
                    time_slope=None if abs_fit is None else abs_fit.slope,
                    unit_slope=None if unit_fit is None else unit_fit.slope,
                    points=len(pts),
                )
            )
    ratios = []
    for sweep, sizes in dict.fromkeys((r["sweep"], tuple(r["sizes"])) for r in records):
        by = {r["method"]: r for r in records if r["sweep"] == sweep and tuple(r["sizes"]) == sizes}
        bp, gr = by["backprop"], by["grad"]
        ratios.append(
            dict(
                sweep=sweep,
                sizes="-".join(map(str, sizes)),
                P=bp["P"],
                backprop_over_grad=bp.get("vs_grad"),
                backprop_over_grad_of_medians=bp["median_s"] / gr["median_s"],
                grad_over_loss=gr["passes"],
                backprop_over_loss=bp["passes"],
            )
        )
    notes = [r for r in ratios if r["sweep"] == "notes"][0]
    bpg = [r["backprop_over_grad"] for r in ratios]
    return dict(
        tolerance=tol,
        slopes=slopes,
        ratios=ratios,
        cheap_gradient_ratio_notes=notes["grad_over_loss"],
        cheap_gradient_target_met=bool(notes["grad_over_loss"] <= CHEAP_GRADIENT_TARGET),
        backprop_over_grad_max=max(bpg),
        backprop_target_met_everywhere=bool(max(bpg) <= BACKPROP_TARGET),
        sizes_where_backprop_slower=[r["sizes"] for r in ratios if r["backprop_over_grad"] > BACKPROP_TARGET],
    )


def _tables(records, summary, opts) -> str:
    parts = [
        f"ReLU MLPs, softmax + cross-entropy (F7 risk, l2 = {opts.l2:g}), float32, batch N = {opts.batch} "
        f"(784-256-10: N = {opts.notes_batch}). Medians after warm-up, compile time apart (JSON), the "
        "methods of one network interleaved round by round in two groups: the loss and the one-pass "
        f"methods ({opts.ratio_repeats} rounds), and the loop of P evaluations of R with the "
        f"O(P) methods ({opts.repeats} rounds). Slope tolerance +-{opts.tol}."
    ]
    s = summary
    slower = ", ".join(s["sizes_where_backprop_slower"])
    parts.append(
        f"**Cheap-gradient ratio** t(grad)/t(loss) at 784-256-10, batch {opts.notes_batch}: "
        f"{s['cheap_gradient_ratio_notes']:.2f} (target <= {CHEAP_GRADIENT_TARGET:g}: "
        f"{'met' if s['cheap_gradient_target_met'] else 'NOT met'}). **backprop/grad** (median of paired ratios): "
        f"at most {s['backprop_over_grad_max']:.3f} over all sizes (target <= {BACKPROP_TARGET:.2f} everywhere: "
        f"{'met' if s['backprop_target_met_everywhere'] else 'NOT met at ' + slower})."
    )
    parts.append(
        "### Slopes against P\n\n`passes`: for the one-pass methods t(method)/t(loss) (one call "
        "each), for the O(P) methods t(method)/t(one evaluation of R inside the compiled loop) (both "
        "loop inside one call, free of the per-call overhead); medians of ratios paired per round. "
        "Fitted over P in `range`: from the smallest P from which the passes slope stays within "
        "tolerance (`holds`), or else over the largest 3 measured P. `time_slope`, `unit_slope`: "
        "absolute slopes of the method and of its unit over the largest 3 P the method was timed at "
        "(time slope = unit slope + passes slope)."
    )
    parts.append(_slopes_table(s["slopes"]))
    per_p = _passes_per_parameter(records)
    if per_p:
        parts.append(
            "### Passes per parameter of the O(P) methods\n\n`passes / P`: theory a constant "
            "(fd_forward (P + 1)/P ~ 1, fd_central 2, jvp and jacfwd the cost of a jvp relative to "
            "one evaluation of R, ~1-3), the same at every P.\n\n"
            + _harness.markdown_table(per_p, ["sweep", "sizes", "P", *O_P])
        )
    parts.append("### Ratios per network (medians of ratios paired per round)")
    parts.append(
        _harness.markdown_table(
            s["ratios"],
            [
                "sweep",
                "sizes",
                "P",
                "backprop_over_grad",
                "backprop_over_grad_of_medians",
                "grad_over_loss",
                "backprop_over_loss",
            ],
        )
    )
    parts.append("### Median time per gradient (ms); `skip` = not timed, see below")
    parts.extend(_times_tables(records))
    return "\n\n".join(parts)


def _slopes_table(slopes: list[dict]) -> str:
    """The fitted slopes against P, one row per sweep and method."""
    rows = [
        dict(
            r, holds="yes" if r["holds"] else "NO", range=None if r["from_P"] is None else f"{r['from_P']}..{r['to_P']}"
        )
        for r in slopes
    ]
    return _harness.markdown_table(
        rows,
        [
            "sweep",
            "method",
            "theory_passes_slope",
            "passes_slope",
            "holds",
            "range",
            "time_slope",
            "unit_slope",
            "points",
        ],
    )


def _passes_per_parameter(records) -> list[dict]:
    """Per network, passes / P of each O(P) method that was timed (networks without any left out)."""
    per_p = []
    for sweep, sizes in dict.fromkeys((r["sweep"], tuple(r["sizes"])) for r in records):
        row = {"sweep": sweep, "sizes": "-".join(map(str, sizes))}
        for r in records:
            if r["sweep"] == sweep and tuple(r["sizes"]) == sizes and r["method"] in O_P and r["passes"]:
                row["P"], row[r["method"]] = r["P"], r["passes"] / r["P"]
        if len(row) > 2:
            per_p.append(row)
    return per_p


def _times_tables(records) -> list[str]:
    """The median time per gradient of every method and network, and why a method was not timed."""
    parts = []
    table, skipped = [], {}
    for sweep, sizes in dict.fromkeys((r["sweep"], tuple(r["sizes"])) for r in records):
        row = {"sweep": sweep, "sizes": "-".join(map(str, sizes))}
        for r in records:
            if r["sweep"] == sweep and tuple(r["sizes"]) == sizes:
                row["P"] = r["P"]
                value = r.get("per_evaluation_s") if r["method"] == LOOP else r["median_s"]
                row[r["method"]] = "skip" if value is None else value * 1e3
                if r["skipped"]:
                    skipped.setdefault((sweep, r["method"]), r["skipped"])
        table.append(row)
    parts.append(
        f"`{LOOP}`: time per evaluation of R inside the loop (the O(P) methods' unit).\n\n"
        + _harness.markdown_table(table, ["sweep", "sizes", "P", "loss", LOOP, *ONE_PASS, *O_P])
    )
    if skipped:
        parts.append(
            "Not timed (the first reason in each sweep; the O(P) methods are O(P^2) in total):\n\n"
            + "\n".join(f"- {sw} sweep, {m}: {why}" for (sw, m), why in skipped.items())
        )
    return parts


def _plots(records, summary, out: Path, name: str) -> Path:
    fig, axes = _plot.new_figure(3, 2)  # a row per sweep (time, passes), then the ratios
    fits = {(s["sweep"], s["method"]): s for s in summary["slopes"]}
    for j, sweep in enumerate(("width", "depth")):
        rows = [r for r in records if r["sweep"] == sweep]
        Ps = sorted({r["P"] for r in rows})
        for i, field in enumerate(("median_s", "passes")):
            curves, lines = {}, {}
            for method in METHODS:
                if method == LOOP or (field == "passes" and method == "loss"):
                    continue
                by_P = {r["P"]: r[field] for r in rows if r["method"] == method}
                curves[method] = [by_P.get(P) for P in Ps]
                s = fits.get((sweep, method))
                if field == "median_s":  # the asymptotic slope: over the largest 3 P timed
                    sel = [k for k, v in enumerate(curves[method]) if v is not None][-3:]
                elif s and s["from_P"] is not None:  # the passes slope where it holds
                    sel = [k for k, P in enumerate(Ps) if s["from_P"] <= P <= s["to_P"]]
                else:
                    sel = []
                if len(sel) >= 2:
                    lines[method] = _slope_or_none([Ps[k] for k in sel], [curves[method][k] for k in sel])
            what = "widths d_in-w-10" if sweep == "width" else "depths d_in-w0^d-10"
            _plot.loglog_panel(
                axes[j, i],
                Ps,
                curves,
                fits=lines,
                title=f"{sweep} sweep ({what})",
                colors=_plot.palette(METHODS),
                xlabel="parameter count P",
                ylabel="median time per gradient (s)"
                if field == "median_s"
                else "passes: t / t(R)  (O(P): R in a loop)",
            )
    rat = summary["ratios"]
    for i, (key, target, label) in enumerate(
        (
            ("backprop_over_grad", BACKPROP_TARGET, "t(backprop) / t(grad)"),
            ("grad_over_loss", CHEAP_GRADIENT_TARGET, "t(grad) / t(loss)"),
        )
    ):
        ax = axes[2, i]
        for sweep, marker in (("width", "o"), ("depth", "s"), ("notes", "*")):
            pts = [(r["P"], r[key]) for r in rat if r["sweep"] == sweep and r[key] is not None]
            if pts:
                ax.plot(
                    *zip(*sorted(pts)),
                    marker=marker,
                    linestyle="-" if sweep != "notes" else "none",
                    markersize=9 if sweep == "notes" else 4,
                    label=sweep if sweep != "notes" else "784-256-10",
                )
        ax.axhline(target, color="red", linestyle=":", label=f"target {target:g}")
        ax.set_xscale("log")
        ax.set_xlabel("parameter count P")
        ax.set_ylabel(label)
        ax.set_title(label + " (paired median)", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return _plot.save(fig, out / f"{name}.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``gradients`` benchmark's options."""
    _harness.add_common_arguments(parser)
    parser.add_argument("--d-in", type=int, default=None, help=f"input width of the sweeps (default {FULL['d_in']})")
    parser.add_argument(
        "--widths",
        type=_harness.int_list,
        default=None,
        help=f"hidden widths of the width sweep (default {FULL['widths']})",
    )
    parser.add_argument("--w0", type=int, default=None, help=f"hidden width of the depth sweep (default {FULL['w0']})")
    parser.add_argument(
        "--depths",
        type=_harness.int_list,
        default=None,
        help=f"hidden layers of the depth sweep (default {FULL['depths']})",
    )
    parser.add_argument("--batch", type=int, default=None, help=f"batch size N of the sweeps (default {FULL['batch']})")
    parser.add_argument(
        "--notes-batch",
        type=int,
        default=None,
        help=f"batch size of the notes' network 784-256-10 (default {FULL['notes_batch']})",
    )
    parser.add_argument(
        "--ratio-repeats",
        type=int,
        default=None,
        help="rounds for the loss and one-pass methods, whose ratios are the targets "
        f"(default {FULL['ratio_repeats']})",
    )
    parser.add_argument("--l2", type=float, default=0.0, help="weight decay lambda of the risk (default 0)")
    parser.add_argument(
        "--max-params", type=int, default=50_000, help="largest P for the O(P) methods (default %(default)s)"
    )
    parser.add_argument(
        "--max-call-s",
        type=float,
        default=0.1,
        help="stop timing an O(P) method after a call this long (default %(default)s)",
    )
    parser.add_argument(
        "--max-memory-mb",
        type=float,
        default=None,
        help="skip compiled functions needing more (default 1024 on CPU, 16384 on a GPU)",
    )
    parser.add_argument("--tol", type=float, default=0.15, help="slope tolerance (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed of weights and data")


def _resolve(args) -> argparse.Namespace:
    opts = argparse.Namespace(**vars(args))
    for k, v in (QUICK if args.quick else FULL).items():
        if getattr(opts, k, None) is None:
            setattr(opts, k, v)
    if opts.max_memory_mb is None:
        opts.max_memory_mb = 1024.0 if jax.devices()[0].platform == "cpu" else 16384.0
    for name in ("repeats", "ratio_repeats"):
        if getattr(opts, name) < 20:
            raise UsageError(
                f"--{name.replace('_', '-')} {getattr(opts, name)} is below 20; the method asks "
                "for a median of >= 20 calls"
            )
    return opts


def run(args) -> int:
    """Run the benchmark; write ``gradients_TAG.{json,md,png}`` under ``--out``; return 0."""
    opts = _resolve(args)
    out, name = Path(opts.out), _harness.result_name("gradients", args)
    records, cut = [], {}
    shown = show_progress(sys.stderr)
    bar = tqdm(configurations(opts), desc="gradients", unit="net", leave=False, file=sys.stderr, disable=not shown)
    for sweep, sizes in bar:
        records += _measure(sweep, sizes, opts, cut)
    summary = analyse(records, opts.tol)
    config = {
        k: getattr(opts, k)
        for k in (
            "d_in",
            "widths",
            "w0",
            "depths",
            "batch",
            "notes_batch",
            "ratio_repeats",
            "l2",
            "max_params",
            "max_call_s",
            "max_memory_mb",
            "repeats",
            "tol",
            "seed",
            "quick",
        )
    }
    json_path, md_path = _harness.write_results(
        name, dict(config=config, summary=summary, records=records), _tables(records, summary, opts), out
    )
    png = _plots(records, summary, out, name)
    for s in summary["slopes"]:
        p = "-" if s["passes_slope"] is None else f"{s['passes_slope']:.2f}"
        print(
            f"{s['sweep']:5s} {s['method']:10s} passes slope {p} (theory {s['theory_passes_slope']:g}; "
            f"{'holds from P = ' + str(s['from_P']) if s['holds'] else 'does NOT hold'})"
        )
    print(
        f"cheap-gradient ratio t(grad)/t(loss) at 784-256-10: {summary['cheap_gradient_ratio_notes']:.2f}; "
        f"backprop/grad at most {summary['backprop_over_grad_max']:.3f}"
    )
    print(_harness.wrote_line(json_path, md_path, png))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m fnnjax.benchmarks.gradients [--quick] [--out DIR] ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m fnnjax.benchmarks.gradients", description=(__doc__ or "").splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
