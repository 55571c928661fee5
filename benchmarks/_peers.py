"""The strongest peers of ``fnnjax.fit``: the same MLP and recipe trained the way a competent user of
PyTorch, Flax NNX or Equinox writes the loop, for the benchmarks to time side by side.

Every peer starts from the same initial weights (fnnjax's ``W^(l): (M_l, M_{l-1})``, copied into
the peer's own layout), runs the same recipe (:class:`Recipe`: sizes, ReLU hidden layers, softmax
output with cross-entropy, optimizer, learning-rate schedule, dropout, batch size), reshuffles
every epoch, keeps the last partial batch (as ``fit`` does), and accumulates the epoch's summed
loss and correct count ON THE DEVICE, reading them back once per epoch (one host sync):

- :class:`TorchLoop`: data preloaded as tensors, ``torch.randperm`` indexing per batch,
  ``nn.Sequential`` of ``nn.Linear`` + ``nn.ReLU`` (+ ``nn.Dropout``),
  ``F.cross_entropy(reduction="none")``, a ``torch.optim`` optimizer (``fused=True`` where
  torch offers it on the CPU), ``zero_grad(set_to_none=True)``; with ``compile=True`` the whole
  step (forward, loss, backward, optimizer step) goes through ``torch.compile``, as the
  torch.compile tutorial compiles a training step;
- :class:`NnxLoop`: Flax NNX (``nnx.Linear``, ``nnx.Dropout``, ``nnx.Optimizer``,
  ``nnx.MultiMetric``) in the *functional training loop* that Flax's performance guide
  recommends for small models (``nnx.split`` once, a ``jax.jit`` step on the pure state,
  ``nnx.merge`` inside), one jitted call per batch, the batch gathered on the device from the
  resident data set by the epoch's permutation;
- :class:`EquinoxLoop`: Equinox (``eqx.nn.Linear`` under ``jax.vmap``, ``eqx.filter_jit``,
  ``eqx.filter_value_and_grad``, optax), the ``make_step`` loop of Equinox's examples, with the
  data resident on the device as above.

Each loop offers ``epoch() -> seconds`` (training only), ``evaluate(x, y) -> accuracy`` (no
dropout), ``compile_s`` (where it compiles ahead of the first epoch) and ``last_loss`` (the mean
train loss of the last epoch). torch, flax and equinox are the optional ``bench`` extra: import
errors surface when a loop is built, and :func:`available` says which peers can run.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import time
from collections.abc import Sequence

import numpy as np

__all__ = [
    "Recipe",
    "TorchLoop",
    "NnxLoop",
    "EquinoxLoop",
    "available",
    "lr_per_step",
    "optax_optimizer",
    "PEER_PACKAGES",
]

PEER_PACKAGES = {"torch_loop": "torch", "torch_compile": "torch", "flax_nnx": "flax", "equinox": "equinox"}
"""The package each peer needs (the ``bench`` extra installs them all)."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe every loop (fnnjax and peers) can run.

    Attributes:
      sizes: layer widths ``M_0, ..., M_L`` (ReLU hidden layers, softmax output, cross-entropy).
      optimizer: ``sgd``, ``momentum`` (0.9), ``nesterov`` (0.9), ``adam`` or ``adamw``.
      lr: the (peak) learning rate.
      batch_size: B; the last partial batch is kept.
      epochs: the epochs of the run (the schedule's horizon).
      schedule: ``constant`` or ``cosine`` (decay from ``lr`` to 0 over the run): the
        schedules of ``fnnjax train --schedule`` (:func:`fnnjax.presets.learning_rate`).
      dropout: the DROP rate on every hidden layer (inverted dropout).
      weight_decay: AdamW's decoupled weight decay (``adamw`` only).
      init: the initialisation of ``fnnjax train --init`` the weights come from (every loop is
        given its initial weights; this records which).
    """

    sizes: tuple[int, ...]
    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    schedule: str = "constant"
    dropout: float = 0.0
    weight_decay: float = 1e-4
    init: str = "he"

    def steps_per_epoch(self, n: int) -> int:
        return -(-n // self.batch_size)

    @classmethod
    def from_preset(cls, name: str, **changes) -> Recipe:
        """The recipe of ``fnnjax train --preset NAME`` (``changes`` replace preset values)."""
        from fnnjax.presets import PRESETS

        p = {**PRESETS[name], **changes}
        return cls(
            tuple(int(s) for s in str(p["sizes"]).split(",")),
            p["optimizer"],
            float(p["lr"]),
            int(p["batch_size"]),
            int(p["epochs"]),
            p["schedule"],
            float(p["dropout"]),
            init=p["init"],
        )


def available(peer: str) -> bool:
    """Whether the package ``peer`` needs is importable."""
    return importlib.util.find_spec(PEER_PACKAGES[peer]) is not None


def optax_schedule(recipe: Recipe, n: int):
    """The learning rate per optimizer step as ``fnnjax train`` makes it: a float (constant) or
    an optax schedule."""
    from fnnjax.presets import learning_rate

    return learning_rate(recipe.schedule, recipe.lr, recipe.epochs * recipe.steps_per_epoch(n))


def lr_per_step(recipe: Recipe, n: int) -> np.ndarray:
    """The learning rate of every step of the run, as float64 (what the torch loop sets)."""
    schedule = optax_schedule(recipe, n)
    total = recipe.epochs * recipe.steps_per_epoch(n)
    if isinstance(schedule, float):
        return np.full(total, schedule)
    with _library_promotion():
        return np.array([float(schedule(i)) for i in range(total)])  # type: ignore[operator]


def optax_optimizer(recipe: Recipe, n: int):
    """The optax optimizer of the recipe (the one fnnjax and the JAX peers use)."""
    import optax

    lr = optax_schedule(recipe, n)
    if recipe.optimizer == "sgd":
        return optax.sgd(lr)
    if recipe.optimizer in ("momentum", "nesterov"):
        return optax.sgd(lr, momentum=0.9, nesterov=recipe.optimizer == "nesterov")
    if recipe.optimizer == "adam":
        return optax.adam(lr)
    if recipe.optimizer == "adamw":
        return optax.adamw(lr, weight_decay=recipe.weight_decay)
    raise ValueError(
        f"unknown optimizer {recipe.optimizer!r}; valid optimizers are sgd, momentum, nesterov, adam, adamw"
    )


# ----------------------------------------------------------------------------------------------
# PyTorch


class TorchLoop:
    """The best-effort PyTorch loop (see the module docstring); ``compile=True`` for torch.compile.

    Args:
      x, y: the training set, ``(N, M_0)`` float32 and ``(N,)`` integer labels.
      weights: ``[(W, b), ...]`` numpy, fnnjax's layout ``W: (M_l, M_{l-1})`` (torch's too).
      recipe: the :class:`Recipe`.
      threads: ``torch.set_num_threads`` (0: torch's default, one per core).
      device: ``cpu`` or ``cuda``.
      compile: put the training step through ``torch.compile``.
      seed: ``torch.manual_seed`` (shuffling and dropout).
    """

    def __init__(
        self,
        x,
        y,
        weights: Sequence,
        recipe: Recipe,
        *,
        threads: int = 0,
        device: str = "cpu",
        compile: bool = False,
        seed: int = 0,
    ):
        import torch  # pyright: ignore[reportMissingImports]  (the optional bench extra)
        from torch import nn  # pyright: ignore[reportMissingImports]  (the optional bench extra)

        if threads > 0:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self.recipe, self.n = recipe, len(x)
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(self.device)
        layers = []
        for k, (w, b) in enumerate(weights):
            linear = nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.array(w, dtype=np.float32)))
                linear.bias.copy_(torch.from_numpy(np.array(b, dtype=np.float32)))
            layers.append(linear)
            if k < len(weights) - 1:
                layers.append(nn.ReLU())
                if recipe.dropout:
                    layers.append(nn.Dropout(recipe.dropout))
        self.net = nn.Sequential(*layers).to(self.device)
        self.lrs = lr_per_step(recipe, self.n)
        # a tensor learning rate: setting it per step never recompiles the compiled step
        lr = torch.tensor(float(self.lrs[0])) if compile or recipe.schedule != "constant" else recipe.lr
        self.opt = self._optimizer(torch, lr)
        self.global_step = 0
        self.compiled = compile
        self.compile_s = None
        self.last_loss = None
        self._eval_set = None
        self._step = torch.compile(self._train_step, dynamic=False) if compile else self._train_step

    def _optimizer(self, torch, lr):
        r, params = self.recipe, self.net.parameters()
        cpu = self.device.type == "cpu"
        if r.optimizer in ("sgd", "momentum", "nesterov"):
            momentum = 0.0 if r.optimizer == "sgd" else 0.9
            return torch.optim.SGD(
                params, lr=lr, momentum=momentum, nesterov=r.optimizer == "nesterov", fused=True if cpu else None
            )
        if r.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, fused=True if cpu else None)
        if r.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=r.weight_decay, fused=True if cpu else None)
        raise ValueError(f"unknown optimizer {r.optimizer!r}")

    def _train_step(self, xb, yb):
        import torch.nn.functional as F  # pyright: ignore[reportMissingImports]  (the optional bench extra)

        logits = self.net(xb)
        per = F.cross_entropy(logits, yb, reduction="none")
        self.opt.zero_grad(set_to_none=True)
        per.mean().backward()
        self.opt.step()
        return per.detach().sum(), (logits.detach().argmax(dim=1) == yb).sum()

    def _set_lr(self):
        if self.recipe.schedule == "constant" and not self.compiled:
            return
        lr = float(self.lrs[min(self.global_step, len(self.lrs) - 1)])
        for group in self.opt.param_groups:
            group["lr"].fill_(lr)

    def epoch(self) -> float:
        """One epoch of training; returns its wall seconds (one host sync at the end)."""
        import torch  # pyright: ignore[reportMissingImports]  (the optional bench extra)

        t0 = time.perf_counter()
        self.net.train()
        perm = torch.randperm(self.n, device=self.device)
        total = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for start in range(0, self.n, self.recipe.batch_size):
            idx = perm[start : start + self.recipe.batch_size]
            self._set_lr()
            loss_sum, right = self._step(self.x[idx], self.y[idx])
            total += loss_sum
            correct += right
            self.global_step += 1
        total, correct = total.item(), correct.item()  # the one host sync of the epoch
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        self.last_loss, self.last_acc = total / self.n, correct / self.n
        return seconds

    def evaluate(self, x, y, batch_size: int = 8192) -> float:
        """Accuracy on ``(x, y)`` without dropout."""
        import torch  # pyright: ignore[reportMissingImports]  (the optional bench extra)

        self.net.eval()
        if self._eval_set is None or self._eval_set[0] is not x:  # the tensors made once per set
            self._eval_set = (
                x,
                torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device),
                torch.from_numpy(np.asarray(y, dtype=np.int64)).to(self.device),
            )
        _, xs, ys = self._eval_set
        right = torch.zeros((), dtype=torch.int64, device=self.device)
        with torch.no_grad():
            for start in range(0, len(xs), batch_size):
                right += (
                    self.net(xs[start : start + batch_size]).argmax(dim=1) == ys[start : start + batch_size]
                ).sum()
        return right.item() / len(xs)


def _library_promotion():
    """JAX's default promotion rules while tracing a library's code (the peers' libraries are
    written for them; fnnjax's tests switch on strict promotion, which they would trip)."""
    import contextlib

    import jax

    stack = contextlib.ExitStack()
    stack.enter_context(jax.numpy_dtype_promotion("standard"))
    stack.enter_context(jax.numpy_rank_promotion("allow"))
    return stack


# ----------------------------------------------------------------------------------------------
# JAX peers: batches gathered on the device by the epoch's permutation, one jitted call per batch


class _JaxPeer:
    """The shared epoch loop of the JAX peers: ``self._run_step(perm, start, size)`` per batch."""

    def _run_step(self, perm, start: int, size: int) -> None:
        raise NotImplementedError

    def _read_metrics(self) -> tuple[float, float]:
        raise NotImplementedError

    def _jax_setup(self, x, y, recipe: Recipe, seed: int):
        import jax

        self.recipe, self.n = recipe, len(x)
        self.x = jax.device_put(np.asarray(x, dtype=np.float32))
        self.y = jax.device_put(np.asarray(y, dtype=np.int32))
        self.key = jax.random.key(seed)
        self.sizes = sorted({recipe.batch_size, self.n % recipe.batch_size} - {0}, reverse=True)
        self.compile_s = None
        self.last_loss = None

    def epoch(self) -> float:
        """One epoch of training; returns its wall seconds (one host sync at the end)."""
        import jax

        t0 = time.perf_counter()
        self.key, k = jax.random.split(self.key)
        perm = jax.random.permutation(k, self.n)
        b = self.recipe.batch_size
        for start in range(0, self.n, b):
            self._run_step(perm, start, min(b, self.n - start))
        loss, acc = self._read_metrics()  # the one host sync of the epoch
        seconds = time.perf_counter() - t0
        self.last_loss, self.last_acc = loss, acc
        return seconds


class NnxLoop(_JaxPeer):
    """Flax NNX in the functional training loop of Flax's performance guide (module docstring).

    Args: as :class:`TorchLoop` (``weights`` in fnnjax's layout; NNX kernels are ``W.T``).
    """

    def __init__(self, x, y, weights: Sequence, recipe: Recipe, *, seed: int = 0):
        import jax
        import jax.numpy as jnp
        import optax
        from flax import nnx  # pyright: ignore[reportMissingImports]  (the optional bench extra)

        self._jax_setup(x, y, recipe, seed)

        class MLP(nnx.Module):
            def __init__(self, sizes, dropout, rngs):
                self.layers = nnx.List([nnx.Linear(i, o, rngs=rngs) for i, o in zip(sizes[:-1], sizes[1:])])
                self.dropout = nnx.Dropout(dropout, rngs=rngs)

            def __call__(self, h):
                for layer in self.layers[:-1]:
                    h = self.dropout(nnx.relu(layer(h)))
                return self.layers[-1](h)

        model = MLP(recipe.sizes, recipe.dropout, nnx.Rngs(seed))
        for layer, (w, b) in zip(model.layers, weights):
            layer.kernel[...] = jnp.asarray(np.array(w, dtype=np.float32).T)
            layer.bias[...] = jnp.asarray(np.array(b, dtype=np.float32))  # type: ignore[index]
        optimizer = nnx.Optimizer(model, optax_optimizer(recipe, self.n), wrt=nnx.Param)
        metrics = nnx.MultiMetric(loss=nnx.metrics.Average("loss"), accuracy=nnx.metrics.Accuracy())
        self.graphdef, self.state = nnx.split((model, optimizer, metrics))

        @functools.partial(jax.jit, donate_argnums=(1,), static_argnums=(4,))
        def train_step(graphdef, state, perm, start, size, x, y):
            model, optimizer, metrics = nnx.merge(graphdef, state)
            idx = jax.lax.dynamic_slice_in_dim(perm, start, size)
            xb, yb = x[idx], y[idx]

            def loss_fn(model):
                logits = model(xb)
                per = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
                return per.mean(), (per, logits)

            (_, (per, logits)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
            optimizer.update(model, grads)
            metrics.update(loss=per, logits=logits, labels=yb)
            return nnx.state((model, optimizer, metrics))

        self._train_step = train_step
        self._logits = nnx.jit(lambda m, a: m(a))
        t0 = time.perf_counter()
        perm = jnp.arange(self.n)
        with _library_promotion():
            self._compiled = {
                size: train_step.lower(self.graphdef, self.state, perm, 0, size, self.x, self.y).compile()
                for size in self.sizes
            }
        self.compile_s = time.perf_counter() - t0

    def _run_step(self, perm, start, size):
        self.state = self._compiled[size](self.graphdef, self.state, perm, start, self.x, self.y)

    def _read_metrics(self):
        from flax import nnx  # pyright: ignore[reportMissingImports]  (the optional bench extra)

        model, optimizer, metrics = nnx.merge(self.graphdef, self.state)
        with _library_promotion():
            values = {k: float(v) for k, v in metrics.compute().items()}
        metrics.reset()
        self.graphdef, self.state = nnx.split((model, optimizer, metrics))
        return values["loss"], values["accuracy"]

    def evaluate(self, x, y) -> float:
        """Accuracy on ``(x, y)`` without dropout."""
        import jax.numpy as jnp
        from flax import nnx  # pyright: ignore[reportMissingImports]  (the optional bench extra)

        model, optimizer, metrics = nnx.merge(self.graphdef, self.state)
        model.eval()
        with _library_promotion():
            logits = self._logits(model, jnp.asarray(x, jnp.float32))
        acc = float(jnp.mean(jnp.argmax(logits, axis=1) == jnp.asarray(y)))
        model.train()
        self.graphdef, self.state = nnx.split((model, optimizer, metrics))
        return acc


class EquinoxLoop(_JaxPeer):
    """Equinox with ``eqx.filter_jit``/``eqx.filter_value_and_grad`` and optax (module docstring).

    Args: as :class:`TorchLoop` (``weights`` in fnnjax's layout, which is ``eqx.nn.Linear``'s).
    """

    def __init__(self, x, y, weights: Sequence, recipe: Recipe, *, seed: int = 0):
        import equinox as eqx  # pyright: ignore[reportMissingImports]  (the optional bench extra)
        import jax
        import jax.numpy as jnp
        import optax

        self._jax_setup(x, y, recipe, seed)
        keys = jax.random.split(jax.random.key(seed), len(weights))

        class MLP(eqx.Module):
            layers: list
            dropout: eqx.nn.Dropout

            def __init__(self, sizes, rate, keys):
                self.layers = [eqx.nn.Linear(i, o, key=k) for i, o, k in zip(sizes[:-1], sizes[1:], keys)]
                self.dropout = eqx.nn.Dropout(rate)

            def __call__(self, h, key=None):  # one sample, as every eqx.nn layer
                for k, layer in enumerate(self.layers[:-1]):
                    h = jax.nn.relu(layer(h))
                    if key is not None:
                        h = self.dropout(h, key=jax.random.fold_in(key, k))
                return self.layers[-1](h)

        model = MLP(recipe.sizes, recipe.dropout, keys)
        for k, (w, b) in enumerate(weights):
            model = eqx.tree_at(
                lambda m: (m.layers[k].weight, m.layers[k].bias),
                model,
                (jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32)),
            )
        optim = optax_optimizer(recipe, self.n)
        self.model = model
        self.opt_state = optim.init(eqx.filter(model, eqx.is_inexact_array))
        self.sums = jnp.zeros(2, jnp.float32)
        dropout = recipe.dropout > 0

        def loss(model, xb, yb, key):
            keys = jax.random.split(key, xb.shape[0]) if dropout else None
            logits = jax.vmap(model)(xb, keys) if dropout else jax.vmap(model)(xb)
            per = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
            return per.mean(), (per, logits)

        @eqx.filter_jit(donate="all-except-first")
        def make_step(model, opt_state, sums, key, perm, start, size, x, y):
            idx = jax.lax.dynamic_slice_in_dim(perm, start, size)
            xb, yb = x[idx], y[idx]
            key, k = jax.random.split(key)
            (_, (per, logits)), grads = eqx.filter_value_and_grad(loss, has_aux=True)(model, xb, yb, k)
            updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
            model = eqx.apply_updates(model, updates)
            right = jnp.sum(jnp.argmax(logits, axis=1) == yb)
            return model, opt_state, sums + jnp.stack([jnp.sum(per), right.astype(per.dtype)]), key

        self._make_step = make_step
        self._logits = eqx.filter_jit(lambda m, a: jax.vmap(m)(a))
        self.step_key = jax.random.key(seed + 1)  # filter_jit compiles on the first epoch's calls

    def _run_step(self, perm, start, size):
        import jax.numpy as jnp

        with _library_promotion():  # filter_jit traces on the first calls
            # start as an array (traced; a Python int would be static: one program per batch),
            # size as a Python int (static: one program per batch shape)
            self.model, self.opt_state, self.sums, self.step_key = self._make_step(
                self.model, self.opt_state, self.sums, self.step_key, perm, jnp.int32(start), size, self.x, self.y
            )

    def _read_metrics(self):
        import jax.numpy as jnp

        loss, right = (float(v) for v in np.asarray(self.sums))
        self.sums = jnp.zeros(2, jnp.float32)
        return loss / self.n, right / self.n

    def evaluate(self, x, y) -> float:
        """Accuracy on ``(x, y)`` without dropout."""
        import jax.numpy as jnp

        with _library_promotion():
            logits = self._logits(self.model, jnp.asarray(x, jnp.float32))
        return float(jnp.mean(jnp.argmax(logits, axis=1) == jnp.asarray(y)))
