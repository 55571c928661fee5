"""Which changes make fnnjax's CPU epoch faster: every lever measured on the WHOLE epoch, side by side.

The workload is the notes' recipe of ``benchmarks/train.py`` (Fashion-MNIST 60000 x 784,
784-256-10 ReLU, softmax cross-entropy, SGD lr 0.1, batch 256, the last partial batch padded with
weight-0 rows as ``fnnjax.fit`` does). ``model`` is a copy of fit's epoch program (one jitted
``lax.scan`` over the batches of a fresh permutation, the hand-written backprop step of F10-F13,
loss and accuracy summed on the device, one host read per epoch) with switches, and every other
method changes exactly one thing of it:

- ``whole_set_permutation``: the permuted training set is gathered once, before the scan
  (``x[perm]``, 188 MB), instead of each batch inside the scan;
- ``uint8_images``: the images stay on the device as uint8 and each batch is converted and
  divided by 255 inside the step (the same float32 values as the loader's);
- ``weights_in_out``: the weights stored as ``W^T`` (``(M_{l-1}, M_l)``), so the forward products
  are ``A W^T`` without a transposed operand;
- ``dW_as_written``: the weight gradient as written, ``D^T A`` (a product that contracts both
  operands' first axis), instead of fit's ``(D^T) A`` with ``D^T`` written out first behind an
  optimisation barrier (the form XLA's CPU backend hands to its YNNPACK dot; as written it goes
  to Eigen);
- ``xla_*``: the same program compiled with XLA CPU options (``compile(compiler_options=...)``,
  per program, no global flag): ``xla_eigen_dots`` (no YNNPACK: every dot on Eigen),
  ``xla_onednn_dots`` (every dot through oneDNN), ``xla_onednn_dots_eltwise`` (oneDNN dots and
  element-wise ops), ``xla_ynn_dot_eltwise`` (YNNPACK dots fused with element-wise ops),
  ``xla_vector_width_512`` (AVX-512 for XLA's own loops);

``fit`` is ``fnnjax.Trainer`` itself (``model`` should match it). Evaluation is measured too:
``eval_fit`` (fit's compiled evaluation of the 10000 test images with its default chunk size),
``eval_chunks_8192`` (the same program in chunks of 8192 and a remainder), ``eval_one_pass`` (one
forward pass of the whole test set); ``fnnjax train`` evaluates the test set every epoch.

Method: as ``benchmarks/train.py``: the methods' epochs interleaved round by round (reversed on odd
rounds), one warm-up round, then ``--repeats`` timed rounds; each lever's effect is the median of
its per-round ratios against ``model`` (> 1: the lever is faster). Every variant trains the same
steps from the same weights and keys, so its loss after the last round must equal ``model``'s to
float rounding (``loss_rel_diff``), and the optimised HLO's transposes and library fusions are
counted (``transposes``, and the dots that run in YNNPACK, oneDNN or Eigen: ``ynn_dots``,
``onednn_dots``, ``eigen_dots``). Results:
``benchmarks/results/levers_<platform>.json``, ``.md`` and ``.png``.

Run: ``FNNJAX_DATA=/path/holding/fashion-mnist python -m fnnjax.benchmarks.levers`` (or ``fnnjax bench
levers``); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from fnnjax.errors import UsageError

__all__ = ["add_arguments", "run", "main", "VARIANTS", "Variant"]

SIZES = (784, 256, 10)
LR, BATCH = 0.1, 256


@dataclasses.dataclass(frozen=True)
class Variant:
    """Switches of the model epoch (defaults: fit's program)."""

    images: str = "float32"  # or "uint8"
    gather: str = "scan"  # or "whole": x[perm] before the scan
    layout: str = "out_in"  # or "in_out": W^T stored
    grad: str = "transposed_D"  # or "as_written"
    options: tuple = ()  # XLA compiler options, (name, value) pairs


_ONEDNN = (("xla_cpu_use_onednn", True), ("xla_cpu_experimental_ynn_fusion_type", ""))
VARIANTS = {
    "model": Variant(),
    "whole_set_permutation": Variant(gather="whole"),
    "uint8_images": Variant(images="uint8"),
    "weights_in_out": Variant(layout="in_out"),
    "dW_as_written": Variant(grad="as_written"),
    "xla_eigen_dots": Variant(options=(("xla_cpu_experimental_ynn_fusion_type", ""),)),
    "xla_onednn_dots": Variant(
        options=_ONEDNN + (("xla_cpu_experimental_onednn_fusion_type", "LIBRARY_FUSION_TYPE_DOT"),)
    ),
    "xla_onednn_dots_eltwise": Variant(
        options=_ONEDNN
        + (("xla_cpu_experimental_onednn_fusion_type", "LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_ELTWISE"),)
    ),
    "xla_ynn_dot_eltwise": Variant(
        options=(("xla_cpu_experimental_ynn_fusion_type", "LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_ELTWISE"),)
    ),
    "xla_vector_width_512": Variant(options=(("xla_cpu_prefer_vector_width", 512),)),
}
"""The model epoch's variants, by method name (see the module docstring)."""
METHODS = ("fit", *VARIANTS, "eval_fit", "eval_chunks_8192", "eval_one_pass")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this benchmark's options to ``parser``."""
    from fnnjax.benchmarks._harness import add_common_arguments

    add_common_arguments(parser, default_repeats=20)
    parser.add_argument(
        "--data-dir", default=None, help="folder holding fashion-mnist/ (default: $FNNJAX_DATA; else random data)"
    )
    parser.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated subset of {', '.join(METHODS)} (default: all)"
    )
    parser.add_argument(
        "--samples", type=int, default=0, help="use only the first N training samples (default 0: all; for smoke tests)"
    )


def _epoch_program(v: Variant, n: int):
    """The jitted epoch of variant ``v`` for ``n`` training samples (fit's batching rule)."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    steps = -(-n // BATCH)
    pad = steps * BATCH - n
    opt = optax.sgd(LR)

    def batch_images(xb):
        return xb.astype(jnp.float32) / jnp.float32(255.0) if v.images == "uint8" else xb

    def dot_w(a, w):  # a W^T, whatever the storage
        return a @ w if v.layout == "in_out" else a @ w.T

    def step(carry, xs, x=None, y=None):
        p, s, sums = carry
        if v.gather == "whole":
            xb, yb, valid = xs
        else:
            idx, valid = xs
            xb, yb = x[idx], y[idx]  # type: ignore[index]
        xb = batch_images(xb)
        (w1, b1), (w2, b2) = p
        z1 = dot_w(xb, w1) + b1[None, :]
        h = jnp.maximum(z1, 0)
        z2 = dot_w(h, w2) + b2[None, :]
        t = jax.nn.one_hot(yb, SIZES[-1], dtype=jnp.float32)
        vf = valid.astype(jnp.float32)
        d2 = (jax.nn.softmax(z2) - t) * (vf / jnp.sum(vf))[:, None]
        d1 = (z1 > 0).astype(jnp.float32) * (d2 @ w2.T if v.layout == "in_out" else d2 @ w2)

        def grad_w(d, a):
            if v.grad == "transposed_D":
                g = lax.optimization_barrier(d.T) @ a  # (M_l, B) . (B, M_{l-1})
            else:
                g = d.T @ a
            return g.T if v.layout == "in_out" else g

        grads = ((grad_w(d1, xb), jnp.sum(d1, 0)), (grad_w(d2, h), jnp.sum(d2, 0)))
        updates, s = opt.update(grads, s, p)
        p = optax.apply_updates(p, updates)
        per = -jnp.sum(t * jax.nn.log_softmax(z2), axis=-1) * vf
        right = (jnp.argmax(z2, axis=-1) == yb).astype(jnp.float32) * vf
        return (p, s, sums + jnp.stack([jnp.sum(per), jnp.sum(right)])), None

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def epoch(p, s, key, x, y):
        key, epoch_key = jax.random.split(key)  # fit's key rule: the same batches as fit's
        order = jax.random.permutation(jax.random.split(epoch_key)[0], n)
        idx = jnp.concatenate([order, order[:pad]]).reshape(steps, BATCH)
        valid = (jnp.arange(steps * BATCH) < n).reshape(steps, BATCH)
        xs = (x[idx], y[idx], valid) if v.gather == "whole" else (idx, valid)
        carry = (p, s, jnp.zeros(2, jnp.float32))
        (p, s, sums), _ = lax.scan(functools.partial(step, x=x, y=y), carry, xs)
        return p, s, key, sums

    return epoch


def _hlo_counts(text: str | None) -> dict:
    """Transposes, and the dots each library runs, in an optimised HLO module's text: a dot inside
    a computation that a YNNPACK or oneDNN fusion calls runs there, every other one on Eigen."""
    text = text or ""
    bodies = dict(re.findall(r"^(?:ENTRY )?%([\w.\-]+) [^\n]*\{\n(.*?)^\}", text, re.M | re.S))
    library = {}
    for line in text.splitlines():
        found = re.search(r"kind=kCustom, calls=%([\w.\-]+).*\"kind\":\"__(\w+)_fusion\"", line)
        if found:
            library[found.group(1)] = found.group(2)
    dots = {name: len(re.findall(r" dot\(", body)) for name, body in bodies.items()}
    counts = {"transposes": len(re.findall(r" transpose\(", text)), "ynn_dots": 0, "onednn_dots": 0}
    for name, n in dots.items():
        if name in library:
            counts[f"{library[name]}_dots"] = counts.get(f"{library[name]}_dots", 0) + n
    counts["eigen_dots"] = sum(n for name, n in dots.items() if name not in library)
    return counts


class _ModelMethod:
    def __init__(self, v: Variant, x, y, weights):
        import jax
        import jax.numpy as jnp
        import optax

        n = len(x)
        images = np.rint(x * 255).astype(np.uint8) if v.images == "uint8" else x
        p = tuple((jnp.asarray(w.T if v.layout == "in_out" else w), jnp.asarray(b)) for w, b in weights)
        self.args = [p, optax.sgd(LR).init(p), jax.random.key(1), jax.device_put(images), jax.device_put(y)]
        t0 = time.perf_counter()
        self.compiled = _epoch_program(v, n).lower(*self.args).compile(compiler_options=dict(v.options) or None)
        self.compile_s = time.perf_counter() - t0
        self.hlo = _hlo_counts(self.compiled.as_text())
        self.n, self.last_loss = n, None

    def epoch(self) -> float:
        t0 = time.perf_counter()
        p, s, key, sums = self.compiled(*self.args)
        sums = np.asarray(sums)  # the one host read of the epoch
        seconds = time.perf_counter() - t0
        self.args[:3] = [p, s, key]
        self.last_loss = float(sums[0]) / self.n
        return seconds


class _FitMethod:
    def __init__(self, x, y, weights):
        import jax
        import optax

        import fnnjax

        mlp = fnnjax.MLP(SIZES, hidden="relu", output="softmax")
        params = tuple(fnnjax.Layer(w, b) for w, b in weights)
        self.trainer = fnnjax.Trainer(
            mlp, params, (x, y), optimizer=optax.sgd(LR), epochs=10_000, batch_size=BATCH, key=jax.random.key(1)
        )
        self.compile_s, self.hlo, self.last_loss = self.trainer.compile_seconds, {}, None
        program = self.trainer.epoch_program
        assert program is not None  # epochs=10_000: there is always an epoch to compile
        self.hlo = _hlo_counts(program.as_text())

    def epoch(self) -> float:
        r = next(self.trainer)
        self.last_loss = r["train_loss"]
        return r["seconds"]


class _EvalMethod:
    """One evaluation of the test set: fit's compiled program, or one forward pass."""

    def __init__(self, kind: str, x_test, y_test, weights):
        import jax
        import jax.numpy as jnp

        import fnnjax

        mlp = fnnjax.MLP(SIZES, hidden="relu", output="softmax")
        params = tuple(fnnjax.Layer(jnp.asarray(w), jnp.asarray(b)) for w, b in weights)
        xs, ts = fnnjax.prepare_data(mlp, params, (x_test, y_test), what="eval")
        t0 = time.perf_counter()
        if kind != "eval_one_pass":
            chunk = 8192 if kind == "eval_chunks_8192" else fnnjax.EVAL_BATCH_SIZE
            fn = fnnjax.evaluation_sums.lower(
                params, xs, ts, mlp=mlp, loss="cross_entropy", accuracy=True, batch_size=min(chunk, len(x_test))
            ).compile()
        else:

            def one_pass(p, x, t):
                z = fnnjax.forward(mlp, p, x)
                return jnp.stack(
                    [
                        jnp.sum(-jnp.sum(t * jnp.log(z), -1)),
                        jnp.sum((jnp.argmax(z, -1) == jnp.argmax(t, -1)).astype(z.dtype)),
                    ]
                )

            fn = jax.jit(one_pass).lower(params, xs, ts).compile()
        self.compile_s = time.perf_counter() - t0
        self.call = lambda: np.asarray(fn(params, xs, ts))
        self.hlo, self.last_loss = {}, None

    def epoch(self) -> float:
        t0 = time.perf_counter()
        self.last_loss = float(self.call()[0])
        return time.perf_counter() - t0


def _interleaved(made: dict, warmup: int, repeats: int) -> dict[str, list[float]]:
    names = list(made)
    times = {k: [] for k in names}
    for r in range(warmup + repeats):
        for k in names if r % 2 == 0 else names[::-1]:
            seconds = made[k].epoch()
            if r >= warmup:
                times[k].append(seconds)
    return times


def _plot(results: dict, path: Path, source: str) -> Path:
    from fnnjax.benchmarks._plot import new_figure, save

    fig, axes = new_figure(1, 1, width=7.5, height=4.2)
    ax = axes[0, 0]
    names = [m for m in results if "speedup_vs_model" in results[m]]
    values = [results[m]["speedup_vs_model"] for m in names]
    ax.barh(range(len(names)), values, color=["C2" if v > 1.02 else "C3" if v < 0.98 else "C7" for v in values])
    ax.axvline(1.0, color="k", linewidth=1)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("epoch speed-up over the model epoch (median of per-round ratios; > 1 faster)")
    ax.set_title(f"levers on the notes' recipe, {source}", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return save(fig, path)


def run(args) -> int:
    """Run the benchmark; write the results; return 0."""
    import jax

    from fnnjax.benchmarks._harness import result_name, write_results, wrote_line
    from fnnjax.benchmarks.train import _initial_weights, _load

    methods, repeats = _checked_options(args)
    d = _load(args.data_dir)
    x, y, source = d.x, d.y, d.source
    if args.samples:
        if not BATCH <= args.samples <= len(x):
            raise UsageError(f"--samples {args.samples} must lie in {BATCH}..{len(x)} (one batch to all)")
        x, y, source = x[: args.samples], y[: args.samples], f"{source}, first {args.samples} samples"
    if jax.devices()[0].platform != "cpu":
        methods = [m for m in methods if not VARIANTS.get(m, Variant()).options]  # CPU options only
    _, params = _initial_weights()
    weights = [(np.asarray(layer.W), np.asarray(layer.b)) for layer in params]
    load_before = os.getloadavg()
    print(f"levers benchmark: {', '.join(methods)}: 1 warm-up + {repeats} timed rounds ...", file=sys.stderr)
    made = {}
    for m in methods:
        if m == "fit":
            made[m] = _FitMethod(x, y, weights)
        elif m.startswith("eval_"):
            made[m] = _EvalMethod(m, d.x_test, d.y_test, weights)
        else:
            made[m] = _ModelMethod(VARIANTS[m], x, y, weights)
    times = _interleaved(made, 1, repeats)
    load_after = os.getloadavg()
    results = _results(times, made)
    table = _table(results, source, repeats, load_before, load_after)
    payload = {
        "workload": {
            "data": source,
            "sizes": SIZES,
            "lr": LR,
            "batch_size": BATCH,
            "samples": int(len(x)),
            "timed_rounds": repeats,
        },
        "variants": {m: dataclasses.asdict(v) for m, v in VARIANTS.items() if m in results},
        "load_average_before": load_before,
        "load_average_after": load_after,
        "results": results,
    }
    json_path, md_path = write_results(result_name("levers", args), payload, table, args.out)
    png = _plot(results, Path(json_path).with_suffix(".png"), source)
    print(table)
    print(wrote_line(json_path, md_path, png))
    return 0


def _checked_options(args) -> tuple[list[str], int]:
    """The methods to run and the timed rounds, from --methods, --repeats and --quick."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UsageError(f"unknown --methods {', '.join(unknown) or '(none)'}; valid methods are {', '.join(METHODS)}")
    repeats = 3 if args.quick else args.repeats
    if repeats < 20 and not args.quick:
        raise UsageError(
            f"--repeats {repeats} is below 20; the method asks for a median of >= 20 "
            "epochs (use --quick for a smoke run)"
        )
    return methods, repeats


def _results(times: dict[str, list[float]], made: dict) -> dict:
    """Each method's timing, HLO counts and its comparisons with ``model`` and ``eval_fit``."""
    from fnnjax.benchmarks._harness import Timing, paired_ratio

    results = {}
    for m, t in times.items():
        results[m] = Timing(
            median_s=statistics.median(t),
            min_s=min(t),
            max_s=max(t),
            repeats=len(t),
            compile_s=made[m].compile_s,
            times_s=t,
            **made[m].hlo,
        )
        if "model" in times and not m.startswith("eval_"):
            results[m]["speedup_vs_model"] = paired_ratio(times["model"], t)
            base = made["model"].last_loss
            results[m]["loss_rel_diff"] = abs(made[m].last_loss - base) / abs(base)
    if "eval_fit" in results and "fit" in results:
        results["eval_fit"]["share_of_fit_epoch"] = paired_ratio(times["eval_fit"], times["fit"])
    for m in ("eval_chunks_8192", "eval_one_pass"):
        if m in results and "eval_fit" in results:
            results[m]["speedup_vs_eval_fit"] = paired_ratio(times["eval_fit"], times[m])
    return results


def _table(results: dict, source: str, repeats: int, load_before, load_after) -> str:
    """The Markdown table of the results, headed by the workload and the machine's load."""
    from fnnjax.benchmarks._harness import markdown_table

    load = lambda v: ", ".join(f"{x:.1f}" for x in v)  # noqa: E731
    columns = [
        "method",
        "median_s",
        "min_s",
        "max_s",
        "compile_s",
        "speedup_vs_model",
        "loss_rel_diff",
        "transposes",
        "ynn_dots",
        "onednn_dots",
        "eigen_dots",
        "share_of_fit_epoch",
        "speedup_vs_eval_fit",
    ]
    return (
        f"Seconds per epoch (eval_*: per evaluation of the 10000 test images), {source}, "
        f"{'-'.join(map(str, SIZES))} ReLU, SGD lr {LR}, batch {BATCH}; methods interleaved, 1 "
        f"warm-up round then {repeats} timed rounds; speedup_vs_model = median over rounds of "
        f"model/method (> 1: the lever is faster); loss_rel_diff: the last epoch's train loss "
        f"against model's; HLO counts of the compiled epoch: transposes, and the dots run by "
        f"YNNPACK, oneDNN and Eigen. Machine load average (1/5/15 min) before: "
        f"{load(load_before)}, after: {load(load_after)}; cores: {os.cpu_count()}.\n\n"
        + markdown_table([{"method": m, **r} for m, r in results.items()], columns)
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m fnnjax.benchmarks.levers [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m fnnjax.benchmarks.levers", description=(__doc__ or "").split("\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
