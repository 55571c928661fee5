"""Hand-written backprop against jax.grad on the notes' network: is the delta recursion as fast?

``python -m fnnjax.benchmarks.backprop [--quick] [--out DIR]`` (or ``fnnjax bench backprop``) compiles
``jax.jit(fnnjax.backprop)`` (the delta recursion of F10-F13, no autodiff) and
``jax.jit(jax.grad(fnnjax.loss))`` for the notes' network 784-256-10 (ReLU hidden layer, softmax
output, cross-entropy, batch 256, float32), and times them in alternation (plus the loss itself,
for the cheap-gradient ratio): round r calls each once, in swapped order on odd rounds, so drift in
the machine's load hits both alike. Reported: median, min and max of each, the ratio of medians,
and the median (and quartiles) of the per-round ratios t(backprop)/t(grad); the target is
<= 1.00.

It also records what each compiled program does, to explain a difference: the primitives of each
jaxpr, the HLO instructions of the optimised module (dots, transposes, converts, fusions), XLA's
flop and byte counts and its memory analysis, and the largest difference between the two gradients.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path
from typing import Any

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np

import fnnjax
from fnnjax.errors import UsageError

from . import _harness, _plot

__all__ = ["add_arguments", "run", "main", "jaxpr_primitives", "hlo_instructions", "program_report"]

TARGET = 1.0
"""t(backprop) / t(grad) must not exceed this (median)."""

HLO_OPS = (
    "dot",
    "transpose",
    "convert",
    "broadcast",
    "reduce",
    "fusion",
    "copy",
    "divide",
    "multiply",
    "exponential",
    "log",
    "compare",
    "select",
)
"""HLO instructions counted in the optimised modules (the ones a gradient program is made of)."""


def jaxpr_primitives(fn, *args) -> dict[str, int]:
    """How often each primitive occurs in ``jax.make_jaxpr(fn)(*args)``, nested jaxprs included."""
    counts: collections.Counter = collections.Counter()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            counts[eqn.primitive.name] += 1
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return dict(sorted(counts.items()))


def hlo_instructions(compiled) -> dict[str, int]:
    """Counts of the :data:`HLO_OPS` instructions in the optimised HLO text of a compiled function."""
    text = compiled.as_text() or ""
    found = collections.Counter(re.findall(r"=\s*\S+\s+([a-z][a-z0-9\-]*)\(", text))
    return {op: int(found.get(op, 0)) for op in HLO_OPS}


def _cost(compiled) -> dict:
    try:
        cost = compiled.cost_analysis()
    except (NotImplementedError, RuntimeError, AttributeError):
        return {}
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return {k: float(cost[k]) for k in ("flops", "bytes accessed", "transcendentals") if k in (cost or {})}


def program_report(name: str, fn, compiled, *args) -> dict:
    """What one program does: jaxpr primitives, HLO instruction counts, cost and memory analyses."""
    return dict(
        name=name,
        jaxpr=jaxpr_primitives(fn, *args),
        hlo=hlo_instructions(compiled),
        cost=_cost(compiled),
        memory=_harness.memory_stats(compiled),
    )


def _problem(sizes, batch: int, seed: int):
    mlp = fnnjax.MLP(sizes, hidden="relu", output="softmax")
    kp, kx, ky = jax.random.split(jax.random.key(seed), 3)
    params = fnnjax.init_params(kp, mlp, "normal", std=0.01)
    x = jax.random.uniform(kx, (batch, sizes[0]))
    y = jax.random.randint(ky, (batch,), 0, sizes[-1])
    return mlp, params, x, y


def _tables(data, opts) -> str:
    t, r = data["timings"], data["ratio"]
    rows = [
        dict(
            function=k,
            median_us=v["median_s"] * 1e6,
            min_us=v["min_s"] * 1e6,
            max_us=v["max_s"] * 1e6,
            repeats=v["repeats"],
            compile_s=v["compile_s"],
        )
        for k, v in t.items()
    ]
    parts = [
        f"Network {'-'.join(map(str, opts.sizes))} (ReLU, softmax + cross-entropy), batch {opts.batch}, "
        f"float32; {opts.repeats} rounds, the functions called in alternation (order swapped every round).",
        _harness.markdown_table(rows, ["function", "median_us", "min_us", "max_us", "repeats", "compile_s"]),
        f"**t(backprop) / t(grad)**: median of per-round ratios {r['paired_median']:.3f} "
        f"(quartiles {r['paired_q25']:.3f} .. {r['paired_q75']:.3f}); ratio of medians "
        f"{r['of_medians']:.3f}. Target <= {TARGET:.2f}: **{'met' if r['target_met'] else 'NOT met'}**. "
        f"Cheap-gradient ratio t(grad)/t(loss) = {data['cheap_gradient_ratio']:.2f}. "
        f"Largest |backprop - grad| over all parameters: {data['max_abs_difference']:.2e}.",
        "### What the compiled programs do",
    ]
    progs = data["programs"]
    names = [p["name"] for p in progs]
    hlo_rows = [dict(quantity=f"HLO {op}", **{p["name"]: p["hlo"][op] for p in progs}) for op in HLO_OPS]
    cost_rows = [
        dict(quantity=k, **{p["name"]: p["cost"].get(k) for p in progs})
        for k in ("flops", "bytes accessed", "transcendentals")
    ]
    mem_rows = [
        dict(quantity=f"memory {k}", **{p["name"]: (p["memory"] or {}).get(k) for p in progs})
        for k in ("temp_bytes", "peak_bytes")
    ]
    prims = sorted(set().union(*(p["jaxpr"] for p in progs)))
    jaxpr_rows = [dict(quantity=f"jaxpr {k}", **{p["name"]: p["jaxpr"].get(k, 0) for p in progs}) for k in prims]
    parts.append(_harness.markdown_table(cost_rows + mem_rows + hlo_rows + jaxpr_rows, ["quantity", *names]))
    return "\n\n".join(parts)


def _plot_rounds(data, path: Path) -> Path:
    fig, axes = _plot.new_figure(1, 2)
    t = data["timings"]
    ax = axes[0, 0]
    ax.boxplot([np.asarray(t[k]["times_s"]) * 1e6 for k in t], tick_labels=list(t))
    ax.set_ylabel("time per call (us)")
    ax.set_title(f"per-call times, {data['config']['repeats']} interleaved rounds", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax = axes[0, 1]
    ratios = np.asarray(t["backprop"]["times_s"]) / np.asarray(t["grad"]["times_s"])
    ax.plot(ratios, marker=".", linestyle="none", alpha=0.6, label="per round")
    ax.axhline(data["ratio"]["paired_median"], color="black", label=f"median {data['ratio']['paired_median']:.3f}")
    ax.axhline(TARGET, color="red", linestyle=":", label=f"target {TARGET:.2f}")
    ax.set_xlabel("round")
    ax.set_ylabel("t(backprop) / t(grad)")
    ax.set_title("backprop / grad, round by round", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return _plot.save(fig, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``backprop`` benchmark's options."""
    _harness.add_common_arguments(parser, default_repeats=1000)
    parser.add_argument(
        "--sizes",
        type=_harness.int_list,
        default=(784, 256, 10),
        help="layer widths M_0,...,M_L (default 784,256,10: the notes' network)",
    )
    parser.add_argument("--batch", type=int, default=256, help="batch size N (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed of weights and data")


def run(args) -> int:
    """Run the benchmark; write ``backprop_TAG.{json,md,png}`` under ``--out``; return 0."""
    opts = argparse.Namespace(**vars(args))
    if opts.quick and opts.repeats == 1000:
        opts.repeats = 20
    if opts.repeats < 20:
        raise UsageError(f"--repeats {opts.repeats} is below 20; the method asks for a median of >= 20 calls")
    if len(opts.sizes) < 2:
        raise UsageError(f"--sizes needs at least 2 widths (M_0,M_1), got {opts.sizes}")
    out, name = Path(opts.out), _harness.result_name("backprop", args)
    mlp, params, x, y = _problem(opts.sizes, opts.batch, opts.seed)
    fns = {
        "backprop": lambda p, x, y: fnnjax.backprop(mlp, p, x, y),
        "grad": lambda p, x, y: jax.grad(fnnjax.loss, argnums=1)(mlp, p, x, y),
        "loss": lambda p, x, y: fnnjax.loss(mlp, p, x, y),
    }
    compiled, compile_s = {}, {}
    for k, fn in fns.items():
        compiled[k], compile_s[k] = _harness.compile_timed(fn, params, x, y)
    timings = _harness.time_interleaved(
        {k: (lambda c=c: c(params, x, y)) for k, c in compiled.items()}, repeats=opts.repeats, warmup=5
    )
    for k in timings:
        timings[k]["compile_s"] = compile_s[k]
    ratios = np.asarray(timings["backprop"]["times_s"]) / np.asarray(timings["grad"]["times_s"])
    paired = float(np.median(ratios))
    g_bp, g_ad = compiled["backprop"](params, x, y), compiled["grad"](params, x, y)
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(g_bp), jax.tree.leaves(g_ad)))
    data: dict[str, Any] = dict(
        config=dict(
            sizes=list(opts.sizes),
            batch=opts.batch,
            repeats=opts.repeats,
            seed=opts.seed,
            dtype="float32",
            quick=opts.quick,
        ),
        timings=timings,
        ratio=dict(
            paired_median=paired,
            paired_q25=float(np.quantile(ratios, 0.25)),
            paired_q75=float(np.quantile(ratios, 0.75)),
            of_medians=timings["backprop"]["median_s"] / timings["grad"]["median_s"],
            target=TARGET,
            target_met=bool(paired <= TARGET),
        ),
        cheap_gradient_ratio=_harness.paired_ratio(timings["grad"]["times_s"], timings["loss"]["times_s"]),
        max_abs_difference=diff,
        programs=[program_report(k, fns[k], compiled[k], params, x, y) for k in fns],
    )
    json_path, md_path = _harness.write_results(name, data, _tables(data, opts), out)
    png = _plot_rounds(data, out / f"{name}.png")
    print(
        f"backprop {timings['backprop']['median_s'] * 1e6:.1f} us, grad {timings['grad']['median_s'] * 1e6:.1f} us "
        f"(medians of {opts.repeats}); t(backprop)/t(grad) = {paired:.3f} (paired median), "
        f"{data['ratio']['of_medians']:.3f} (of medians); target <= {TARGET:.2f}: "
        f"{'met' if data['ratio']['target_met'] else 'NOT met'}"
    )
    print(_harness.wrote_line(json_path, md_path, png))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m fnnjax.benchmarks.backprop [--quick] [--out DIR] ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m fnnjax.benchmarks.backprop", description=(__doc__ or "").splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
