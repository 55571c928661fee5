"""A functional trainer: params in, params out, optax doing the updates, one compiled program per epoch.

:func:`fit` trains an :class:`~fnnjax.MLP` with any optax ``GradientTransformation``, the gradient
taken by fnnjax's hand-written delta recursion (``gradient="backprop"``, F10-F13) or by
``jax.grad`` (``gradient="grad"``), with optional L2 weight decay in the risk (F7) and inverted
dropout (F26).

Fast by construction:

- the data set is put on the device once, before the first epoch;
- each epoch is ONE compiled program (compiled ahead of time, before epoch 1, so no epoch ever
  recompiles): it splits the key, draws a permutation of the N samples, and runs a ``lax.scan``
  over the ``ceil(N / batch_size)`` batches, the last one padded when it is partial (see
  "Batches" below; ``unroll`` steps per loop iteration);
- loss and accuracy are summed on the device inside that program and read back once per epoch,
  together with the evaluation metrics (one host sync per epoch);
- params and optimizer state are donated to the epoch program (updated in place); fit copies the
  caller's params first, so the caller's arrays stay valid;
- evaluation is a compiled program too (``lax.map`` over fixed-size chunks);
- a hyperparameter sweep compiles once per shape: the L2 coefficient and the dropout rate are
  arguments of the compiled epoch, not constants in it (only whether each is on is part of the
  program), and the optimizer's update function is compared by what it computes
  (:mod:`fnnjax._static_key`: its code, closures, and the globals and attributes it reads, so two
  ``optax.sgd(0.1)`` share a program and ``optax.sgd(lambda step: lr)`` with another global ``lr``
  does not); a new learning rate is a new program unless it lives in the optimizer state, e.g.
  ``optax.inject_hyperparams(optax.sgd)(learning_rate=lr)``. A program is reused only for the
  same computation: where the comparison cannot see, fit compiles anew.

Metrics are accumulated in float32 (float64 for float64 params) whatever the params' dtype, so a
float16 run over 60,000 samples reports finite sums; a sample whose outputs are not finite counts
as NaN in both the loss and the accuracy, never as a plausible number.

Batches (the exact rule): every epoch draws a fresh permutation of the N training samples from
the epoch's key and cuts it into ``N // batch_size`` batches of ``batch_size`` samples followed,
when ``batch_size`` does not divide N, by one last batch of the ``N % batch_size`` remaining
samples. Every sample is used exactly once per epoch, and the last batch's gradient is the mean
over its own samples: the behaviour of PyTorch's ``DataLoader(shuffle=True, drop_last=False)``
used by the notes (Fashion-MNIST: 234 batches of 256 and one of 96). So that one compiled step
serves every batch, the last batch is padded to ``batch_size`` with samples of weight exactly 0
(their error terms are zero, so they add exactly nothing to the gradient or the metrics).

Keys (threaded functionally): epoch e (1-based) starts from a key k; the program splits it into
``(k_next, k_epoch) = jax.random.split(k)``, then ``(k_perm, k_drop) = jax.random.split(k_epoch)``;
``k_perm`` draws the permutation, ``k_drop`` is split into one key per step for the dropout masks.
``k_next`` starts epoch e + 1. The state after an epoch (params, optimizer state, k_next, e) is
therefore all a resumed run needs to continue bit for bit.

Scaling out (data parallel, ``fit(..., mesh=...)`` or ``devices=N``; see :mod:`fnnjax._sharding`):
placement happens in one place (:func:`_to_device`: replicated on every device of the mesh), and
the epoch program is written with whole-batch semantics (means over the batch); inside it each
step's batch indices are constrained to be sharded along the batch axis of the mesh, so every
device gathers and differentiates its slice of the batch and XLA inserts the all-reduce of the
gradient sums. The batch size must be a multiple of the device count (the padded last batch then
splits evenly too, and its mean stays exact: the weight-0 rows count in no device's sum).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from fnnjax._backprop import backward, mean_output_delta, parameter_gradients
from fnnjax._losses import LOSSES, check_l2, check_loss, empty_batch_error, per_sample_loss, prepare, trace_risk
from fnnjax._model import MLP, Params, Trace, _layer_of, check_params, params_dtype, trace_batch
from fnnjax._sharding import batch_sharding, check_batch_divides, replicated, resolve_mesh
from fnnjax._static_key import ByStructure

__all__ = [
    "GRADIENTS",
    "Callback",
    "History",
    "NonFiniteLossError",
    "TrainState",
    "Trainer",
    "EVAL_BATCH_SIZE",
    "dropout_scales",
    "evaluate",
    "evaluation_sums",
    "fit",
    "l2_decay",
    "prepare_data",
]

Array = jax.Array

EVAL_BATCH_SIZE = 16384
"""The default chunk size of evaluation: large enough that a typical test set (Fashion-MNIST's
10000 images) is evaluated in one pass, where chunks of 8192 plus a remainder took 1.5x as long
(``benchmarks/levers.py``: ``eval_fit`` against ``eval_one_pass``); a chunk of 16384 samples of a
784-256-10 net holds about 70 MB of activations."""

GRADIENTS = ("backprop", "grad")
"""How :func:`fit` differentiates: the hand-written delta recursion or ``jax.grad``."""


class TrainState(NamedTuple):
    """Everything needed to continue training exactly (what a checkpoint holds).

    Attributes:
      params: a tuple of :class:`~fnnjax.Layer` (``W: (M_l, M_{l-1})``, ``b: (M_l,)``).
      opt_state: the optax optimizer state.
      key: the PRNG key that starts the next epoch.
      epoch: the number of epochs completed (a Python int).

    Example:
      >>> import jax, optax, fnnjax
      >>> mlp = fnnjax.MLP((2, 2), output="softmax")
      >>> params = fnnjax.init_params(jax.random.key(0), mlp)
      >>> state = fnnjax.TrainState(params, optax.sgd(0.1).init(params), jax.random.key(1), 0)
      >>> state.epoch
      0
    """

    params: Params
    opt_state: Any
    key: Array
    epoch: int


Callback = Callable[[dict, TrainState], "bool | None"]
"""``callback(record, state)`` after every epoch; returning True stops training after that epoch.

``record`` is the epoch's history entry; ``state`` the :class:`TrainState` after it. The arrays in
``state`` are donated to the next epoch: use them (e.g. save them) inside the callback, or copy
them (``jax.tree.map(jnp.copy, state.params)``) to keep them.
"""


@dataclasses.dataclass
class History:
    """What :func:`fit` measured.

    Attributes:
      epochs: one dict per epoch trained: ``epoch`` (1-based, counting ``initial_epoch``),
        ``train_loss`` (mean per-sample data loss over the epoch, each batch measured with the
        params before its update and with dropout on, as the notes' loop does; the L2 term is not
        included), ``train_acc`` (likewise; ``None`` when accuracy is undefined: outputs other than
        softmax, or sigmoid with a loss other than cross-entropy), ``<name>_loss`` and
        ``<name>_acc`` for every evaluation set (after the epoch, no dropout), and ``seconds``
        (wall time of the epoch: training, evaluation and the one host sync).
      compile_seconds: the time to compile the epoch and evaluation programs (before epoch 1).

    Example:
      >>> import fnnjax
      >>> h = fnnjax.History([{"epoch": 1, "train_loss": 0.9}, {"epoch": 2, "train_loss": 0.5}], 1.2)
      >>> h["train_loss"].tolist(), len(h)
      ([0.9, 0.5], 2)
    """

    epochs: list[dict]
    compile_seconds: float

    def __getitem__(self, metric: str) -> np.ndarray:
        """The values of one metric over the epochs, e.g. ``history["train_loss"]``."""
        return np.array([r[metric] for r in self.epochs], dtype=float)

    def __len__(self) -> int:
        return len(self.epochs)

    def to_dict(self) -> dict:
        """``{"epochs": [...], "compile_seconds": ...}``, ready for ``json.dump``."""
        return {"epochs": list(self.epochs), "compile_seconds": self.compile_seconds}


class NonFiniteLossError(FloatingPointError):
    """Training produced a non-finite loss (or parameters); training stopped.

    Attributes:
      epoch: the 1-based epoch in which it happened.
      step: the 1-based step (batch) within that epoch, or None when only the parameters at the
        end of the epoch were non-finite.
      history: the :class:`History` of the epochs completed before it.

    Example:
      >>> import jax, jax.numpy as jnp, optax, fnnjax
      >>> mlp = fnnjax.MLP((1, 1))
      >>> params = (fnnjax.Layer(jnp.ones((1, 1)), jnp.zeros(1)),)
      >>> try:
      ...     fnnjax.fit(mlp, params, (jnp.ones((2, 1)), jnp.zeros((2, 1))), optimizer=optax.sgd(5e9),
      ...                loss="mse", epochs=3, batch_size=1, key=jax.random.key(0))
      ... except fnnjax.NonFiniteLossError as err:
      ...     print(err.epoch, err.step, len(err.history))
      2 1 1
    """

    def __init__(self, message: str, *, epoch: int, step: int | None, history: History):
        super().__init__(message)
        self.epoch, self.step, self.history = epoch, step, history


# ----------------------------------------------------------------------------------------------
# Weight decay and dropout


def _weights_only(params: Params) -> Params:
    return tuple(_layer_of(True, False) for _ in params)


def l2_decay(l2: float) -> optax.GradientTransformation:
    r"""The L2 term of F7 as an optax transformation: adds $\lambda W^{(l)}$ to every weight gradient,
    with $\lambda$ = ``l2``.

    ``optax.add_decayed_weights(l2, mask=...)`` with biases masked out (F7 excludes them), so that
    ``optax.chain(fnnjax.l2_decay(lam), optax.sgd(lr))`` takes the same SGD steps as
    ``fit(..., l2=lam)`` with ``optax.sgd(lr)`` (F8: $W \leftarrow W - \eta\,(g + \lambda W)$ with $g$
    the gradient and $\eta$ = ``lr``).

    Args:
      l2: the coefficient $\lambda \ge 0$.

    Returns:
      An ``optax.GradientTransformation``; chain it before the optimizer.

    Example:
      >>> import optax, fnnjax
      >>> opt = optax.chain(fnnjax.l2_decay(1e-3), optax.sgd(0.1))
    """
    return optax.add_decayed_weights(float(l2), mask=_weights_only)


def dropout_scales(key: Array, mlp: MLP, n: int, rate: float | Array, dtype=jnp.float32) -> tuple[Array, ...]:
    r"""Inverted-dropout multipliers for the hidden layers (F26): $s^{(l)} = m^{(l)} / (1 - p)$, $p$ = ``rate``.

    $m^{(l)}$ is Bernoulli$(1 - p)$ per sample and unit, so a unit is DROPPED with probability
    $p$; dividing by $1 - p$ keeps $\mathbb{E}[s^{(l)}] = 1$, so evaluation uses the network as is
    (no dropout, no rescaling). Training uses $a^{(l)} = f_l(z^{(l)}) \odot s^{(l)}$ for
    $l = 1, \dots, L-1$ (never on the input or the output). ``1 - rate`` is computed in float32 (float64 for float64
    multipliers), the multiplier in ``dtype``.

    Args:
      key: a PRNG key; split into one key per hidden layer.
      mlp: the :class:`~fnnjax.MLP`.
      n: the batch size N.
      rate: the drop probability $p$, $0 \le p < 1$ (may be traced). A concrete rate is checked:
        outside $[0, 1)$, NaN, one that rounds to 1 (``1 - 1e-9`` in float32) or one whose
        multiplier $1 / (1 - p)$ overflows ``dtype`` raises. A traced rate cannot raise: one
        that breaks the rule makes every multiplier NaN (the loss and gradient NaN, visible),
        never a plausible number.
      dtype: the floating dtype of the multipliers.

    Returns:
      $(s^{(1)}, \dots, s^{(L-1)})$, each ``(N, M_l)`` with entries 0 or $1 / (1 - p)$.

    Raises:
      ValueError: for a concrete rate that breaks the rule above (naming the rate and the fix).

    Example:
      >>> import jax, fnnjax
      >>> s = fnnjax.dropout_scales(jax.random.key(0), fnnjax.MLP((3, 4, 2)), 2, 0.5)
      >>> sorted(set(s[0].ravel().tolist())) in ([0.0, 2.0], [2.0], [0.0])
      True
      >>> fnnjax.dropout_scales(jax.random.key(0), fnnjax.MLP((3, 4, 2)), 2, 1.0)
      Traceback (most recent call last):
      ...
      ValueError: rate = 1.0 but the drop rate must satisfy 0 <= rate < 1 (it is the probability ...)
    """
    metric = _metric_dtype(dtype)
    if not isinstance(rate, jax.core.Tracer):
        _check_drop_rate("rate", rate, dtype)
    p = jnp.asarray(rate, metric)  # rate may be traced: one program for all
    keep = 1 - p
    usable = (p >= 0) & (keep > 0) & jnp.isfinite(1 / keep.astype(dtype))  # False for NaN too
    # a rate that breaks the rule: every unit kept (probability 1) and divided by NaN, so every
    # multiplier is NaN (a mask of zeros would let 0 / NaN fold to 0)
    prob = jnp.where(usable, keep, jnp.ones_like(keep))
    divisor = jnp.where(usable, keep, jnp.asarray(jnp.nan, metric)).astype(dtype)
    keys = jax.random.split(key, mlp.num_layers - 1)
    return tuple(jax.random.bernoulli(k, prob, (n, m)).astype(dtype) / divisor for k, m in zip(keys, mlp.sizes[1:-1]))


def _check_drop_rate(name: str, rate, dtype=None) -> float:
    """The drop rate's rule (see :func:`dropout_scales`), in the dtypes the program computes with
    (skipped when ``dtype`` is None); returns the rate as a float."""
    real = isinstance(rate, (int, float, np.integer, np.floating)) or (
        hasattr(rate, "dtype") and (jnp.issubdtype(rate.dtype, jnp.floating) or jnp.issubdtype(rate.dtype, jnp.integer))
    )
    if isinstance(rate, (bool, np.bool_)) or np.ndim(rate) != 0 or not real:
        raise ValueError(f"{name} = {rate!r} but the drop rate must be a number, 0 <= {name} < 1")
    value = float(rate)
    if not 0 <= value < 1:  # NaN too
        raise ValueError(
            f"{name} = {value} but the drop rate must satisfy 0 <= {name} < 1 "
            "(it is the probability of DROPPING a hidden unit)"
        )
    if dtype is None:
        return value
    metric, out = np.dtype(_metric_dtype(dtype)), np.dtype(dtype)
    keep = np.asarray(1, metric) - np.asarray(value, metric)  # as the program computes it
    if keep <= 0:
        below = float(np.nextafter(np.asarray(1, metric), np.asarray(0, metric)))
        raise ValueError(
            f"{name} = {value!r} rounds to 1 in {metric.name}, the dtype the rate is computed in: every "
            f"hidden unit would be dropped and nothing trained; use {name} <= {below!r}"
        )
    with np.errstate(over="ignore", divide="ignore"):
        multiplier = np.asarray(1, out) / keep.astype(out)
    if not np.isfinite(multiplier):
        largest = float(np.finfo(out).max)
        raise ValueError(
            f"{name} = {value!r} is too close to 1 for {out.name}: the multiplier 1 / (1 - {name}) overflows "
            f"{out.name} (largest {largest:g}); use {name} <= {1 - 2 / largest:.6g}, or params in a wider dtype"
        )
    return value


# ----------------------------------------------------------------------------------------------
# One training step


@dataclasses.dataclass(frozen=True)
class _StepSpec:
    """Everything static about a training step (hashable: a static argument under jit).

    ``l2`` and ``dropout`` say only whether the L2 term and dropout are in the program; their
    values are the traced :class:`_Hyper` arguments. ``update`` is the optimizer's update function
    (the only part of it the program runs), compared by what it computes
    (:class:`~fnnjax._static_key.ByStructure`): hyperparameters that live in the optimizer state
    (``optax.inject_hyperparams``) are arguments, not part of the program."""

    mlp: MLP
    loss: str
    update: ByStructure
    gradient: str
    l2: bool
    dropout: bool
    accuracy: bool


class _Hyper(NamedTuple):
    """The numbers of a run passed to the compiled epoch as arguments (a sweep compiles once)."""

    l2: Array  # lambda, a scalar of the params' dtype
    dropout: Array  # the drop rate p, a scalar of _metric_dtype (float32, or float64)


def _backprop_gradient(spec: _StepSpec, hyper: _Hyper, params: Params, x: Array, target: Array, scales, valid=None):
    """dR/dtheta by the hand-written recursion (F10-F13), dropout masks in the delta recursion.

    ``valid`` (optional, ``(B,)`` bool): only those rows count; R is the mean over them."""
    trace = trace_batch(spec.mlp, params, x, scales)
    ds = backward(spec.mlp, params, trace, mean_output_delta(spec.mlp, spec.loss, trace, target, valid), scales)
    return parameter_gradients(params, trace, ds, hyper.l2 if spec.l2 else 0), trace


def _autodiff_gradient(spec: _StepSpec, hyper: _Hyper, params: Params, x: Array, target: Array, scales, valid=None):
    """dR/dtheta by jax.grad of the risk R (F7) on the same (dropped-out) forward pass."""

    def risk(p):
        trace = trace_batch(spec.mlp, p, x, scales)
        return trace_risk(spec.mlp, spec.loss, p, trace, target, hyper.l2 if spec.l2 else 0, valid), trace

    return jax.grad(risk, has_aux=True)(params)


_GRADIENT_FNS = {"backprop": _backprop_gradient, "grad": _autodiff_gradient}


def _correct(mlp: MLP, trace: Trace, target: Array) -> Array:
    """Per-sample accuracy ``(N,)``: argmax match (softmax) or mean thresholded match (sigmoid);
    NaN for a sample whose outputs are not finite (it has no prediction)."""
    z = trace.z[-1]
    if mlp.output == "softmax":
        hit = (jnp.argmax(z, axis=-1) == jnp.argmax(target, axis=-1)).astype(z.dtype)
    else:
        hit = jnp.mean(((z > 0) == (target > 0.5)).astype(z.dtype), axis=-1)
    return jnp.where(jnp.all(jnp.isfinite(z), axis=-1), hit, jnp.asarray(jnp.nan, z.dtype))


def _metric_dtype(dtype):
    """The dtype metrics are summed in: float64 for float64 data, float32 for every other."""
    return jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32


class _Sums(NamedTuple):
    """Per-epoch sums accumulated on the device (in :func:`_metric_dtype`)."""

    loss: Array  # sum over samples of the per-sample loss
    correct: Array  # sum over samples of the per-sample accuracy
    first_bad: Array  # 0-based index of the first step with a non-finite loss; -1 if none


def _train_step(spec: _StepSpec, hyper: _Hyper, carry, batch):
    params, opt_state, sums = carry
    x, target, key, step, valid = batch
    scales = dropout_scales(key, spec.mlp, x.shape[0], hyper.dropout, x.dtype) if spec.dropout else None
    grads, trace = _GRADIENT_FNS[spec.gradient](spec, hyper, params, x, target, scales, valid)
    updates, opt_state = spec.update.value(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metric = sums.loss.dtype
    per = per_sample_loss(spec.mlp, spec.loss, trace, target).astype(metric)
    acc = _correct(spec.mlp, trace, target).astype(metric) if spec.accuracy else jnp.zeros_like(per)
    if valid is not None:  # padding rows: weight exactly 0 (where, not a product: 0 * NaN is NaN)
        per = jnp.where(valid, per, jnp.zeros_like(per))
        acc = jnp.where(valid, acc, jnp.zeros_like(acc))
    batch_loss, correct = jnp.sum(per), jnp.sum(acc)
    bad = jnp.logical_and(sums.first_bad < 0, jnp.logical_not(jnp.isfinite(batch_loss)))
    sums = _Sums(sums.loss + batch_loss, sums.correct + correct, jnp.where(bad, step, sums.first_bad))
    return params, opt_state, sums


def _batch_order(key: Array, n: int, batch_size: int) -> tuple[Array, Array | None]:
    """The epoch's batches (see the module docstring): ``(idx, valid)``.

    ``idx``: ``(ceil(n / B), B)`` sample indices, a permutation of 0..n-1 read row by row, the
    last row padded (when B does not divide n) with the permutation's first indices; ``valid``:
    ``(ceil(n / B), B)`` bool, False on the padding, or None when there is none."""
    order = jax.random.permutation(key, n)
    steps = -(-n // batch_size)
    pad = steps * batch_size - n
    if not pad:
        return order.reshape(steps, batch_size), None
    idx = jnp.concatenate([order, order[:pad]]).reshape(steps, batch_size)
    valid = (jnp.arange(steps * batch_size) < n).reshape(steps, batch_size)
    return idx, valid


def _shard_batch(mesh, tree):
    """Constrain every array of ``tree`` (None allowed) to be split along axis 0 over ``mesh``."""
    return jax.tree.map(lambda a: lax.with_sharding_constraint(a, batch_sharding(mesh)), tree)


def _all_finite(tree) -> Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def _epoch_program(
    params, opt_state, key, x, target, hyper: _Hyper, *, spec: _StepSpec, batch_size: int, mesh=None, unroll: int = 1
):
    """One epoch (see the module docstring): returns params, opt_state, the next key, the sums
    and whether the final params are finite. With a ``mesh``, each batch is sharded along its
    batch axis and params/optimizer state stay replicated (XLA adds the all-reduce). ``unroll``
    steps run per iteration of the compiled loop (``lax.scan(..., unroll=unroll)``)."""
    n = x.shape[0]
    next_key, epoch_key = jax.random.split(key)
    perm_key, drop_key = jax.random.split(epoch_key)
    idx, valid = _batch_order(perm_key, n, batch_size)
    steps = idx.shape[0]
    zero = jnp.zeros((), _metric_dtype(x.dtype))
    carry = (params, opt_state, _Sums(zero, zero, jnp.asarray(-1, jnp.int32)))

    def body(carry, xs):
        i, k, step, v = xs
        if mesh is not None:  # each device gathers (and differentiates) its slice of the batch
            i, v = _shard_batch(mesh, (i, v))
            xb, tb = _shard_batch(mesh, (x[i], target[i]))
            new = _train_step(spec, hyper, carry, (xb, tb, k, step, v))
            return lax.with_sharding_constraint(new, replicated(mesh)), None
        return _train_step(spec, hyper, carry, (x[i], target[i], k, step, v)), None

    xs = (idx, jax.random.split(drop_key, steps), jnp.arange(steps, dtype=jnp.int32), valid)
    (params, opt_state, sums), _ = lax.scan(body, carry, xs, unroll=min(unroll, steps))
    return params, opt_state, next_key, sums, _all_finite(params)


_train_epoch = jax.jit(
    _epoch_program, static_argnames=("spec", "batch_size", "mesh", "unroll"), donate_argnames=("params", "opt_state")
)
"""The compiled epoch (one program per spec, shapes and options; see :func:`_epoch_program`)."""


# ----------------------------------------------------------------------------------------------
# Evaluation


@functools.partial(jax.jit, static_argnames=("mlp", "loss", "accuracy", "batch_size"))
def evaluation_sums(
    params: Params, x: Array, target: Array, *, mlp: MLP, loss: str, accuracy: bool, batch_size: int
) -> Array:
    """The compiled evaluation program of :func:`evaluate` and :func:`fit`: the sum over a data set of
    the per-sample losses and of the per-sample accuracies, ``lax.map`` over chunks of ``batch_size``
    samples.

    Divide by N for the means :func:`evaluate` reports. Jitted (``mlp``, ``loss``, ``accuracy`` and
    ``batch_size`` static), so ``evaluation_sums.lower(...).compile()`` gives the program itself (the
    levers benchmark times it). Nothing is checked here: take ``x`` and ``target`` from
    :func:`prepare_data`.

    Args:
      params: a tuple of :class:`~fnnjax.Layer` s.
      x: inputs ``(N, M_0)``, from :func:`prepare_data`.
      target: target rows ``(N, M_L)``, from :func:`prepare_data`.
      mlp: the :class:`~fnnjax.MLP`.
      loss: ``mse``, ``squared_error`` or ``cross_entropy``.
      accuracy: sum the per-sample accuracy (argmax match for softmax, the mean thresholded match
        for sigmoid); False leaves 0 in its place.
      batch_size: samples evaluated at a time (:data:`EVAL_BATCH_SIZE` by default in
        :func:`evaluate`), at most N.

    Returns:
      ``(2,)``: the loss sum and the accuracy sum, in float64 for float64 data and float32 for any
      other dtype.

    Raises:
      ValueError: from JAX for a ``batch_size`` below 1.

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> mlp = fnnjax.MLP((4, 3), output="softmax")
      >>> params = fnnjax.init_params(jax.random.key(0), mlp, std=0.0)
      >>> x, t = fnnjax.prepare_data(mlp, params, (jnp.ones((2, 4)), jnp.array([0, 2])))
      >>> s = fnnjax.evaluation_sums(params, x, t, mlp=mlp, loss="cross_entropy", accuracy=True, batch_size=2)
      >>> round(float(s[0]) / 2, 4)  # the mean loss, log 3
      1.0986
    """
    metric = _metric_dtype(x.dtype)

    def one(sample):
        trace = trace_batch(mlp, params, sample[0][None])
        per = per_sample_loss(mlp, loss, trace, sample[1][None])[0].astype(metric)
        acc = _correct(mlp, trace, sample[1][None])[0].astype(metric) if accuracy else jnp.zeros_like(per)
        return jnp.stack([per, acc])

    return jnp.sum(lax.map(one, (x, target), batch_size=batch_size), axis=0)


def _has_accuracy(mlp: MLP, loss: str) -> bool:
    return mlp.output == "softmax" or (mlp.output == "sigmoid" and loss == "cross_entropy")


def _to_device(tree, *, copy: bool = False, mesh=None):
    """Commit a pytree to the first device, or replicate it over ``mesh`` (the one place that
    decides placement).

    Everything a compiled program receives is committed the same way, so that fresh arrays and
    arrays restored from a checkpoint hit the same compiled program. ``copy=True`` gives fresh
    buffers, so that donating them never invalidates the caller's arrays.
    """
    if mesh is None:
        return jax.device_put(tree, jax.devices()[0], may_alias=False if copy else None)
    placed = _replicate(mesh, tree)
    # resharding may keep the caller's buffer as one replica even with may_alias=False: copy on
    # the mesh so that donating the result never deletes the caller's arrays
    return _copy_on(mesh, placed) if copy else placed


def _replicate(mesh, tree):
    """A full copy of every array of ``tree`` on every device of ``mesh``.

    One process: ``jax.device_put``. Several processes (after ``jax.distributed.initialize``):
    each process fills its own devices from its (identical) host copy with
    ``jax.make_array_from_callback``, the multi-controller way to build a global array."""
    sharding = replicated(mesh)
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def put(a):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(a)), impl=jax.random.key_impl(a))
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, tree)


@functools.partial(jax.jit, static_argnums=0)
def _copy_on(mesh, tree):
    return lax.with_sharding_constraint(jax.tree.map(jnp.copy, tree), replicated(mesh))


def prepare_data(
    mlp: MLP, params: Params, data, *, loss: str = "cross_entropy", what: str = "data", mesh=None
) -> tuple[Array, Array]:
    """Check a data set against the MLP and loss as :func:`fit` and :func:`evaluate` do, and put it on
    the device: the inputs and target rows that :func:`evaluation_sums` takes.

    Args:
      mlp: the :class:`~fnnjax.MLP`.
      params: a tuple of :class:`~fnnjax.Layer` s (their dtype is the data's).
      data: a pair ``(x, y)``: inputs ``(N, M_0)`` and targets as for :func:`fnnjax.loss`.
      loss: ``mse``, ``squared_error`` or ``cross_entropy``.
      what: the name of the data in error messages (``"train"``, ``"eval['val']"``).
      mesh: a device mesh to replicate the arrays over, or None for the first device.

    Returns:
      ``(x, target)``: device arrays ``(N, M_0)`` and ``(N, M_L)`` (labels become one-hot rows) in the
      params' dtype.

    Raises:
      TypeError: when ``data`` is not a pair.
      ValueError: when x is not ``(N, M_0)``, N = 0, the targets do not fit the MLP or loss, or the
        data hold NaN or inf.

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> mlp = fnnjax.MLP((4, 3), output="softmax")
      >>> params = fnnjax.init_params(jax.random.key(0), mlp)
      >>> x, t = fnnjax.prepare_data(mlp, params, (jnp.ones((2, 4)), jnp.array([0, 2])))
      >>> t.tolist()
      [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{what} must be a pair (x, y) of arrays, got {type(data).__name__}")
    x, y = data
    if np.ndim(x) != 2:
        raise ValueError(
            f"{what} x has shape {np.shape(x)} but fit expects a batch (N, {mlp.sizes[0]}); "
            f"reshape it with x.reshape(len(x), -1)"
        )
    if np.shape(x)[0] == 0:
        raise empty_batch_error(f"{what} x", np.shape(x))
    _, batch = prepare(mlp, params, x, y, loss)
    for name, arr in (("x", batch.x), ("y", batch.target)):
        _check_finite(f"{what} {name}", arr)
    return _to_device((batch.x, batch.target), mesh=mesh)


def _check_finite(what: str, arr: Array) -> None:
    """Refuse data holding NaN or inf (one reduction on the device; the details only on failure)."""
    if bool(jnp.all(jnp.isfinite(arr))):
        return
    bad = ~np.isfinite(np.asarray(arr))
    row, col = (int(i[0]) for i in np.nonzero(bad))
    raise ValueError(
        f"{what} holds {int(bad.sum())} non-finite values (NaN or inf; the first at row "
        f"{row}, column {col}); remove or repair those samples before training or "
        "evaluating"
    )


def evaluate(mlp: MLP, params: Params, data, *, loss: str = "cross_entropy", batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """Mean loss and accuracy of ``params`` on a data set, jitted and batched (no dropout).

    Args:
      mlp: the :class:`~fnnjax.MLP`.
      params: a tuple of L :class:`~fnnjax.Layer` s.
      data: ``(x, y)`` with x ``(N, M_0)`` and y as for :func:`fnnjax.loss`.
      loss: the loss name.
      batch_size: chunk size of the evaluation (memory only; results do not depend on it beyond
        float rounding); default 16384 (one pass for up to 16384 samples).

    Returns:
      ``{"loss": mean per-sample loss (no L2 term), "acc": accuracy or None}``, summed in float32
      (float64 for float64 params). Both are NaN when the network's outputs are not finite for
      some sample (an overflow): such a sample has no prediction, so no accuracy is made up.

    Raises:
      ValueError/TypeError: when the data do not fit the MLP or loss, or hold NaN or inf.

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> mlp = fnnjax.MLP((4, 3), output="softmax")
      >>> params = fnnjax.init_params(jax.random.key(0), mlp, std=0.0)
      >>> r = fnnjax.evaluate(mlp, params, (jnp.ones((2, 4)), jnp.array([0, 2])))
      >>> round(r["loss"], 4)  # log 3
      1.0986
    """
    params = check_params(mlp, params)
    check_loss(mlp, loss)
    _check_positive_int("batch_size", batch_size)
    x, target = prepare_data(mlp, params, data, loss=loss)
    acc = _has_accuracy(mlp, loss)
    sums = np.asarray(
        evaluation_sums(params, x, target, mlp=mlp, loss=loss, accuracy=acc, batch_size=min(batch_size, x.shape[0]))
    )
    n = x.shape[0]
    return {"loss": float(sums[0]) / n, "acc": float(sums[1]) / n if acc else None}


# ----------------------------------------------------------------------------------------------
# fit


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} = {value!r} but it must be a positive integer")
    return int(value)


def _check_batch_size(batch_size, n: int, mesh) -> int:
    """The batch size as an int: positive, at most the ``n`` training samples, and (on a mesh) a
    multiple of its device count."""
    batch_size = _check_positive_int("batch_size", batch_size)
    if batch_size > n:
        raise ValueError(f"batch_size = {batch_size} is larger than the training set (N = {n}); use batch_size <= {n}")
    if mesh is not None:
        check_batch_divides(batch_size, mesh)
    return batch_size


def _check_fit_options(optimizer, loss, gradient, l2, dropout, epochs, initial_epoch) -> tuple[float, float]:
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            f"optimizer must be an optax GradientTransformation (e.g. optax.sgd(0.1)), got {type(optimizer).__name__}"
        )
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid losses are {', '.join(LOSSES)}")
    if gradient not in GRADIENTS:
        raise ValueError(f"unknown gradient {gradient!r}; valid values are {', '.join(GRADIENTS)}")
    if isinstance(l2, jax.core.Tracer) or isinstance(dropout, jax.core.Tracer):
        raise TypeError(
            "fit takes l2 and dropout as numbers, not traced values: it compiles the "
            "epoch itself, with both as arguments of the program (so a sweep over them "
            "compiles once); call fit outside jax.jit"
        )
    l2 = float(check_l2(l2))
    dropout = _check_drop_rate("dropout", dropout)
    _check_positive_int("epochs", epochs)
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
        raise ValueError(f"initial_epoch = {initial_epoch!r} but it must be an integer >= 0")
    if initial_epoch > epochs:
        raise ValueError(
            f"initial_epoch = {initial_epoch} is past epochs = {epochs}; epochs counts the epochs "
            "already done, so pass epochs > initial_epoch to train further"
        )
    return l2, dropout


def _named_evals(eval) -> dict:
    if eval is None:
        return {}
    if isinstance(eval, Mapping):
        return dict(eval)
    return {"val": eval}


def _check_opt_state(optimizer, params: Params, opt_state):
    expected = jax.tree.structure(jax.eval_shape(optimizer.init, params))
    got = jax.tree.structure(opt_state)
    if expected != got:
        raise TypeError(
            "opt_state does not match optimizer.init(params):\n"
            f"  expected treedef: {expected}\n  got treedef:      {got}\n"
            "pass the state this optimizer produced (or opt_state=None to start afresh)"
        )


def fit(
    mlp: MLP,
    params: Params,
    train,
    *,
    optimizer,
    epochs: int,
    batch_size: int,
    key: Array,
    loss: str = "cross_entropy",
    gradient: str = "backprop",
    l2: float = 0.0,
    dropout: float = 0.0,
    eval=None,
    eval_batch_size: int = EVAL_BATCH_SIZE,
    callbacks: Sequence[Callback] = (),
    opt_state=None,
    initial_epoch: int = 0,
    mesh=None,
    devices: int | None = None,
    unroll: int = 1,
) -> tuple[Params, History]:
    r"""Train ``params`` with minibatch optimisation; return the trained params and the history.

    Every step computes the gradient of the risk on one batch of $B$ samples (F7),

    $$
    R = \frac{1}{B} \sum_i \mathcal{L}\big(y_i, \phi(x_i)\big) + \frac{\lambda}{2} \sum_l \lVert W^{(l)} \rVert_F^2 ,
    $$

    with $\lambda$ = ``l2`` (with dropout the forward pass drops hidden units, F26), and lets the
    optax ``optimizer`` turn it into an update (plain SGD: F8/F13,
    $\theta \leftarrow \theta - \eta\, \partial R / \partial \theta$ with $\eta$ the learning rate).
    Each epoch reshuffles the data from ``key`` and runs as one compiled program; see the module
    docstring for the exact batching rule (the last partial batch is kept) and how keys are split.

    Args:
      mlp: the :class:`~fnnjax.MLP`.
      params: initial params, a tuple of L :class:`~fnnjax.Layer` s; not modified (fit copies them).
      train: ``(x, y)``: x ``(N, M_0)``; y integer labels ``(N,)`` or targets as for
        :func:`fnnjax.loss`.
      optimizer: any optax ``GradientTransformation``, e.g. ``optax.sgd(0.1)``.
      epochs: the epoch to stop after (counting ``initial_epoch``: a run resumed at epoch 3 with
        ``epochs=50`` trains epochs 4..50).
      batch_size: $B$, $1 \le B \le N$.
      key: the PRNG key that starts epoch ``initial_epoch + 1`` (shuffling and dropout).
      loss: ``cross_entropy`` (needs a softmax or sigmoid output), ``mse`` or ``squared_error``.
      gradient: ``"backprop"``: fnnjax's hand-written $\delta$ recursion (F10-F13, with the dropout
        masks inside the recursion); ``"grad"``: ``jax.grad`` of the same risk.
      l2: $\lambda$ of the L2 term of F7 (weights only), added to the gradient as $\lambda W$; a real
        number $\ge 0$ that is finite in the params' dtype (the rule of :func:`fnnjax.loss`). The
        same decay can instead be an optax transformation: :func:`l2_decay`.
      dropout: the DROP rate $p$ of inverted dropout on every hidden layer, $0 \le p < 1$
        (0: no dropout), checked in the dtypes the program computes with (a rate that rounds to 1
        in float32, such as ``1 - 1e-9``, or whose multiplier $1 / (1 - p)$ overflows the
        params' dtype is refused; see :func:`dropout_scales`). Training only; evaluation never
        drops.
      eval: evaluation data measured after every epoch: ``(x, y)`` (named ``val``) or a mapping
        ``{"val": (x, y), "test": (x, y), ...}``.
      eval_batch_size: chunk size of the evaluation program (default 16384: a test set of up to
        16384 samples is evaluated in one pass, the fastest way).
      callbacks: functions ``callback(record, state)`` called after every epoch (see
        :data:`Callback`); one returning True stops training.
      opt_state: the optimizer state to continue from (default ``optimizer.init(params)``).
      initial_epoch: the number of epochs already done (when resuming).
      mesh: a ``jax.sharding.Mesh`` to train data-parallel on (see :mod:`fnnjax._sharding`): each
        batch is split along its batch axis over all the mesh's devices, params, optimizer state
        and data are replicated, XLA combines the gradient. ``batch_size`` must be a multiple of
        ``mesh.size``. The returned params are replicated over the mesh. Default: one device.
      devices: shortcut for ``mesh=fnnjax.data_mesh(devices)``: a 1-D mesh over the first
        ``devices`` devices of ``jax.devices()``.
      unroll: training steps per iteration of the epoch's compiled loop (``lax.scan``'s
        ``unroll``; default 1). Larger values trade compile time and program size for less loop
        overhead per step, which matters where each step is short (small nets on a GPU). The
        steps are the same; the results agree to float rounding (XLA may fuse an unrolled body
        differently), so a run resumed with another ``unroll`` is not bit-identical. See
        ``benchmarks/train.py --unroll``.

    Returns:
      ``(params, history)``: the trained params (same structure and dtype) and a :class:`History`.

    Raises:
      ValueError/TypeError: for bad names, shapes, sizes or options (one line naming the value),
        an empty training set, data that :func:`fnnjax.loss` would refuse, a batch size that does
        not divide over the mesh, or more devices than there are.
      NonFiniteLossError: when a batch's loss (or the params) becomes non-finite; the message
        names the epoch and step; the epochs before it are in the error's ``history``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, fnnjax
      >>> mlp = fnnjax.MLP((2, 8, 2), hidden="tanh", output="softmax")
      >>> x = jax.random.normal(jax.random.key(1), (64, 2))
      >>> y = (x[:, 0] * x[:, 1] > 0).astype(jnp.int32)
      >>> params, hist = fnnjax.fit(mlp, fnnjax.init_params(jax.random.key(0), mlp, "xavier"),
      ...                           (x, y), optimizer=optax.sgd(0.5), epochs=3, batch_size=16,
      ...                           key=jax.random.key(2))
      >>> len(hist), sorted(hist.epochs[0])
      (3, ['epoch', 'seconds', 'train_acc', 'train_loss'])
    """
    trainer = Trainer(
        mlp,
        params,
        train,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        key=key,
        loss=loss,
        gradient=gradient,
        l2=l2,
        dropout=dropout,
        eval=eval,
        eval_batch_size=eval_batch_size,
        opt_state=opt_state,
        initial_epoch=initial_epoch,
        mesh=mesh,
        devices=devices,
        unroll=unroll,
    )
    for record in trainer:
        stops = [bool(cb(record, trainer.state)) for cb in callbacks]
        if any(stops):
            break
    return trainer.state.params, trainer.history


class Trainer:
    """The epoch loop behind :func:`fit`, one epoch per ``next()``: ``for record in Trainer(...)``.

    Takes exactly the arguments of :func:`fit` except ``callbacks``. Construction checks them,
    puts the data on the device and compiles the epoch and evaluation programs
    (``compile_seconds``); each ``next()`` trains one epoch and returns its record (see
    :class:`History`). Useful to interleave training with other work (the benchmarks time several
    trainers epoch by epoch).

    Attributes:
      state: the :class:`TrainState` after the last epoch (its arrays are donated to the next one).
      history: the :class:`History` so far.
      compile_seconds: the compile time of the programs.
      epoch_program: the compiled epoch program (``jax.stages.Compiled``: ``.as_text()`` is its
        optimised HLO, which the levers benchmark inspects), or None when nothing is left to train.
      mesh: the ``jax.sharding.Mesh`` training runs on (from ``mesh`` or ``devices``), or None.

    Raises:
      ValueError: as :func:`fit`; and ``next()`` raises :class:`NonFiniteLossError` for a
        non-finite loss and ``StopIteration`` after ``epochs``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, fnnjax
      >>> mlp = fnnjax.MLP((2, 4, 2), output="softmax")
      >>> x, y = jnp.ones((8, 2)), jnp.arange(8) % 2
      >>> t = fnnjax.Trainer(mlp, fnnjax.init_params(jax.random.key(0), mlp), (x, y),
      ...                    optimizer=optax.sgd(0.1), epochs=2, batch_size=4, key=jax.random.key(1))
      >>> [r["epoch"] for r in t], t.state.epoch
      ([1, 2], 2)
    """

    def __init__(
        self,
        mlp: MLP,
        params: Params,
        train,
        *,
        optimizer,
        epochs: int,
        batch_size: int,
        key: Array,
        loss: str = "cross_entropy",
        gradient: str = "backprop",
        l2: float = 0.0,
        dropout: float = 0.0,
        eval=None,
        eval_batch_size: int = EVAL_BATCH_SIZE,
        opt_state=None,
        initial_epoch: int = 0,
        mesh=None,
        devices: int | None = None,
        unroll: int = 1,
    ):
        l2, dropout = _check_fit_options(optimizer, loss, gradient, l2, dropout, epochs, initial_epoch)
        unroll = _check_positive_int("unroll", unroll)
        params = check_params(mlp, params)
        check_l2(l2, params_dtype(params))  # in the params' dtype: 1e39 overflows float32
        _check_drop_rate("dropout", dropout, params_dtype(params))  # 1 - 1e-9 rounds to 1 in float32
        check_loss(mlp, loss)
        self.mesh = mesh = resolve_mesh(mesh, devices)
        self._x, self._target = prepare_data(mlp, params, train, loss=loss, what="train", mesh=mesh)
        batch_size = _check_batch_size(batch_size, self._x.shape[0], mesh)
        eval_batch_size = _check_positive_int("eval_batch_size", eval_batch_size)
        self._evals = {
            name: prepare_data(mlp, params, data, loss=loss, what=f"eval[{name!r}]", mesh=mesh)
            for name, data in _named_evals(eval).items()
        }
        self._accuracy = _has_accuracy(mlp, loss)
        self._batch_size, self._epochs = batch_size, int(epochs)
        if opt_state is not None:
            _check_opt_state(optimizer, params, opt_state)
        self.history = History([], 0.0)
        if initial_epoch == epochs:  # nothing left to train (a resumed run that is complete)
            self.state = TrainState(params, opt_state, key, int(epochs))
            self.compile_seconds = 0.0
            return
        params = _to_device(params, copy=True, mesh=mesh)  # donated below: never the caller's buffers
        opt_state = _to_device(optimizer.init(params) if opt_state is None else opt_state, copy=True, mesh=mesh)
        key = _to_device(key, mesh=mesh)
        self.state = TrainState(params, opt_state, key, int(initial_epoch))
        spec = _StepSpec(mlp, loss, ByStructure(optimizer.update), gradient, l2 != 0, dropout != 0, self._accuracy)
        dtype = params[0].W.dtype
        self._hyper = _to_device(_Hyper(jnp.asarray(l2, dtype), jnp.asarray(dropout, _metric_dtype(dtype))), mesh=mesh)
        self._compile(spec, batch_size=batch_size, eval_batch_size=eval_batch_size, unroll=unroll)

    def _compile(self, spec: _StepSpec, *, batch_size: int, eval_batch_size: int, unroll: int) -> None:
        """Compile the epoch program and one evaluation program per evaluation set, ahead of the
        first epoch, and record how long that took (``compile_seconds``)."""
        params, opt_state, key = self.state.params, self.state.opt_state, self.state.key
        t0 = time.perf_counter()
        self._epoch_fn = _train_epoch.lower(
            params,
            opt_state,
            key,
            self._x,
            self._target,
            self._hyper,
            spec=spec,
            batch_size=batch_size,
            mesh=self.mesh,
            unroll=unroll,
        ).compile()
        self._eval_fns = {
            name: evaluation_sums.lower(
                params,
                ex,
                et,
                mlp=spec.mlp,
                loss=spec.loss,
                accuracy=self._accuracy,
                batch_size=min(eval_batch_size, ex.shape[0]),
            ).compile()
            for name, (ex, et) in self._evals.items()
        }
        self.compile_seconds = time.perf_counter() - t0
        self.history.compile_seconds = self.compile_seconds

    @property
    def epoch_program(self):
        """The compiled epoch program, or None when nothing was left to train (see the class)."""
        return getattr(self, "_epoch_fn", None)

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        params, opt_state, key, done = self.state
        if done >= self._epochs:
            raise StopIteration
        epoch, n = done + 1, self._x.shape[0]
        t_start = time.perf_counter()
        params, opt_state, key, sums, finite = self._epoch_fn(
            params, opt_state, key, self._x, self._target, self._hyper
        )
        ev = {name: fn(params, *self._evals[name]) for name, fn in self._eval_fns.items()}
        sums, finite, ev = jax.device_get((sums, finite, ev))  # the one host sync of the epoch
        seconds = time.perf_counter() - t_start
        _raise_if_not_finite(sums, finite, epoch, n, self._batch_size, self.history)
        record = {
            "epoch": epoch,
            "train_loss": float(sums.loss) / n,
            "train_acc": float(sums.correct) / n if self._accuracy else None,
        }
        for name, (ex, _) in self._evals.items():
            m = ex.shape[0]
            record[f"{name}_loss"] = float(ev[name][0]) / m
            record[f"{name}_acc"] = float(ev[name][1]) / m if self._accuracy else None
        record["seconds"] = seconds
        self.history.epochs.append(record)
        self.state = TrainState(params, opt_state, key, epoch)
        return record


def _raise_if_not_finite(sums: _Sums, finite, epoch: int, n: int, batch_size: int, history: History):
    steps = -(-n // batch_size)
    first_bad = int(sums.first_bad)
    if first_bad >= 0:
        step = first_bad + 1
        global_step = (epoch - 1) * steps + step
        raise NonFiniteLossError(
            f"non-finite loss at epoch {epoch}, step {step} of {steps} (global step {global_step}); "
            "training stopped: lower the learning rate or check the data for inf/NaN",
            epoch=epoch,
            step=step,
            history=history,
        )
    if not bool(finite):
        raise NonFiniteLossError(
            f"non-finite parameters after epoch {epoch}, step {steps} of {steps} (the last update "
            "overflowed); training stopped: lower the learning rate",
            epoch=epoch,
            step=steps,
            history=history,
        )
