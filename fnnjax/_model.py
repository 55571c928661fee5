"""The model: an immutable MLP description, its parameters, initialisers and the forward pass (F1).

Parameters are a plain tuple of :class:`Layer` NamedTuples, one per layer ``l = 1..L``, with
``W: (M_l, M_{l-1})`` and ``b: (M_l,)`` (the notes' convention ``z^(l) = W^(l) a^(l-1) + b^(l)``).
The :class:`MLP` itself holds only configuration (sizes and activation names), is hashable, and is
therefore a static argument under ``jax.jit``; params hold arrays only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import NamedTuple, cast

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnnjax._activations import ACTIVATIONS, HIDDEN_ACTIVATIONS, activate

__all__ = ["MLP", "Layer", "Params", "Trace", "SCHEMES", "init_params", "forward", "forward_trace"]

Array = jax.Array


class Layer(NamedTuple):
    """The parameters of one layer: ``W: (M_l, M_{l-1})`` and ``b: (M_l,)``; ``z = W a + b`` (F1).

    A NamedTuple, hence a pytree: ``jax.tree.map`` and optax see its two arrays.

    Example:
      >>> import jax.numpy as jnp, fnnjax
      >>> layer = fnnjax.Layer(W=jnp.ones((2, 3)), b=jnp.zeros(2))  # 3 inputs, 2 units
      >>> (layer.W @ jnp.array([1.0, 2.0, 3.0]) + layer.b).tolist()
      [6.0, 6.0]
    """

    W: Array
    b: Array


Params = tuple[Layer, ...]
"""A tuple of L :class:`Layer` s, layer 1 first."""


def _layer_of(W: object, b: object) -> Layer:
    """``Layer(W, b)`` holding other leaves than arrays (shapes, masks, shape specs): the same pytree
    structure. Layer's fields are typed as the parameters' arrays; these uses hold something else."""
    return Layer(cast(Array, W), cast(Array, b))


class Trace(NamedTuple):
    r"""Everything the forward pass computed (F16 step 1).

    Attributes:
      z: $(z^{(1)}, \dots, z^{(L)})$, each ``(N, M_l)`` (or ``(M_l,)`` for one sample).
      a: $(a^{(0)}, \dots, a^{(L)})$ with $a^{(0)} = x$.

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> mlp = fnnjax.MLP((2, 3, 1), hidden="relu")
      >>> trace = fnnjax.forward_trace(mlp, fnnjax.init_params(jax.random.key(0), mlp), jnp.ones(2))
      >>> bool(jnp.all(trace.a[1] == jax.nn.relu(trace.z[0])))  # a^(1) = f_1(z^(1))
      True
    """

    z: tuple[Array, ...]
    a: tuple[Array, ...]


@dataclasses.dataclass(frozen=True)
class MLP:
    r"""An immutable, hashable description of a fully connected feedforward network.

    ``MLP(sizes, hidden="relu", output="identity")`` is the network (F1)

    $$
    \phi(x) = f_L\Big(W^{(L)} f_{L-1}\big(\cdots f_1(W^{(1)} x + b^{(1)}) \cdots\big) + b^{(L)}\Big)
    $$

    with ``sizes`` $= (M_0, \dots, M_L)$. It holds no arrays, so it is a static argument of ``jax.jit``.

    Args:
      sizes: layer widths $(M_0, \dots, M_L)$, $L \ge 1$, each a positive integer.
      hidden: one activation name for every hidden layer, or a sequence of $L - 1$ names.
        Any of identity, sigmoid, tanh, relu, leaky_relu, softplus, step.
      output: the output activation $f_L$: any of those or softmax.
      leaky_slope: the negative-side slope of leaky_relu (default 0.01).

    Raises:
      ValueError: for sizes that are not positive integers, fewer than two sizes, a wrong number of
        hidden names, an unknown name, or softmax on a hidden layer.

    Example:
      >>> import fnnjax
      >>> mlp = fnnjax.MLP((784, 256, 10), hidden="relu", output="softmax")
      >>> mlp.activations
      ('relu', 'softmax')
    """

    sizes: tuple[int, ...]
    hidden: tuple[str, ...] | str = "relu"
    output: str = "identity"
    leaky_slope: float = 0.01

    def __post_init__(self):
        sizes = _normalise_sizes(self.sizes)
        hidden = _normalise_hidden(self.hidden, len(sizes) - 1)
        if self.output not in ACTIVATIONS:
            raise ValueError(f"unknown output activation {self.output!r}; valid names are {', '.join(ACTIVATIONS)}")
        if not isinstance(self.leaky_slope, (int, float)) or isinstance(self.leaky_slope, bool):
            raise TypeError(f"leaky_slope must be a number, got {self.leaky_slope!r}")
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "leaky_slope", float(self.leaky_slope))

    @property
    def num_layers(self) -> int:
        """L, the number of layers with parameters."""
        return len(self.sizes) - 1

    @property
    def activations(self) -> tuple[str, ...]:
        """``(f_1, ..., f_L)``: the hidden activations then the output one."""
        return (*self.hidden, self.output)

    @property
    def num_params(self) -> int:
        """P, the number of scalar parameters, sum over l of ``M_l (M_{l-1} + 1)``."""
        return sum(m * (n + 1) for n, m in zip(self.sizes[:-1], self.sizes[1:]))

    def shapes(self) -> tuple[Layer, ...]:
        """The expected shapes: ``Layer(W=(M_l, M_{l-1}), b=(M_l,))`` for each layer."""
        return tuple(_layer_of((m, n), (m,)) for n, m in zip(self.sizes[:-1], self.sizes[1:]))


def _normalise_sizes(sizes) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a sequence of layer widths (M_0, ..., M_L), got {sizes!r}")
    out = []
    for i, m in enumerate(sizes):
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"sizes[{i}] = {m!r} is not a positive integer; every layer width M_l must be >= 1")
        out.append(int(m))
    if len(out) < 2:
        raise ValueError(
            f"sizes {tuple(out)} has {len(out)} entry; an MLP needs at least (M_0, M_1), "
            "an input width and an output width"
        )
    return tuple(out)


def _normalise_hidden(hidden, num_layers: int) -> tuple[str, ...]:
    if isinstance(hidden, str):
        names = (hidden,) * (num_layers - 1)
    elif isinstance(hidden, Sequence):
        names = tuple(hidden)
        if len(names) != num_layers - 1:
            raise ValueError(
                f"hidden has {len(names)} activation names but sizes describe "
                f"{num_layers - 1} hidden layers; give one name for all or exactly "
                f"{num_layers - 1} names"
            )
    else:
        raise TypeError(f"hidden must be an activation name or a sequence of names, got {hidden!r}")
    for i, name in enumerate(names):
        if name == "softmax":
            raise ValueError(
                f"softmax is allowed only on the output layer, but hidden layer {i + 1} uses it; "
                "use it as output='softmax'"
            )
        if name not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"unknown hidden activation {name!r} (layer {i + 1}); valid names are {', '.join(HIDDEN_ACTIVATIONS)}"
            )
    return names


# ----------------------------------------------------------------------------------------------
# Initialisation

SCHEMES = {
    "normal": ("std",),
    "uniform": ("limit",),
    "xavier": ("gain",),
    "glorot": ("gain",),
    "xavier_uniform": ("gain",),
    "glorot_uniform": ("gain",),
    "he": ("gain",),
    "kaiming": ("gain",),
    "he_uniform": ("gain",),
    "kaiming_uniform": ("gain",),
}
"""Initialisation schemes and the options each takes (all take ``dtype``)."""


def _weight(key, scheme: str, fan_out: int, fan_in: int, opts: dict, dtype) -> Array:
    shape = (fan_out, fan_in)
    gain = opts.get("gain", 1.0)
    if scheme == "normal":
        return opts.get("std", 0.01) * jax.random.normal(key, shape, dtype)
    if scheme == "uniform":
        limit = opts.get("limit", 1.0 / math.sqrt(fan_in))
        return jax.random.uniform(key, shape, dtype, -limit, limit)
    if scheme in ("xavier", "glorot"):
        return gain * math.sqrt(2.0 / (fan_in + fan_out)) * jax.random.normal(key, shape, dtype)
    if scheme in ("xavier_uniform", "glorot_uniform"):
        limit = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return jax.random.uniform(key, shape, dtype, -limit, limit)
    if scheme in ("he", "kaiming"):
        return gain * math.sqrt(2.0 / fan_in) * jax.random.normal(key, shape, dtype)
    limit = gain * math.sqrt(6.0 / fan_in)  # he_uniform / kaiming_uniform
    return jax.random.uniform(key, shape, dtype, -limit, limit)


def init_params(key: Array, mlp: MLP, scheme: str = "normal", *, dtype=jnp.float32, **options) -> Params:
    r"""Random weights and zero biases for ``mlp``.

    Schemes, with $n_\text{in} = M_{l-1}$, $n_\text{out} = M_l$ and the option ``gain`` $= g$:
    ``normal``: $W \sim \mathcal{N}(0, \sigma^2)$, option ``std`` $= \sigma$ (default 0.01, the notes'
    recipe); ``uniform``: $W \sim U(-c, c)$, option ``limit`` $= c$ (default $1/\sqrt{n_\text{in}}$);
    ``xavier`` (alias ``glorot``): $\mathcal{N}\big(0, g^2\, 2/(n_\text{in} + n_\text{out})\big)$;
    ``xavier_uniform``: $U\big(\pm g \sqrt{6/(n_\text{in} + n_\text{out})}\big)$; ``he`` (alias ``kaiming``):
    $\mathcal{N}(0, g^2\, 2/n_\text{in})$; ``he_uniform``: $U\big(\pm g \sqrt{6/n_\text{in}}\big)$. Biases are
    zero.

    Args:
      key: a PRNG key; split into one key per layer.
      mlp: the :class:`MLP`.
      scheme: one of :data:`SCHEMES`.
      dtype: floating dtype of every array (default float32).
      **options: the scheme's options (see above).

    Returns:
      A tuple of L :class:`Layer` s with ``W: (M_l, M_{l-1})``, ``b: (M_l,)``.

    Raises:
      ValueError: for an unknown scheme, an option the scheme does not take, or a non-float dtype.

    Example:
      >>> import jax, fnnjax
      >>> params = fnnjax.init_params(jax.random.key(0), fnnjax.MLP((4, 3, 2)), "he")
      >>> [p.W.shape for p in params]
      [(3, 4), (2, 3)]
    """
    if not isinstance(mlp, MLP):
        raise TypeError(f"init_params expects an fnnjax.MLP as its second argument, got {type(mlp).__name__}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid schemes are {', '.join(SCHEMES)}")
    unknown = set(options) - set(SCHEMES[scheme])
    if unknown:
        raise ValueError(
            f"init scheme {scheme!r} takes the options {SCHEMES[scheme]} (and dtype), not {sorted(unknown)}"
        )
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype, got {jnp.dtype(dtype).name}")
    keys = jax.random.split(key, mlp.num_layers)
    return tuple(
        Layer(_weight(k, scheme, m, n, options, dtype), jnp.zeros((m,), dtype))
        for k, n, m in zip(keys, mlp.sizes[:-1], mlp.sizes[1:])
    )


# ----------------------------------------------------------------------------------------------
# Checking what the user passed (at trace time: shapes and dtypes are static)


def check_params(mlp: MLP, params) -> Params:
    """Check that ``params`` fit ``mlp`` (structure, shapes, one floating dtype); return them.

    Raises:
      TypeError: when the pytree structure is not a sequence of L Layers (both treedefs shown).
      ValueError: for a wrong shape or mixed/non-floating dtypes, naming the layer.
    """
    if not isinstance(mlp, MLP):
        raise TypeError(f"expected an fnnjax.MLP, got {type(mlp).__name__}")
    if isinstance(params, list):
        params = tuple(params)
    expected = jax.tree_util.tree_structure(tuple(_layer_of(0, 0) for _ in range(mlp.num_layers)))
    got = jax.tree_util.tree_structure(params)
    if got != expected:
        n = len(params) if isinstance(params, tuple) else None
        count = f"{n} entries" if n is not None else type(params).__name__
        raise TypeError(
            f"params do not match the MLP: expected a tuple of {mlp.num_layers} fnnjax.Layer(W, b) "
            f"(one per layer of sizes {mlp.sizes}), got {count}.\n"
            f"  expected treedef: {expected}\n  got treedef:      {got}\n"
            "Build params with fnnjax.init_params(key, mlp) or "
            "tuple(fnnjax.Layer(W, b) for each layer)."
        )
    dtype = None
    for l, (layer, shape) in enumerate(zip(params, mlp.shapes()), start=1):
        for name, arr, want in (("W", layer.W, shape.W), ("b", layer.b, shape.b)):
            if tuple(jnp.shape(arr)) != want:
                raise ValueError(
                    f"params[{l - 1}].{name} (layer {l}) has shape {tuple(jnp.shape(arr))} but the MLP "
                    f"with sizes {mlp.sizes} expects {want} ({name}: "
                    f"{'(M_l, M_{l-1})' if name == 'W' else '(M_l,)'})"
                )
            dt = jnp.result_type(arr)
            if not jnp.issubdtype(dt, jnp.floating):
                raise ValueError(f"params[{l - 1}].{name} (layer {l}) has dtype {dt} but parameters must be floating")
            if dtype is None:
                dtype = dt
            elif dt != dtype:
                raise ValueError(
                    f"params[{l - 1}].{name} (layer {l}) has dtype {dt} but params[0].W has {dtype}; "
                    f"every parameter must have one dtype (cast with jax.tree.map(lambda p: "
                    f"p.astype('{dtype}'), params))"
                )
    return params


def params_dtype(params: Params):
    """The common floating dtype of checked params."""
    return jnp.result_type(params[0].W)


def check_dtype(what: str, value, dtype) -> None:
    """Refuse an array whose dtype would lose precision when cast to the params' ``dtype``.

    The rule is JAX's own type promotion: ``value`` converts when ``promote_types(its dtype,
    dtype)`` is ``dtype`` (integers and booleans go to any float; a float only to one at least as
    wide). float64 data for float32 params (with float64 enabled) is refused, never cast down.
    Integers pass this dtype check; whether their *values* convert exactly is
    :func:`to_params_dtype`'s check.
    """
    got = jnp.result_type(value)
    with jax.numpy_dtype_promotion("standard"):
        lossless = jnp.promote_types(got, dtype) == jnp.dtype(dtype)
    if not lossless:
        want = jnp.dtype(dtype).name
        raise ValueError(
            f"{what} has dtype {got} but the params are {want}; casting {what} to {want} would lose "
            f"precision: pass {what}.astype('{want}') to accept that, or params in {got} "
            f"(jax.tree.map(lambda p: p.astype('{got}'), params))"
        )


def as_array(what: str, value, dtype):
    """A Python list or tuple of numbers as a NumPy array; anything else unchanged.

    Integers and booleans keep their kind (labels stay labels); Python floats, which JAX types
    weakly (``params * 0.1`` stays in the params' dtype), take the params' ``dtype``.

    Raises:
      ValueError: for a ragged list (rows of different lengths) or entries that are not real
        numbers.

    Example:
      >>> import jax.numpy as jnp
      >>> from fnnjax._model import as_array
      >>> as_array("y", [0, 2, 1], jnp.float32).tolist(), as_array("y", [0.5, 1.0], jnp.float32).dtype
      ([0, 2, 1], dtype('float32'))
    """
    if not isinstance(value, (list, tuple)):
        return value
    kind = type(value).__name__
    try:
        host = np.asarray(value)
    except ValueError:
        raise ValueError(
            f"{what} is a {kind} whose rows have different lengths; pass a rectangular array "
            f"(e.g. np.array({what}) of one shape)"
        ) from None
    if host.dtype.kind not in "biuf":
        raise TypeError(
            f"{what} is a {kind} whose entries are not all real numbers (NumPy reads it as dtype "
            f"{host.dtype}); pass an array of numbers"
        )
    if host.dtype.kind == "f":
        host = host.astype(np.dtype(dtype))
    return host


def _exact_integer_limit(dtype) -> int:
    """2^(p): every integer of magnitude <= 2^p is exact in a float with p significand bits."""
    return 2 ** (int(jnp.finfo(dtype).nmant) + 1)


def _integers_always_exact(int_dtype, dtype) -> bool:
    if jnp.issubdtype(int_dtype, jnp.bool_):
        return True
    info, limit = jnp.iinfo(int_dtype), _exact_integer_limit(dtype)
    return -limit <= int(info.min) and int(info.max) <= limit


def to_params_dtype(what: str, value, dtype) -> Array:
    """``value`` (an array, a Python list or a number) in the params' ``dtype``, exactly or not at all.

    A float converts when its dtype is no wider (:func:`check_dtype`); an integer converts when
    its VALUE is exact in ``dtype``: every integer up to 2^11 = 2048 in float16, 2^8 = 256 in
    bfloat16, 2^24 = 16777216 in float32, 2^53 in float64 (larger ones only when they fall on the
    dtype's grid: 16777217 does not fit float32, 70000 overflows float16). A concrete integer that
    does not fit raises; a traced one cannot be checked, so it becomes NaN (visible in every
    result), never a rounded number. Integer dtypes whose every value fits (uint8 in any float)
    are converted without a check.

    Raises:
      ValueError: for a dtype that would lose precision, or a concrete integer that ``dtype``
        cannot hold exactly (naming the first such value and the limit).

    Example:
      >>> import jax.numpy as jnp
      >>> from fnnjax._model import to_params_dtype
      >>> to_params_dtype("x", jnp.array([16777216]), jnp.float32).tolist()
      [16777216.0]
      >>> to_params_dtype("x", jnp.array([16777217]), jnp.float32)
      Traceback (most recent call last):
      ...
      ValueError: x holds the integer 16777217, which float32 cannot hold exactly (it would become 16777216); ...
    """
    value = as_array(what, value, dtype)
    check_dtype(what, value, dtype)
    got = getattr(value, "dtype", None)
    got = jnp.result_type(value) if got is None else got
    if not jnp.issubdtype(got, jnp.integer) or _integers_always_exact(got, dtype):
        return jnp.asarray(value).astype(dtype)
    if not isinstance(value, jax.core.Tracer):  # on the host, in the value's own dtype
        host = np.asarray(value)
        with np.errstate(over="ignore", invalid="ignore"):
            converted = host.astype(np.dtype(dtype))
            exact = _exact(host, converted, np)
        if not exact.all():
            first = tuple(int(i[0]) for i in np.nonzero(~exact))
            v, c = host[first], converted[first]
            limit = _exact_integer_limit(dtype)
            became = "overflow to inf" if not np.isfinite(c) else f"become {int(c)}"
            name = jnp.dtype(dtype).name
            raise ValueError(
                f"{what} holds the integer {int(v)}, which {name} cannot hold exactly (it would {became}); "
                f"every integer up to 2^{limit.bit_length() - 1} = {limit} converts exactly: pass "
                f"{what}.astype('{name}') to accept the conversion, or params of a wider dtype"
            )
        return jnp.asarray(converted)
    converted = value.astype(dtype)
    return jnp.where(_exact(value, converted, jnp), converted, jnp.asarray(jnp.nan, dtype))


def _exact(ints, converted, xp):
    """Where ``converted`` (floats) equals ``ints`` exactly; ``xp`` is ``np`` or ``jnp``. The floats
    are cast back only where they lie inside the integer dtype's range (a cast from outside it is
    undefined: XLA saturates, NumPy wraps)."""
    info, big = xp.iinfo(ints.dtype), float(xp.finfo(converted.dtype).max)
    inside = xp.isfinite(converted)
    if float(info.max) + 1 <= big:  # 2^bits or 2^(bits-1): a power of two, exact in any float
        inside = inside & (converted < xp.asarray(float(info.max) + 1, converted.dtype))
    if -float(info.min) <= big:
        inside = inside & (converted >= xp.asarray(float(info.min), converted.dtype))
    back = xp.where(inside, converted, xp.zeros_like(converted)).astype(ints.dtype)
    return inside & (back == ints)


def check_x(mlp: MLP, x, dtype) -> tuple[Array, bool]:
    """Check the input's width and dtype, cast it to the params' dtype, add a batch axis if needed.

    The dtype rule (:func:`to_params_dtype`): x converts to the params' dtype only when nothing is
    lost: a wider float is refused, never cast down; an integer that the dtype cannot hold exactly
    is refused (concrete) or becomes NaN (traced); a Python list is read as an array.

    Returns:
      ``(x2d, single)`` where ``x2d`` is ``(N, M_0)`` and ``single`` says x was one sample.
    """
    x = as_array("x", x, dtype)
    shape = tuple(jnp.shape(x))
    m0 = mlp.sizes[0]
    if len(shape) not in (1, 2):
        raise ValueError(f"x has shape {shape} but the MLP expects (N, {m0}) for a batch or ({m0},) for one sample")
    if shape[-1] != m0:
        raise ValueError(
            f"x has width {shape[-1]} but the MLP expects {m0} inputs (sizes[0] = {m0}); "
            f"pass x of shape (N, {m0}) or ({m0},)"
        )
    xdt = jnp.result_type(x)
    if not (jnp.issubdtype(xdt, jnp.floating) or jnp.issubdtype(xdt, jnp.integer) or jnp.issubdtype(xdt, jnp.bool_)):
        raise TypeError(f"x has dtype {xdt}; expected a real (floating or integer) array")
    x = to_params_dtype("x", x, dtype)
    if len(shape) == 1:
        return x[None, :], True
    return x, False


# ----------------------------------------------------------------------------------------------
# The forward pass (F1)


def _layer_forward(mlp: MLP, layer: Layer, a: Array, name: str) -> tuple[Array, Array]:
    z = a @ layer.W.T + layer.b[None, :]  # rows: z = W a + b for every sample
    return z, activate(name, z, slope=mlp.leaky_slope)


def trace_batch(mlp: MLP, params: Params, x2d: Array, hidden_scale=None) -> Trace:
    """The forward pass on checked inputs ``x2d: (N, M_0)``, storing every z^(l) and a^(l).

    ``hidden_scale`` (optional): per-sample multipliers ``s^(l)``, ``(N, M_l)`` for the hidden
    layers l = 1..L-1, giving ``a^(l) = f_l(z^(l)) * s^(l)`` (inverted dropout, F26); the matching
    backward pass is ``fnnjax._backprop.backward(..., hidden_scale)``.
    """
    zs, acts = [], [x2d]
    for l, (layer, name) in enumerate(zip(params, mlp.activations)):
        z, a = _layer_forward(mlp, layer, acts[-1], name)
        if hidden_scale is not None and l < mlp.num_layers - 1:
            a = a * hidden_scale[l]
        zs.append(z)
        acts.append(a)
    return Trace(tuple(zs), tuple(acts))


def forward_trace(mlp: MLP, params: Params, x: ArrayLike) -> Trace:
    r"""The forward pass keeping every net input $z^{(l)}$ and activation $a^{(l)}$ (F1, F16 step 1).

    Args:
      mlp: the :class:`MLP`.
      params: a tuple of L :class:`Layer` s (``W: (M_l, M_{l-1})``, ``b: (M_l,)``).
      x: inputs ``(N, M_0)`` or one sample ``(M_0,)``; cast to the params' dtype.

    Returns:
      A :class:`Trace` with ``z`` $= (z^{(1)}, \dots, z^{(L)})$ and ``a`` $= (a^{(0)} = x, \dots, a^{(L)})$,
      batch shapes ``(N, M_l)`` (``(M_l,)`` for one sample).

    Raises:
      ValueError/TypeError: when params do not match the MLP or x has the wrong width.

    Example:
      >>> import jax, fnnjax
      >>> mlp = fnnjax.MLP((2, 3, 1))
      >>> t = fnnjax.forward_trace(mlp, fnnjax.init_params(jax.random.key(0), mlp), jax.numpy.ones((5, 2)))
      >>> [z.shape for z in t.z], len(t.a)
      ([(5, 3), (5, 1)], 3)
    """
    params = check_params(mlp, params)
    x2d, single = check_x(mlp, x, params_dtype(params))
    trace = trace_batch(mlp, params, x2d)
    if single:
        trace = Trace(tuple(z[0] for z in trace.z), tuple(a[0] for a in trace.a))
    return trace


def forward(mlp: MLP, params: Params, x: ArrayLike) -> Array:
    r"""The network output $a^{(L)} = \varphi(x; W, b)$ (F1).

    Layer by layer $a^{(l)} = f_l\big(W^{(l)} a^{(l-1)} + b^{(l)}\big)$ from $a^{(0)} = x$.

    Args:
      mlp: the :class:`MLP`.
      params: a tuple of L :class:`Layer` s (``W: (M_l, M_{l-1})``, ``b: (M_l,)``).
      x: inputs ``(N, M_0)`` or one sample ``(M_0,)``; cast to the params' dtype.

    Returns:
      $a^{(L)}$: ``(N, M_L)``, or ``(M_L,)`` for one sample.

    Raises:
      ValueError/TypeError: when params do not match the MLP or x has the wrong width.

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> mlp = fnnjax.MLP((3, 2), output="softmax")
      >>> fnnjax.forward(mlp, fnnjax.init_params(jax.random.key(0), mlp), jnp.ones(3)).shape
      (2,)
    """
    return forward_trace(mlp, params, x).a[-1]
