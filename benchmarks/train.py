"""Seconds per training epoch of the notes' recipe: fnnjax against its strongest peers, side by side.

The workload is the notes' d2l experiment: Fashion-MNIST (60000 x 784, 10 classes), 784-256-10
ReLU, weights N(0, 0.01^2), softmax cross-entropy, SGD lr 0.1, batch 256, reshuffled every epoch.
The real data is used when ``--data-dir`` or ``$FNNJAX_DATA`` points to it, otherwise random
images of the same shape (the time per epoch does not depend on the pixel values).

Methods (all start from the same initial weights, except ``fnnjax_train``, which initialises
from its ``--seed`` as the command does):

- ``fnnjax_backprop``: :class:`fnnjax.Trainer` (the loop of ``fnnjax.fit``) with
  ``gradient="backprop"``, the hand-written delta recursion: fit's bare epoch (no evaluation);
- ``fnnjax_grad``: the same with ``gradient="grad"`` (jax.grad);
- ``fnnjax_train``: the ``fnnjax train`` command (the notes' recipe, its defaults: test-set
  evaluation after every epoch and a checkpoint at most every 30 s), run in a thread of this
  process and paused after each epoch, so that its epochs interleave with the others'; an epoch
  is everything the command does between two epochs' ends (training, evaluation, the progress
  callback, a checkpoint when one is due). Its 30 s are wall time, pauses included, so here it
  saves every few rounds, far more often per epoch than an uninterrupted run does;
  ``fnnjax_train_nockpt``: the same with ``--checkpoint-every 0``; ``fnnjax_train_ckpt1``: with
  ``--checkpoint-every 1``, a checkpoint after every epoch (its difference from
  ``fnnjax_train_nockpt`` is the cost of one save);
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
  ``--torch-device cpu``;
- the peers (:mod:`fnnjax.benchmarks._peers`, the ``bench`` extra): ``torch_loop``, the best-effort
  PyTorch loop (tensors preloaded on the device, ``randperm`` indexing, loss and accuracy
  accumulated on the device, one sync per epoch, fused SGD); ``torch_compile``, the same step
  through ``torch.compile`` (recorded as failed, with the reason, when it does not compile);
  ``flax_nnx``, Flax NNX in the functional training loop of Flax's performance guide;
  ``equinox``, Equinox's ``filter_jit`` step; each skipped (with a note) when its package is
  missing;
- ``blas_matmuls``: no training, only the products of ``ceil(N / B)`` steps' matrix
  multiplications (:mod:`fnnjax.benchmarks._gemm`) with the faster of numpy's and torch's BLAS for each:
  the time an epoch would take if it were nothing but its matmuls at BLAS speed.

Method: the methods' epochs are run in alternation (round r runs one epoch of every method, in
reversed order on odd rounds), so that drift in the machine's load hits all of them alike; after
one warm-up round, ``--repeats`` rounds are timed. Reported per method: median, min and max seconds
per epoch, compile time (apart, before the first epoch; for loops that compile inside their first
epoch, that epoch's excess over the median), the speed-ups as medians of per-round ratios
(``speedup_vs_torch``: over the notes' loop; ``speedup_vs_fastest_peer``: over the peer with the
lowest median), and ``matmul_gflops``: the step's matmul FLOPs of an epoch (``ceil(N / B)`` full
batches) over the epoch's median seconds, beside the BLAS rate on the same shapes and on a large
square product. An epoch's time covers training only (no test-set evaluation, except in
``fnnjax_train``) and the one host read of the epoch's metrics. The targets (CPU): fit's epoch at
least 1.25x faster than the fastest peer; the ``fnnjax train`` command's epoch within 10 % of
fit's bare epoch (the median of the per-round ratios, and an uninterrupted run's epoch: the one
without checkpoints plus one save, as measured, per 30 s; the ratio of the total times is reported
as a bound, since the command's 30 s count the pauses); the notes' loop: fnnjax at least 1.2x
faster; (GPU): at most 5 ms per epoch.
Results: ``benchmarks/results/train_<platform>.json``, ``.md`` and ``.png`` (``--tag`` replaces
the platform), with the load average before and after.

Run: ``FNNJAX_DATA=/path/holding/fashion-mnist python -m fnnjax.benchmarks.train`` (or ``fnnjax bench
train``); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fnnjax.errors import UsageError
from fnnjax.presets import CHECKPOINT_EVERY, checkpoint_policy

__all__ = ["add_arguments", "run", "main", "METHODS", "PEERS", "DEFAULT_METHODS"]

METHODS = (
    "fnnjax_backprop",
    "fnnjax_grad",
    "fnnjax_train",
    "fnnjax_train_nockpt",
    "fnnjax_train_ckpt1",
    "jax_plain",
    "torch_eager",
    "torch_loop",
    "torch_compile",
    "flax_nnx",
    "equinox",
    "blas_matmuls",
)
"""Every method this benchmark knows (see the module docstring)."""
PEERS = ("torch_loop", "torch_compile", "flax_nnx", "equinox")
"""The strongest peers of fnnjax.fit: the target is measured against the fastest of them."""
DEFAULT_METHODS = METHODS
"""What runs without ``--methods``: all of them (those whose package is missing are skipped)."""
SIZES = (784, 256, 10)
LR, BATCH = 0.1, 256
TARGET_SPEEDUP = 1.2
"""The CPU speed target against the notes' loop: fnnjax at least 1.2x faster per epoch than
``torch_eager``."""
TARGET_PEER_SPEEDUP = 1.25
"""The CPU speed target against the peers: fit's epoch at least 1.25x faster than the fastest
peer's (median of the per-round ratios)."""
TARGET_COMMAND_RATIO = 1.10
"""The command's target: an epoch of ``fnnjax train`` (evaluation and checkpoint included) at
most 1.10x fit's bare epoch (median of the per-round ratios, and an uninterrupted run's epoch)."""
COMMAND_CHECKPOINT_S: float = (checkpoint_policy(CHECKPOINT_EVERY) or {})["seconds"]
"""The seconds between saves of ``fnnjax train``'s default ``--checkpoint-every`` (30 s): an
uninterrupted run saves once per that many seconds of its own time."""
TARGET_GPU_EPOCH_S = 0.005
"""The GPU speed target: at most 5 ms per epoch after compilation."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this benchmark's options (and the shared --quick, --out, --repeats, --tag) to ``parser``."""
    from fnnjax.benchmarks._harness import add_common_arguments, int_list

    add_common_arguments(parser, default_repeats=20)
    parser.add_argument(
        "--data-dir", default=None, help="folder holding fashion-mnist/ (default: $FNNJAX_DATA; else random data)"
    )
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated subset of {', '.join(METHODS)} (default: all)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch.set_num_threads for the torch methods (default 0: torch's default, one per core)",
    )
    parser.add_argument(
        "--samples", type=int, default=0, help="use only the first N training samples (default 0: all; for smoke tests)"
    )
    parser.add_argument(
        "--unroll",
        type=int_list,
        default=(1,),
        help="comma-separated lax.scan unroll factors for the fnnjax methods, e.g. "
        "1,4,16 (default 1); each K > 1 adds fnnjax_*_unrollK",
    )
    parser.add_argument(
        "--torch-device",
        default="auto",
        help="device of the torch methods: auto (cuda when torch sees a GPU, else cpu), cpu or cuda",
    )
    parser.add_argument(
        "--full-run",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="also time a whole fnnjax.fit of EPOCHS epochs, compile included (e.g. 50)",
    )


class _Data(NamedTuple):
    x: np.ndarray  # (N, 784) float32 in [0, 1]
    y: np.ndarray  # (N,) int32
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    folder: str | None  # a --data-dir holding exactly these arrays as fashion-mnist/, if any


def _load(data_dir) -> _Data:
    """The real data set when a folder is given (or $FNNJAX_DATA is set), else random images."""
    from fnnjax import data

    if data_dir is not None or os.environ.get(data.DATA_ENV_VAR):
        ds = data.load_fashion_mnist(data_dir)
        folder = data_dir if data_dir is not None else os.environ[data.DATA_ENV_VAR]
        return _Data(ds.x_train, ds.y_train, ds.x_test, ds.y_test, "fashion-mnist", str(folder))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (70000, 784), dtype=np.uint8)  # what an IDX file can hold
    x = images.astype(np.float32) / np.float32(255.0)
    y = rng.integers(0, 10, 70000).astype(np.int32)
    return _Data(x[:60000], y[:60000], x[60000:], y[60000:], "random (60000, 784)", None)


def _write_idx_folder(d: _Data, root: Path) -> str:
    """Write ``d`` as a fashion-mnist/ folder of IDX files (with SHA256SUMS) under ``root``."""
    import hashlib

    from fnnjax import data

    folder = root / "fashion-mnist"
    folder.mkdir(parents=True)
    arrays = {
        "train-images-idx3-ubyte": d.x,
        "train-labels-idx1-ubyte": d.y,
        "t10k-images-idx3-ubyte": d.x_test,
        "t10k-labels-idx1-ubyte": d.y_test,
    }
    lines = []
    for name, a in arrays.items():
        a = np.rint(a * 255).astype(np.uint8).reshape(-1, 28, 28) if a.dtype == np.float32 else a.astype(np.uint8)
        path = data.write_idx(folder / name, a)
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {name}\n")
    (folder / "SHA256SUMS").write_text("".join(lines))
    return str(root)


def _initial_weights():
    """W ~ N(0, 0.01^2), zero biases (the notes' init), as numpy, shared by every method."""
    import jax

    import fnnjax

    mlp = fnnjax.MLP(SIZES, hidden="relu", output="softmax")
    return mlp, jax.tree.map(np.asarray, fnnjax.init_params(jax.random.key(0), mlp))


class _Method:
    """One way to train: ``epoch()`` runs one epoch and returns its seconds."""

    def epoch(self) -> float:
        raise NotImplementedError

    compile_s: float | None = None
    last_loss: float | None = None
    compiles_in_first_epoch = False  # then compile_s is the first epoch's excess over the median


class _FnnjaxMethod(_Method):
    def __init__(self, gradient: str, x, y, epochs: int, unroll: int = 1):
        import jax
        import optax

        import fnnjax

        mlp, params = _initial_weights()
        self.trainer = fnnjax.Trainer(
            mlp,
            params,
            (x, y),
            optimizer=optax.sgd(LR),
            epochs=epochs,
            batch_size=BATCH,
            key=jax.random.key(1),
            gradient=gradient,
            unroll=unroll,
        )
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
        import torch  # pyright: ignore[reportMissingImports]  (the optional bench extra)
        from torch import nn  # pyright: ignore[reportMissingImports]  (the optional bench extra)
        from torch.utils.data import DataLoader, TensorDataset  # pyright: ignore[reportMissingImports]  (the optional bench extra)

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
                linear.weight.copy_(torch.from_numpy(np.array(layer.W)))  # type: ignore[operator]
                linear.bias.zero_()  # type: ignore[operator]
        self.net.to(self.device)
        self.loader = DataLoader(
            TensorDataset(
                torch.from_numpy(np.ascontiguousarray(x).reshape(-1, 1, 28, 28)), torch.from_numpy(y.astype(np.int64))
            ),
            batch_size=BATCH,
            shuffle=True,
        )
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
            import torch  # pyright: ignore[reportMissingImports]  (the optional bench extra)

            torch.cuda.synchronize()
        self.last_loss = total / count
        return time.perf_counter() - t0


class _PeerMethod(_Method):
    """A peer of :mod:`fnnjax.benchmarks._peers` on the notes' recipe (SGD lr 0.1, batch 256)."""

    def __init__(self, name: str, x, y, args):
        from . import _peers

        _, params = _initial_weights()
        weights = [(np.asarray(layer.W), np.asarray(layer.b)) for layer in params]
        recipe = _peers.Recipe(SIZES, "sgd", LR, BATCH, epochs=1)
        if name in ("torch_loop", "torch_compile"):
            self.loop = _peers.TorchLoop(
                x,
                y,
                weights,
                recipe,
                threads=args.torch_threads,
                device=_torch_device(args.torch_device),
                compile=name == "torch_compile",
            )
            self.threads, self.device = self.loop.threads, str(self.loop.device)
        elif name == "flax_nnx":
            self.loop = _peers.NnxLoop(x, y, weights, recipe)
        else:
            self.loop = _peers.EquinoxLoop(x, y, weights, recipe)
        self.compile_s = self.loop.compile_s
        self.compiles_in_first_epoch = self.compile_s is None

    def epoch(self) -> float:
        seconds = self.loop.epoch()
        self.last_loss = self.loop.last_loss
        return seconds


class _CommandMethod(_Method):
    """``fnnjax train`` (the notes' recipe) in a thread, paused after every epoch.

    The command runs in-process (``fnnjax.cli.main``); a last callback appended to the ones the
    command passes to ``fnnjax.fit`` (:func:`fnnjax.benchmarks._command.fit_callbacks`, this thread only)
    marks the end of each epoch and waits until ``epoch()`` lets the next one start, so the
    command's epochs interleave with the other methods' and nothing else runs while one is timed.
    """

    def __init__(self, folder: str | None, epochs: int, extra: tuple[str, ...] = ()):
        from fnnjax.benchmarks._command import fit_callbacks

        self._tmp = tempfile.TemporaryDirectory(prefix="fnnjax-bench-train-")
        self.argv = [
            "train",
            "--data-dir",
            str(folder),
            "--epochs",
            str(epochs + 1),
            "--quiet",
            "--out",
            str(Path(self._tmp.name) / "run"),
            *extra,
        ]
        self._go, self._done = threading.Semaphore(0), threading.Semaphore(0)
        self._ended_at, self._error, self._status = 0.0, None, None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._watch = fit_callbacks(self._gate, thread=self._thread)
        self._watch.__enter__()
        t0 = time.perf_counter()
        self._thread.start()
        self._wait()  # data loading, compilation and epoch 1
        self.compile_s = self._ended_at - t0

    def _gate(self, record, state) -> None:
        self._ended_at = time.perf_counter()
        self.last_loss = record["train_loss"]
        self._done.release()
        self._go.acquire()

    def _main(self) -> None:
        from fnnjax.cli import main

        try:
            self._status = main(self.argv)
        except BaseException as err:  # re-raised in the benchmark's thread
            self._error = err
        finally:
            self._done.release()

    def _wait(self) -> None:
        self._done.acquire()
        if self._error is not None:
            raise RuntimeError(f"fnnjax {' '.join(self.argv)} failed: {self._error}") from self._error
        if not self._thread.is_alive() and self._status not in (None, 0):
            raise RuntimeError(f"fnnjax {' '.join(self.argv)} exited with status {self._status}")

    def epoch(self) -> float:
        t0 = time.perf_counter()
        self._go.release()
        self._wait()
        return self._ended_at - t0

    def finish(self) -> None:
        """Let the command end (it writes its outputs), restore ``fnnjax.fit``, clean up."""
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # its closing line names a temporary folder
            self._go.release()
            self._thread.join()
        self._watch.__exit__(None, None, None)
        self._tmp.cleanup()


class _BlasMethod(_Method):
    """``ceil(N / B)`` steps' matmuls at BLAS speed (:class:`fnnjax.benchmarks._gemm.BlasMatmuls`)."""

    def __init__(self, n: int, args):
        from fnnjax.benchmarks._gemm import BlasMatmuls

        device = _torch_device(args.torch_device) if _torch_available() else None
        self.blas = BlasMatmuls(SIZES, BATCH, -(-n // BATCH), device)

    def epoch(self) -> float:
        return self.blas.epoch()


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401  # pyright: ignore[reportMissingImports]  (the optional bench extra)
    except ImportError:
        return False
    return True


def _torch_device(option: str) -> str:
    if option != "auto":
        return option
    import torch  # pyright: ignore[reportMissingImports]  (the optional bench extra)

    return "cuda" if torch.cuda.is_available() else "cpu"


def _make(method: str, d: _Data, epochs: int, args, folder: str | None) -> _Method:
    x, y = d.x, d.y
    if method.startswith("fnnjax_train"):
        every = {"fnnjax_train_nockpt": "0", "fnnjax_train_ckpt1": "1"}.get(method)
        extra = ("--checkpoint-every", every) if every else ()
        return _CommandMethod(folder, epochs, extra)
    if method.startswith("fnnjax_"):
        gradient, _, unroll = method.removeprefix("fnnjax_").partition("_unroll")
        return _FnnjaxMethod(gradient, x, y, epochs, int(unroll or 1))
    if method == "jax_plain":
        return _PlainJaxMethod(x, y)
    if method == "torch_eager":
        return _TorchMethod(x, y, args.torch_threads, args.torch_device)
    if method == "blas_matmuls":
        return _BlasMethod(len(x), args)
    return _PeerMethod(method, x, y, args)


def _runnable(methods: list[str]) -> tuple[list[str], dict[str, str]]:
    """The methods whose packages are importable, and a note for each one skipped."""
    from . import _peers

    keep, skipped = [], {}
    for m in methods:
        if m in PEERS and not _peers.available(m):
            skipped[m] = f"skipped: {_peers.PEER_PACKAGES[m]} is not installed (pip install 'fnnjax[bench]')"
        elif m == "torch_eager" and not _torch_available():
            skipped[m] = "skipped: torch is not installed (pip install 'fnnjax[bench]')"
        else:
            keep.append(m)
    return keep, skipped


def _with_unrolls(methods: list[str], unrolls) -> list[str]:
    """``methods`` with ``fnnjax_G_unrollK`` added after each ``fnnjax_G`` for every K > 1."""
    out = []
    for m in methods:
        out.append(m)
        if m in ("fnnjax_backprop", "fnnjax_grad"):
            out += [f"{m}_unroll{k}" for k in unrolls if k > 1]
    return out


def _interleaved(
    methods: dict[str, _Method], warmup: int, repeats: int, failed: dict[str, str]
) -> dict[str, list[float]]:
    """Run the rounds; a ``torch_compile`` that raises is dropped and recorded in ``failed``."""
    names = list(methods)
    times: dict[str, list[float]] = {k: [] for k in names}
    firsts: dict[str, float] = {}
    for r in range(warmup + repeats):
        for k in names if r % 2 == 0 else names[::-1]:
            if k in failed:
                continue
            try:
                seconds = methods[k].epoch()
            except Exception as err:
                if k != "torch_compile":
                    raise
                failed[k] = f"failed to compile: {type(err).__name__}: {str(err).strip().splitlines()[0][:300]}"
                print(f"train benchmark: torch_compile {failed[k]}", file=sys.stderr)
                continue
            if r == 0:
                firsts[k] = seconds
            if r >= warmup:
                times[k].append(seconds)
        print(
            f"train benchmark: round {r + 1}/{warmup + repeats}: "
            + ", ".join(f"{k} {(times[k] or [firsts.get(k, 0.0)])[-1]:.3f} s" for k in names if k not in failed),
            file=sys.stderr,
            flush=True,
        )
    for k in list(times):
        if k in failed:
            del times[k]
        elif methods[k].compiles_in_first_epoch and k in firsts:
            methods[k].compile_s = max(firsts[k] - statistics.median(times[k]), 0.0)
    return times


def _plot_rounds(times: dict[str, list[float]], path: Path, source: str) -> Path:
    """Seconds of every timed epoch, round by round, one line per method."""
    from matplotlib.ticker import MaxNLocator

    from fnnjax.benchmarks._plot import new_figure, save

    fig, axes = new_figure(1, 1, width=8.0, height=4.8)
    ax = axes[0, 0]
    for m, t in times.items():
        style = "--" if m in PEERS or m.startswith("torch") else ":" if m == "blas_matmuls" else "-"
        ax.plot(
            range(1, len(t) + 1), t, style, marker="o", markersize=3, label=f"{m} (median {statistics.median(t):.3g} s)"
        )
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("timed round (one epoch of every method)")
    ax.set_ylabel("seconds per epoch")
    ax.set_title(f"notes' recipe 784-256-10, batch {BATCH}, {source}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return save(fig, path)


def _target_met(platform: str, timing: dict) -> bool | None:
    """The notes'-loop speed target for one fnnjax method: ``None`` where it cannot be judged."""
    if platform == "gpu":
        return timing["median_s"] <= TARGET_GPU_EPOCH_S
    if "speedup_vs_torch" not in timing:
        return None
    return timing["speedup_vs_torch"] >= TARGET_SPEEDUP


def _target_text(platform: str) -> str:
    if platform == "gpu":
        return f"median <= {TARGET_GPU_EPOCH_S * 1e3:g} ms per epoch (the GPU speed target)"
    return f"speedup_vs_torch >= {TARGET_SPEEDUP} (the CPU speed target against the notes' loop)"


def _fastest_unroll(results: dict) -> int:
    """The unroll factor of the fastest fnnjax_backprop variant measured (1 if none was)."""
    timed = {m: r["median_s"] for m, r in results.items() if m.startswith("fnnjax_backprop")}
    if not timed:
        return 1
    best = min(timed, key=lambda m: timed[m])
    return int(best.partition("_unroll")[2] or 1)


def _full_run(x, y, epochs: int, unroll: int = 1) -> dict:
    import jax
    import optax

    import fnnjax

    mlp, params = _initial_weights()
    t0 = time.perf_counter()
    _, hist = fnnjax.fit(
        mlp,
        params,
        (x, y),
        optimizer=optax.sgd(LR),
        epochs=epochs,
        batch_size=BATCH,
        key=jax.random.key(1),
        gradient="backprop",
        unroll=unroll,
    )
    return {
        "epochs": epochs,
        "unroll": unroll,
        "wall_s": time.perf_counter() - t0,
        "compile_s": hist.compile_seconds,
        "median_epoch_s": statistics.median(hist["seconds"]),
        "final_train_loss": hist.epochs[-1]["train_loss"],
        "final_train_acc": hist.epochs[-1]["train_acc"],
    }


def _targets(platform: str, times: dict[str, list[float]], results: dict) -> dict:
    """The targets judged on this run (a target whose methods did not run is left out)."""
    from fnnjax.benchmarks._harness import paired_ratio

    out = {}
    fit = "fnnjax_backprop" if "fnnjax_backprop" in times else None
    peers = {m: results[m]["median_s"] for m in PEERS if m in times}
    if fit and peers and platform != "gpu":
        fastest = min(peers, key=lambda m: peers[m])
        speedup = paired_ratio(times[fastest], times[fit])
        out["fit_vs_fastest_peer"] = {
            "fastest_peer": fastest,
            "speedup": speedup,
            "target": TARGET_PEER_SPEEDUP,
            "met": speedup >= TARGET_PEER_SPEEDUP,
        }
    if fit and "fnnjax_train" in times:
        # The target is judged on the median of the per-round ratios (an epoch of the command with
        # its defaults against fit's bare epoch) and, when the runs without and with a checkpoint
        # every epoch measured one save, on the command's epoch as an uninterrupted run has it: one
        # save per COMMAND_CHECKPOINT_S of its own time. The ratio of the total times is reported
        # beside them: its 30 s count the pauses in which the other methods run, so it saves far
        # more often per epoch than a run on its own (a bound, not the target's measure).
        ratio = paired_ratio(times["fnnjax_train"], times[fit])
        out["command_vs_fit"] = {
            "ratio": ratio,
            "ratio_of_totals": sum(times["fnnjax_train"]) / sum(times[fit]),
            "target": TARGET_COMMAND_RATIO,
            "met": ratio <= TARGET_COMMAND_RATIO,
        }
        if "fnnjax_train_nockpt" in times:
            bare = paired_ratio(times["fnnjax_train_nockpt"], times[fit])
            out["command_vs_fit"]["ratio_without_checkpoints"] = bare
            if "fnnjax_train_ckpt1" in times:
                save = statistics.median(
                    a - b for a, b in zip(times["fnnjax_train_ckpt1"], times["fnnjax_train_nockpt"])
                )
                out["command_vs_fit"]["checkpoint_s"] = save
                out["command_vs_fit"]["ratio_checkpoint_every_epoch"] = paired_ratio(
                    times["fnnjax_train_ckpt1"], times[fit]
                )
                # a save every COMMAND_CHECKPOINT_S: max(save, 0) / COMMAND_CHECKPOINT_S of each epoch
                uninterrupted = bare * (1 + max(save, 0.0) / COMMAND_CHECKPOINT_S)
                out["command_vs_fit"]["ratio_uninterrupted"] = uninterrupted
                out["command_vs_fit"]["met"] = max(ratio, uninterrupted) <= TARGET_COMMAND_RATIO
    if fit:
        key = "gpu_epoch" if platform == "gpu" else "notes_loop"
        met = results[fit].get("target_met")
        if met is not None:
            out[key] = {
                "value": results[fit]["median_s"] if platform == "gpu" else results[fit]["speedup_vs_torch"],
                "target": TARGET_GPU_EPOCH_S if platform == "gpu" else TARGET_SPEEDUP,
                "met": met,
            }
    return out


def _targets_text(targets: dict) -> str:
    lines = []
    if "fit_vs_fastest_peer" in targets:
        t = targets["fit_vs_fastest_peer"]
        lines.append(
            f"- fit vs the fastest peer ({t['fastest_peer']}): {t['speedup']:.3f}x faster "
            f"(target >= {t['target']}): {'met' if t['met'] else 'NOT met'}"
        )
    if "command_vs_fit" in targets:
        t = targets["command_vs_fit"]
        measured = f"{t['ratio']:.3f} (median of the per-round ratios)"
        if "ratio_uninterrupted" in t:
            measured += (
                f" and {t['ratio_uninterrupted']:.3f} for an uninterrupted run (its epoch without "
                f"checkpoints plus one save per {COMMAND_CHECKPOINT_S:g} s)"
            )
        details = []
        if "ratio_without_checkpoints" in t:
            details.append(f"without checkpoints {t['ratio_without_checkpoints']:.3f}x")
        if "checkpoint_s" in t:
            details.append(
                f"with a checkpoint every epoch {t['ratio_checkpoint_every_epoch']:.3f}x, so one save costs "
                f"{t['checkpoint_s'] * 1e3:.1f} ms"
            )
        details.append(
            f"over the total time of the rounds {t['ratio_of_totals']:.3f}x (a bound: its {COMMAND_CHECKPOINT_S:g} "
            "s include the pauses in which the other methods run, so it saves far more often per "
            "epoch here than a run on its own)"
        )
        lines.append(
            f"- the fnnjax train command's epoch / fit's bare epoch: {measured} (target <= {t['target']}): "
            f"{'met' if t['met'] else 'NOT met'}; {'; '.join(details)}"
        )
    if "notes_loop" in targets:
        t = targets["notes_loop"]
        lines.append(
            f"- fit vs the notes' PyTorch loop: {t['value']:.3f}x faster (target >= {t['target']}): "
            f"{'met' if t['met'] else 'NOT met'}"
        )
    if "gpu_epoch" in targets:
        t = targets["gpu_epoch"]
        lines.append(
            f"- fit's GPU epoch: {t['value'] * 1e3:.2f} ms (target <= {t['target'] * 1e3:g} ms): "
            f"{'met' if t['met'] else 'NOT met'}"
        )
    return "\n".join(lines)


def _gemm_section(made: dict, results: dict, n: int, torch_device: str | None) -> tuple[dict, str]:
    """The step's matmuls at BLAS speed, a large square product, and each method's matmul rate."""
    from fnnjax.benchmarks._gemm import BlasMatmuls, square_gflops, step_flops
    from fnnjax.benchmarks._harness import markdown_table

    steps = -(-n // BATCH)
    epoch_flops = steps * step_flops(SIZES, BATCH)
    blas = made["blas_matmuls"].blas if "blas_matmuls" in made else BlasMatmuls(SIZES, BATCH, steps, torch_device)
    square = square_gflops(2048, torch_device or "cpu")
    for r in results.values():
        r["matmul_gflops"] = epoch_flops / r["median_s"] / 1e9
    gemm = {
        "epoch_matmul_flops": epoch_flops,
        "step_matmuls": blas.table,
        "blas_library": blas.library,
        "blas_step_gflops": blas.gflops,
        "blas_step_gflops_by_library": blas.step_gflops_by_library,
        "blas_epoch_s": blas.step_s * steps,
        "square": square,
    }
    text = (
        f"Matrix products of one step (batch {BATCH}) with one BLAS for the whole step: "
        + ", ".join(f"{lib} {g:.1f}" for lib, g in blas.step_gflops_by_library.items())
        + f" GFLOP/s; with the faster ({blas.library}) an epoch of nothing but its matmuls takes "
        f"{blas.step_s * steps:.3f} s ({epoch_flops / 1e9:.1f} GFLOP). Square 2048 x 2048 "
        f"product: "
        + ", ".join(f"{k.removesuffix('_gflops')} {v:.1f}" for k, v in square.items() if k.endswith("_gflops"))
        + " GFLOP/s. Each product alone "
        "(GFLOP/s):\n\n" + markdown_table(blas.table, list(blas.table[0]))
    )
    return gemm, text


def run(args) -> int:
    """Run the benchmark; write the results; return 0."""
    from fnnjax.benchmarks._harness import paired_ratio, result_name, write_results, wrote_line

    methods, repeats = _checked_options(args)
    methods, skipped = _runnable(methods)
    for m, note in skipped.items():
        print(f"train benchmark: {m} {note}", file=sys.stderr)
    methods = _with_unrolls(methods, args.unroll)
    d = _first_samples(_load(args.data_dir), args.samples)
    import jax

    platform = jax.devices()[0].platform
    warmup = 1
    load_before = os.getloadavg()  # other processes on the machine make timings noisy
    print(
        f"train benchmark: {', '.join(methods)}: {warmup} warm-up + {repeats} timed epochs each, interleaved ...",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="fnnjax-bench-data-") as tmp:
        folder = d.folder
        if folder is None and any(m.startswith("fnnjax_train") for m in methods):
            folder = _write_idx_folder(d, Path(tmp))  # the command reads IDX files
        made = {m: _make(m, d, warmup + repeats, args, folder) for m in methods}
        failed: dict[str, str] = {}
        try:
            times = _interleaved(made, warmup, repeats, failed)
        finally:
            for method in made.values():
                if isinstance(method, _CommandMethod):
                    method.finish()
    results = _results(times, made, platform)
    peers = {m: results[m]["median_s"] for m in PEERS if m in results}
    if peers:
        fastest = min(peers, key=lambda m: peers[m])
        for m, r in results.items():
            r["speedup_vs_fastest_peer"] = paired_ratio(times[fastest], times[m])
    targets = _targets(platform, times, results)
    torch_device = _torch_device(args.torch_device) if _torch_available() else None
    gemm, gemm_text = _gemm_section(made, results, len(d.x), torch_device)
    full = _full_run(d.x, d.y, args.full_run, _fastest_unroll(results)) if args.full_run else None
    load_after = os.getloadavg()
    rows = [{"method": m, **r} for m, r in results.items()]
    rows += [{"method": m, "median_s": None, "compile_s": note} for m, note in {**skipped, **failed}.items()]
    head = (
        f"Seconds per epoch, {d.source}, {'-'.join(map(str, SIZES))} ReLU, SGD lr {LR}, batch "
        f"{BATCH}; epochs of the methods interleaved, {warmup} warm-up round then {repeats} "
        f"timed rounds; speedup_vs_X = median over rounds of X/method; matmul_gflops = the "
        f"epoch's matmul FLOPs / median_s; target_met: {_target_text(platform)}. "
    )
    table = _table(head, rows, targets, gemm_text, full, load_before, load_after)
    payload = {
        "workload": {
            "data": d.source,
            "sizes": SIZES,
            "lr": LR,
            "batch_size": BATCH,
            "samples": int(len(d.x)),
            "warmup_rounds": warmup,
            "timed_rounds": repeats,
        },
        "load_average_before": load_before,
        "load_average_after": load_after,
        "results": results,
        "skipped": skipped,
        "failed": failed,
        "targets": targets,
        "gemm": gemm,
        "full_run": full,
    }
    name = result_name("train", args)
    json_path, md_path = write_results(name, payload, table, args.out)
    png = _plot_rounds(times, Path(json_path).with_suffix(".png"), d.source)
    print(table)
    print(wrote_line(json_path, md_path, png))
    return 0


def _checked_options(args) -> tuple[list[str], int]:
    """The methods asked for and the timed rounds, from --methods, --repeats, --quick (and a check
    of --torch-device)."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UsageError(f"unknown --methods {', '.join(unknown)}; valid methods are {', '.join(METHODS)}")
    repeats = 3 if args.quick else args.repeats
    if repeats < 20 and not args.quick:
        raise UsageError(
            f"--repeats {repeats} is below 20; the method asks for a median of >= 20 "
            "epochs (use --quick for a smoke run)"
        )
    if args.torch_device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"unknown --torch-device {args.torch_device!r}; valid values are auto, cpu, cuda")
    return methods, repeats


def _first_samples(d, samples: int | None):
    """The data set cut to its first ``samples`` training samples (--samples), or as it is."""
    if not samples:
        return d
    if not BATCH <= samples <= len(d.x):
        raise UsageError(f"--samples {samples} must lie in {BATCH}..{len(d.x)} (one batch to all)")
    return d._replace(x=d.x[:samples], y=d.y[:samples], source=f"{d.source}, first {samples} samples", folder=None)


def _results(times: dict[str, list[float]], made: dict, platform: str) -> dict:
    """Each method's timing, its speedup over torch_eager, and whether it meets its target."""
    from fnnjax.benchmarks._harness import Timing, paired_ratio

    results = {}
    for m, t in times.items():
        method = made[m]
        results[m] = Timing(
            median_s=statistics.median(t),
            min_s=min(t),
            max_s=max(t),
            repeats=len(t),
            compile_s=method.compile_s,
            times_s=t,
            final_train_loss=method.last_loss,
        )
        if "torch_eager" in times:
            results[m]["speedup_vs_torch"] = paired_ratio(times["torch_eager"], t)
        if m.startswith("fnnjax_") and not m.startswith("fnnjax_train"):
            results[m]["target_met"] = _target_met(platform, results[m])
        if hasattr(method, "threads"):  # the torch methods
            results[m]["torch_threads"] = int(getattr(method, "threads", 0))
            results[m]["torch_device"] = str(getattr(method, "device", ""))
    return results


def _table(head: str, rows: list[dict], targets, gemm_text: str, full, load_before, load_after) -> str:
    """The Markdown report: ``head`` and the machine's load, the table, the targets, the matrix
    products and the whole run."""
    from fnnjax.benchmarks._harness import markdown_table

    columns = [
        "method",
        "median_s",
        "min_s",
        "max_s",
        "repeats",
        "compile_s",
        "speedup_vs_torch",
        "speedup_vs_fastest_peer",
        "matmul_gflops",
        "target_met",
        "final_train_loss",
    ]
    load = lambda v: ", ".join(f"{x:.1f}" for x in v)  # noqa: E731
    table = (
        f"{head}Machine load "
        f"average (1/5/15 min) before: {load(load_before)}, after: {load(load_after)}; cores: "
        f"{os.cpu_count()}.\n\n"
        + markdown_table(rows, columns)
        + "\n\n### Targets\n\n"
        + (_targets_text(targets) or "(none judged on this run)")
        + "\n\n### Matrix products: the machine's BLAS on the step's shapes\n\n"
        + gemm_text
    )
    if full:
        table += (
            f"\n\nWhole fnnjax.fit of {full['epochs']} epochs (backprop, unroll "
            f"{full['unroll']}): {full['wall_s']:.2f} s "
            f"wall, of which compile {full['compile_s']:.2f} s; median epoch "
            f"{full['median_epoch_s']:.3f} s."
        )
    return table


def main(argv: list[str] | None = None) -> int:
    """``python -m fnnjax.benchmarks.train [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m fnnjax.benchmarks.train", description=(__doc__ or "").split("\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
