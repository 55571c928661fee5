"""Seconds per training epoch of the notes' recipe: fnnjax.fit against a plain JAX loop and PyTorch.

The workload is the notes' d2l experiment: Fashion-MNIST (60000 x 784, 10 classes), 784-256-10
ReLU, weights N(0, 0.01^2), softmax cross-entropy, SGD lr 0.1, batch 256, reshuffled every epoch.
The real data is used when ``--data-dir`` or ``$FNNJAX_DATA`` points to it, otherwise random data
of the same shape (the time per epoch does not depend on the pixel values).

Methods (all start from the same initial weights):

- ``fnnjax_backprop``: :class:`fnnjax.Trainer` (the loop of ``fnnjax.fit``) with
  ``gradient="backprop"``, the hand-written delta recursion;
- ``fnnjax_grad``: the same with ``gradient="grad"`` (jax.grad);
- ``jax_plain``: a plain ``jax.grad`` + optax step in a jitted ``lax.scan`` over batches (it drops
  the last partial batch, as such loops usually do; fnnjax keeps it);
- ``fnnjax_backprop_unrollK``, ``fnnjax_grad_unrollK``: the same with ``fit(..., unroll=K)`` for
  every K > 1 of ``--unroll`` (K steps per iteration of the compiled loop: less loop overhead per
  step, which matters on a GPU where a step of this small net is a few microseconds);
- ``torch_eager``: the notes' PyTorch loop (d2l ``train_epoch_ch3``): ``DataLoader(shuffle=True)``
  over in-memory tensors, ``nn.Sequential(Flatten, Linear(784, 256), ReLU, Linear(256, 10))``,
  ``CrossEntropyLoss(reduction="none")``, ``torch.optim.SGD(lr=0.1)``, loss and accuracy summed
  with ``float(...)`` per batch; only when torch is importable. Where torch sees a CUDA GPU the
  net lives on it and every batch is moved there (d2l's GPU loop, ``X.to(device)``), unless
  ``--torch-device cpu``.

Method: the methods' epochs are run in alternation (round r runs one epoch of every method, in
reversed order on odd rounds), so that drift in the machine's load hits all of them alike; after
one warm-up round, ``--repeats`` rounds are timed. Reported per method: median, min and max seconds
per epoch, compile time (apart, before the first epoch), and the speed-up over torch as the median
of the per-round ratios ``torch_i / method_i``. An epoch's time covers training only (no test-set
evaluation) and, for fnnjax, the one host read of the epoch's metrics. Results:
``benchmarks/results/train_<platform>.json`` and ``.md`` (``--tag`` replaces the platform).

Run: ``FNNJAX_DATA=/path/holding/fashion-mnist python -m benchmarks.train`` (or ``fnnjax bench
train``); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from fnnjax.errors import UsageError

__all__ = ["add_arguments", "run", "main", "METHODS"]

METHODS = ("fnnjax_backprop", "fnnjax_grad", "jax_plain", "torch_eager")
SIZES = (784, 256, 10)
LR, BATCH = 0.1, 256
TARGET_SPEEDUP = 1.2
"""The CPU speed target: fnnjax at least 1.2x faster per epoch than the PyTorch eager loop."""
TARGET_GPU_EPOCH_S = 0.005
"""The GPU speed target: at most 5 ms per epoch after compilation."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this benchmark's options (and the shared --quick, --out, --repeats, --tag) to ``parser``."""
    from benchmarks._harness import add_common_arguments, int_list

    add_common_arguments(parser, default_repeats=20)
    parser.add_argument("--data-dir", default=None,
                        help="folder holding fashion-mnist/ (default: $FNNJAX_DATA; else random data)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {', '.join(METHODS)}")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch.set_num_threads for torch_eager (default 0: torch's default, one "
                        "per core)")
    parser.add_argument("--samples", type=int, default=0,
                        help="use only the first N training samples (default 0: all; for smoke tests)")
    parser.add_argument("--unroll", type=int_list, default=(1,),
                        help="comma-separated lax.scan unroll factors for the fnnjax methods, e.g. "
                        "1,4,16 (default 1); each K > 1 adds fnnjax_*_unrollK")
    parser.add_argument("--torch-device", default="auto",
                        help="device of torch_eager: auto (cuda when torch sees a GPU, else cpu), "
                        "cpu or cuda")
    parser.add_argument("--full-run", type=int, default=0, metavar="EPOCHS",
                        help="also time a whole fnnjax.fit of EPOCHS epochs, compile included (e.g. 50)")


def _load(data_dir):
    """(x float32 (N, 784), y int32 (N,), description)."""
    from fnnjax import data

    if data_dir is not None or os.environ.get(data.DATA_ENV_VAR):
        ds = data.load_fashion_mnist(data_dir)
        return ds.x_train, ds.y_train, "fashion-mnist"
    rng = np.random.default_rng(0)
    x = rng.random((60000, 784), dtype=np.float32)
    return x, rng.integers(0, 10, 60000).astype(np.int32), "random (60000, 784)"


def _initial_weights():
    """W ~ N(0, 0.01^2), zero biases (the notes' init), as numpy, shared by every method."""
    import jax

    import fnnjax

    mlp = fnnjax.MLP(SIZES, hidden="relu", output="softmax")
    return mlp, jax.tree.map(np.asarray, fnnjax.init_params(jax.random.key(0), mlp))


class _Method:
    """One way to train: ``epoch()`` runs one epoch and returns its seconds."""

    compile_s: float | None = None
    last_loss: float | None = None


class _FnnjaxMethod(_Method):
    def __init__(self, gradient: str, x, y, epochs: int, unroll: int = 1):
        import jax
        import optax

        import fnnjax

        mlp, params = _initial_weights()
        self.trainer = fnnjax.Trainer(mlp, params, (x, y), optimizer=optax.sgd(LR), epochs=epochs,
                                      batch_size=BATCH, key=jax.random.key(1), gradient=gradient,
                                      unroll=unroll)
        self.compile_s = self.trainer.compile_seconds

    def epoch(self) -> float:
        record = next(self.trainer)
        self.last_loss = record["train_loss"]
        return record["seconds"]


class _PlainJaxMethod(_Method):
    def __init__(self, x, y):
        import jax
        import jax.numpy as jnp
        import optax
        from jax import lax

        n, steps = len(x), len(x) // BATCH
        opt = optax.sgd(LR)

        def risk(p, xb, yb):
            h = jax.nn.relu(xb @ p[0][0].T + p[0][1][None, :])
            logits = h @ p[1][0].T + p[1][1][None, :]
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def epoch(p, s, key, x, y):
            key, k = jax.random.split(key)
            batches = jax.random.permutation(k, n)[: steps * BATCH].reshape(steps, BATCH)

            def body(carry, idx):
                p, s, total = carry
                value, g = jax.value_and_grad(risk)(p, x[idx], y[idx])
                updates, s = opt.update(g, s, p)
                return (optax.apply_updates(p, updates), s, total + value), None

            (p, s, total), _ = lax.scan(body, (p, s, jnp.zeros((), x.dtype)), batches)
            return p, s, key, total / steps

        _, params = _initial_weights()
        p = tuple((jnp.asarray(layer.W), jnp.asarray(layer.b)) for layer in params)
        self.args = [p, opt.init(p), jax.random.key(1), jax.device_put(x), jax.device_put(y)]
        t0 = time.perf_counter()
        self.compiled = epoch.lower(*self.args).compile()
        self.compile_s = time.perf_counter() - t0

    def epoch(self) -> float:
        t0 = time.perf_counter()
        p, s, key, loss = self.compiled(*self.args)
        self.last_loss = float(loss)
        seconds = time.perf_counter() - t0
        self.args[:3] = [p, s, key]
        return seconds


class _TorchMethod(_Method):
    def __init__(self, x, y, threads: int, device: str = "auto"):
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset

        if threads > 0:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise UsageError("--torch-device cuda but torch sees no CUDA GPU; use --torch-device cpu or auto")
        self.device = torch.device(device)
        torch.manual_seed(0)
        _, params = _initial_weights()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        with torch.no_grad():
            for linear, layer in zip((self.net[1], self.net[3]), params):
                linear.weight.copy_(torch.from_numpy(np.array(layer.W)))
                linear.bias.zero_()
        self.net.to(self.device)
        self.loader = DataLoader(TensorDataset(torch.from_numpy(np.ascontiguousarray(x).reshape(-1, 1, 28, 28)),
                                               torch.from_numpy(y.astype(np.int64))),
                                 batch_size=BATCH, shuffle=True)
        self.loss = nn.CrossEntropyLoss(reduction="none")
        self.trainer = torch.optim.SGD(self.net.parameters(), lr=LR)

    def epoch(self) -> float:  # d2l train_epoch_ch3
        t0 = time.perf_counter()
        self.net.train()
        total, correct, count = 0.0, 0.0, 0
        for xb, yb in self.loader:
            xb, yb = xb.to(self.device), yb.to(self.device)
            y_hat = self.net(xb)
            l = self.loss(y_hat, yb)
            self.trainer.zero_grad()
            l.mean().backward()
            self.trainer.step()
            total += float(l.detach().sum())
            correct += float((y_hat.detach().argmax(axis=1) == yb).sum())
            count += yb.numel()
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize()
        self.last_loss = total / count
        return time.perf_counter() - t0


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _make(method: str, x, y, epochs: int, args) -> _Method:
    if method.startswith("fnnjax_"):
        gradient, _, unroll = method.removeprefix("fnnjax_").partition("_unroll")
        return _FnnjaxMethod(gradient, x, y, epochs, int(unroll or 1))
    if method == "jax_plain":
        return _PlainJaxMethod(x, y)
    return _TorchMethod(x, y, args.torch_threads, args.torch_device)


def _with_unrolls(methods: list[str], unrolls) -> list[str]:
    """``methods`` with ``fnnjax_G_unrollK`` added after each ``fnnjax_G`` for every K > 1."""
    out = []
    for m in methods:
        out.append(m)
        if m.startswith("fnnjax_"):
            out += [f"{m}_unroll{k}" for k in unrolls if k > 1]
    return out


def _interleaved(methods: dict[str, _Method], warmup: int, repeats: int) -> dict[str, list[float]]:
    names = list(methods)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(warmup + repeats):
        for k in (names if r % 2 == 0 else names[::-1]):
            seconds = methods[k].epoch()
            if r >= warmup:
                times[k].append(seconds)
    return times


def _plot_rounds(times: dict[str, list[float]], path: Path, source: str) -> Path:
    """Seconds of every timed epoch, round by round, one line per method."""
    from matplotlib.ticker import MaxNLocator

    from benchmarks._plot import new_figure, save

    fig, axes = new_figure(1, 1, width=7.0, height=4.0)
    ax = axes[0, 0]
    for m, t in times.items():
        ax.plot(range(1, len(t) + 1), t, marker="o", markersize=3, label=f"{m} (median {statistics.median(t):.3g} s)")
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("timed round (one epoch of every method)")
    ax.set_ylabel("seconds per epoch")
    ax.set_title(f"notes' recipe 784-256-10, batch {BATCH}, {source}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def _target_met(platform: str, timing: dict) -> bool | None:
    """The speed target for one fnnjax method: ``None`` where it cannot be judged."""
    if platform == "gpu":
        return timing["median_s"] <= TARGET_GPU_EPOCH_S
    if "speedup_vs_torch" not in timing:
        return None
    return timing["speedup_vs_torch"] >= TARGET_SPEEDUP


def _target_text(platform: str) -> str:
    if platform == "gpu":
        return f"median <= {TARGET_GPU_EPOCH_S * 1e3:g} ms per epoch (the GPU speed target)"
    return f"speedup_vs_torch >= {TARGET_SPEEDUP} (the CPU speed target: 1.2x the PyTorch loop)"


def _fastest_unroll(results: dict) -> int:
    """The unroll factor of the fastest fnnjax_backprop variant measured (1 if none was)."""
    timed = {m: r["median_s"] for m, r in results.items() if m.startswith("fnnjax_backprop")}
    if not timed:
        return 1
    best = min(timed, key=timed.get)
    return int(best.partition("_unroll")[2] or 1)


def _full_run(x, y, epochs: int, unroll: int = 1) -> dict:
    import jax
    import optax

    import fnnjax

    mlp, params = _initial_weights()
    t0 = time.perf_counter()
    _, hist = fnnjax.fit(mlp, params, (x, y), optimizer=optax.sgd(LR), epochs=epochs,
                         batch_size=BATCH, key=jax.random.key(1), gradient="backprop", unroll=unroll)
    return {"epochs": epochs, "unroll": unroll, "wall_s": time.perf_counter() - t0,
            "compile_s": hist.compile_seconds,
            "median_epoch_s": statistics.median(hist["seconds"]),
            "final_train_loss": hist.epochs[-1]["train_loss"],
            "final_train_acc": hist.epochs[-1]["train_acc"]}


def run(args) -> int:
    """Run the benchmark; write the results; return 0."""
    from benchmarks._harness import Timing, markdown_table, paired_ratio, result_name, write_results

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UsageError(f"unknown --methods {', '.join(unknown)}; valid methods are {', '.join(METHODS)}")
    repeats = 3 if args.quick else args.repeats
    if repeats < 20 and not args.quick:
        raise UsageError(f"--repeats {repeats} is below 20; the method asks for a median of >= 20 "
                         "epochs (use --quick for a smoke run)")
    if args.torch_device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"unknown --torch-device {args.torch_device!r}; valid values are auto, cpu, cuda")
    if "torch_eager" in methods and not _torch_available():
        print("train benchmark: torch is not importable; skipping torch_eager", file=sys.stderr)
        methods.remove("torch_eager")
    methods = _with_unrolls(methods, args.unroll)
    x, y, source = _load(args.data_dir)
    if args.samples:
        if not BATCH <= args.samples <= len(x):
            raise UsageError(f"--samples {args.samples} must lie in {BATCH}..{len(x)} (one batch to all)")
        x, y, source = x[:args.samples], y[:args.samples], f"{source}, first {args.samples} samples"
    import jax

    platform = jax.devices()[0].platform
    warmup = 1
    load_before = os.getloadavg()  # other processes on the machine make timings noisy
    print(f"train benchmark: {', '.join(methods)}: {warmup} warm-up + {repeats} timed epochs each, "
          "interleaved ...", file=sys.stderr)
    made = {m: _make(m, x, y, warmup + repeats, args) for m in methods}
    times = _interleaved(made, warmup, repeats)
    results = {}
    for m, method in made.items():
        t = times[m]
        results[m] = Timing(median_s=statistics.median(t), min_s=min(t), max_s=max(t), repeats=len(t),
                            compile_s=method.compile_s, times_s=t, final_train_loss=method.last_loss)
        if "torch_eager" in times:
            results[m]["speedup_vs_torch"] = paired_ratio(times["torch_eager"], t)
        if m.startswith("fnnjax_"):
            results[m]["target_met"] = _target_met(platform, results[m])
    if "torch_eager" in made:
        results["torch_eager"]["torch_threads"] = made["torch_eager"].threads
        results["torch_eager"]["torch_device"] = str(made["torch_eager"].device)
    full = _full_run(x, y, args.full_run, _fastest_unroll(results)) if args.full_run else None
    torch_note = (f"; torch threads: {made['torch_eager'].threads}, torch device: "
                  f"{made['torch_eager'].device}" if "torch_eager" in made else "")
    columns = ["method", "median_s", "min_s", "max_s", "repeats", "compile_s", "speedup_vs_torch",
               "target_met", "final_train_loss"]
    table = (f"Seconds per epoch, {source}, {'-'.join(map(str, SIZES))} ReLU, SGD lr {LR}, batch "
             f"{BATCH}; epochs of the methods interleaved, {warmup} warm-up round then {repeats} "
             f"timed rounds; speedup_vs_torch = median over rounds of torch/method; target_met: "
             f"{_target_text(platform)}. Machine load "
             f"average (1/5/15 min) before: {', '.join(f'{v:.1f}' for v in load_before)}; cores: "
             f"{os.cpu_count()}{torch_note}.\n\n" + markdown_table([{"method": m, **r} for m, r in results.items()],
                                                       columns))
    if full:
        table += (f"\n\nWhole fnnjax.fit of {full['epochs']} epochs (backprop, unroll "
                  f"{full['unroll']}): {full['wall_s']:.2f} s "
                  f"wall, of which compile {full['compile_s']:.2f} s; median epoch "
                  f"{full['median_epoch_s']:.3f} s.")
    payload = {"workload": {"data": source, "sizes": SIZES, "lr": LR, "batch_size": BATCH,
                            "samples": int(len(x)), "warmup_rounds": warmup, "timed_rounds": repeats},
               "load_average_before": load_before, "load_average_after": os.getloadavg(),
               "results": results, "full_run": full}
    name = result_name("train", args)
    json_path, md_path = write_results(name, payload, table, args.out)
    png = _plot_rounds(times, Path(json_path).with_suffix(".png"), source)
    print(table)
    print(f"wrote {json_path}, {md_path} and {png}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.train [options]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
