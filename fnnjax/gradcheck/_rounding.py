"""How far rounding can move f and jax.grad f: the first-order rounding error of the computation (F19).

A gradient element is a sum of products, and the rounding error of a sum scales with the sizes of
its *terms*, not of its result: at an optimum the terms of ``dR/dtheta_i`` are as large as anywhere
else, but they cancel. So the tolerance of an element is derived from the computation that produced
it. To first order in the unit roundoff u, every operation k of the program (the jaxpr of
``jax.value_and_grad(F)``) adds an error ``delta_k`` to its result, and the computed gradient is

``A_i computed = A_i + sum_k (dA_i / dx_k) delta_k``,

with ``dA_i / dx_k`` the derivative of the rest of the program with respect to that result, signs
and all (the errors of a shift that softmax removes cancel here, as they do in the computer). Each
``delta_k`` is at most ``u b_k`` for a known magnitude ``b_k``:

- ``a b``, ``a / b``, ``sqrt``: ``|result|``; ``a + b``, ``a - b``: ``|a| + |b|`` (so that a chain of
  additions is covered in any order); exp, log, tanh, logistic and every other library function:
  ``LIBRARY_ULPS |result|``; max, min, select, copies, reshapes, slices, transposes: exact;
- a sum of n terms (``reduce_sum``, the contraction of ``dot_general``): ``sqrt(n - 1) sum |x_j|``
  (plus ``sum |a_j b_j|`` for the products): in any order the error of a sum is
  ``sum_j eps_j s_j`` over its ``n - 1`` partial sums ``|s_j| <= sum |x_j|``, whose size grows like
  ``sqrt(n - 1)`` when the ``eps_j`` are independent (Higham and Mary 2019), where the worst case
  ``(n - 1) u`` exceeds 1 in float32 beyond ``1.7e7`` terms although real sums lose far less.

The sum over k is not bounded term by term (that would add the two halves of a cancelling shift);
its size is *measured*: :func:`rounding_scales` draws ``SAMPLES`` independent random signs
``z_k = +-1`` per operation and element, and carries the injected errors ``u b_k z_k`` forward
through the rest of the program to first order (a tangent per sample beside every value, each
operation's own derivative applied to it: forward-mode differentiation with respect to the errors).
The root mean square over the samples estimates ``sigma_i = sqrt(sum_k (dA_i/dx_k)^2 u^2 b_k^2)``,
the standard deviation of the rounding error of ``A_i`` under independent errors of the sizes
above; with 16 samples the estimate is below ``0.3 sigma`` with probability ``1e-6`` (chi-squared
with 16 degrees of freedom). The same is measured for f. Loops (``scan``, ``while``) and branches
are interpreted body by body with fresh signs per iteration; the bodies of jit, custom_jvp/vjp and
checkpoint calls operation by operation; any other primitive is differentiated by ``jax.jvp`` and
charged a library function's rounding on its result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore

__all__ = ["LIBRARY_ULPS", "SAMPLES", "RoundingScales", "rounding_scales", "sum_weight"]

SAMPLES = 16
"""Random sign vectors the rounding error is measured with (one tangent pass each)."""

LIBRARY_ULPS = 4.0
"""The error of an elementwise library function (exp, log, tanh, ...) in units of u: 2 ulps."""


class RoundingScales(NamedTuple):
    r"""The rounding error of $f(\theta)$ and of its gradient, in units of the unit roundoff $u$ of $\theta$.

    Attributes:
      f_error: $\sigma(f) / u$: the measured standard deviation of the first-order rounding error
        of $f$ (see :mod:`fnnjax.gradcheck._rounding`).
      grad_error: $\sigma(A_i) / u$, ``(P,)``, likewise for each element of jax.grad's gradient $A$.
    """

    f_error: Any
    grad_error: Any


def sum_weight(n: int) -> float:
    r"""$\sqrt{n - 1}$: the size of the rounding of a sum of $n$ terms, in units of $u$ and of the sum of
    their magnitudes, in any order (the $n - 1$ partial sums each rounded once, independently).

    Args:
      n: the number of terms ($n \le 1$: nothing is added, 0).

    Returns:
      $\sqrt{n - 1}$.

    Example:
      >>> from fnnjax.gradcheck import sum_weight
      >>> sum_weight(1), sum_weight(5), sum_weight(10_001)
      (0.0, 2.0, 100.0)
    """
    return math.sqrt(n - 1) if n > 1 else 0.0


# ----------------------------------------------------------------------------------------------
# The magnitudes b_k of each operation's rounding


_EXACT = {
    "neg",
    "abs",
    "max",
    "min",
    "select_n",
    "clamp",
    "sign",
    "floor",
    "ceil",
    "round",
    "nearbyint",
    "copy",
    "copy_p",
    "stop_gradient",
    "optimization_barrier",
    "broadcast_in_dim",
    "reshape",
    "transpose",
    "squeeze",
    "expand_dims",
    "rev",
    "slice",
    "concatenate",
    "pad",
    "split",
    "dynamic_slice",
    "dynamic_update_slice",
    "gather",
    "scatter",
    "reduce_max",
    "reduce_min",
    "argmax",
    "argmin",
    "cummax",
    "cummin",
    "sort",
    "top_k",
    "device_put",
    "sharding_constraint",
    "mesh_cast",
    "reshard",
    "real",
    "imag",
    "conj",
}
_ROUNDED_ONCE = {"mul", "div", "sqrt"}  # correctly rounded (IEEE)


def _floating(x) -> bool:
    return jnp.issubdtype(x.dtype if hasattr(x, "dtype") else jnp.result_type(x), jnp.floating)


def _u(dtype) -> float:
    """The unit roundoff of a floating dtype."""
    return float(jnp.finfo(dtype).eps) / 2


def _terms(prim, params, ins) -> int:
    """How many terms a summing primitive adds per result (1 for the others); ``ins`` are the
    operands or their abstract values."""
    name = prim.name
    if name == "reduce_sum":
        return math.prod(ins[0].shape[a] for a in params["axes"])
    if name == "cumsum":
        return ins[0].shape[params["axis"]]
    if name == "dot_general":
        (ca, _), _ = params["dimension_numbers"]
        return math.prod(ins[0].shape[i] for i in ca)
    if name == "conv_general_dilated":
        rhs = ins[1].shape
        return math.prod(rhs) // rhs[params["dimension_numbers"].rhs_spec[0]]
    if name in ("scatter-add", "scatter_add"):
        return math.prod(ins[2].shape) + 1
    return 1


def _rounds(prim, params, ins, out) -> bool:
    """Whether the primitive's single floating result is rounded (from dtypes and shapes alone)."""
    name = prim.name
    if prim.multiple_results or name in _EXACT or not _floating(out):
        return False
    if name in ("reduce_sum", "cumsum"):
        return _terms(prim, params, ins) > 1
    if name in ("convert_element_type", "reduce_precision"):
        return bool(_floating(ins[0]) and jnp.finfo(out.dtype).eps > jnp.finfo(ins[0].dtype).eps)
    return True


def _magnitude(prim, params, vals, out):
    """``u b``: the largest rounding error of ``out`` (call only where :func:`_rounds`)."""
    name = prim.name
    u, dt = _u(out.dtype), out.dtype
    if name in ("add", "sub", "add_any"):
        a, b = (lax.abs(jnp.asarray(v)) for v in vals)
        return u * (_broadcast(a, out.shape) + _broadcast(b, out.shape))
    if name in ("reduce_sum", "cumsum"):
        return (u * sum_weight(_terms(prim, params, vals))) * prim.bind(lax.abs(vals[0]), **params)
    if name in ("dot_general", "conv_general_dilated"):
        p = dict(params, preferred_element_type=dt)
        a, b = (lax.convert_element_type(lax.abs(v), dt) for v in vals)
        return (u * (sum_weight(_terms(prim, params, vals)) + 1)) * prim.bind(a, b, **p)
    if name in ("scatter-add", "scatter_add"):
        base = prim.bind(lax.abs(vals[0]), vals[1], lax.abs(vals[2]), **params)
        return (u * (sum_weight(_terms(prim, params, vals)) + 1)) * base
    if name == "integer_pow":
        return (u * max(1, abs(params["y"]))) * lax.abs(out)
    if name in _ROUNDED_ONCE or name in ("convert_element_type", "reduce_precision"):
        return u * lax.abs(out)
    return (u * LIBRARY_ULPS) * lax.abs(out)  # exp, log, tanh, logistic, pow, erf, ... and the rest


def _broadcast(x, shape):
    return x if x.shape == tuple(shape) else lax.broadcast_in_dim(x, tuple(shape), ())


# ----------------------------------------------------------------------------------------------
# Random signs: one pool for the straight-line program, drawn from an integer hash; inside loops and
# branches, hashed per iteration


def _hashed_signs(samples: int, n: int, op: int, salt, dtype):
    """``(samples, n)`` signs +-1 from an integer hash of (salt, op, sample, element)."""
    h = lax.iota(jnp.uint32, samples * n) * np.uint32(0x9E3779B1) + (salt ^ np.uint32((op * 0x85EBCA77) % 2**32))
    h = (h ^ (h >> 15)) * np.uint32(0x2C1B3C6D)
    h = (h ^ (h >> 12)) * np.uint32(0x297A2D39)
    h = h ^ (h >> 15)
    return lax.convert_element_type(h >> 31, dtype).reshape(samples, n) * 2 - 1


def _pool_size(jaxpr) -> int:
    """How many signs the straight-line part of a jaxpr draws (per sample): one per rounded result."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name in ("cond", "scan", "while"):
            continue
        sub = _sub_jaxpr(eqn.primitive, eqn.params)
        if sub is not None:
            total += _pool_size(sub[0])
        elif len(eqn.outvars) == 1:
            ins = [v.aval for v in eqn.invars]
            out = eqn.outvars[0].aval
            if _rounds(eqn.primitive, eqn.params, ins, out):
                total += math.prod(out.shape)
    return total


class _Ctx:
    """Where the random signs come from: ``pool`` (``(samples, total)``, sliced in order) in the
    straight-line program, a hash of ``salt`` (an iteration number) inside loops and branches."""

    def __init__(self, samples: int, pool=None, salt=None):
        self.samples, self.pool, self.salt = samples, pool, salt
        self.offset = 0  # the pool's next sign (or, hashing, the operations drawn so far)
        self.loops = 0  # the loop bodies and branches met so far

    def signs(self, shape, dtype):
        """``(samples, *shape)`` independent signs +-1."""
        n = math.prod(shape)
        if self.pool is None:
            self.offset += 1
            block = _hashed_signs(self.samples, n, self.offset, self.salt, dtype)
        else:
            block = lax.convert_element_type(lax.slice_in_dim(self.pool, self.offset, self.offset + n, axis=1), dtype)
            self.offset += n
        return block.reshape((self.samples,) + tuple(shape))

    def salted(self, i) -> _Ctx:
        """A context hashing from a salt made of this one's and ``i`` (a loop's or a branch's)."""
        base = self.salt if self.salt is not None else jnp.uint32(0x5BD1E995)
        self.loops += 1
        salt = base * np.uint32(0x27D4EB2F) + lax.convert_element_type(i, jnp.uint32) + np.uint32(7919 * self.loops)
        return _Ctx(self.samples, salt=salt)


# ----------------------------------------------------------------------------------------------
# Tangents: (samples, *shape) arrays, the first-order effect of the injected rounding errors on a
# value (None: no rounding error reaches it)


def _float0_zeros(v):
    return np.zeros(jnp.shape(v), jax.dtypes.float0)


def _lift(x):
    """x with a leading axis of 1 (to multiply a batch of tangents), a scalar as it is."""
    x = jnp.asarray(x)
    return x if x.ndim == 0 else lax.expand_dims(x, (0,))


_DERIVATIVE: dict[str, Callable] = {  # phi'(x) from x and y = phi(x)
    "exp": lambda x, y: y,
    "log": lambda x, y: 1 / x,
    "log1p": lambda x, y: 1 / (1 + x),
    "expm1": lambda x, y: y + 1,
    "tanh": lambda x, y: 1 - y * y,
    "logistic": lambda x, y: y * (1 - y),
    "sqrt": lambda x, y: 0.5 / y,
    "abs": lambda x, y: lax.sign(x),
    "neg": lambda x, y: -jnp.ones_like(x),
    "sin": lambda x, y: lax.cos(x),
    "cos": lambda x, y: -lax.sin(x),
}

_BATCHED: dict[str, Callable] = {  # structural primitives on a batch of tangents (a leading axis)
    "reduce_sum": lambda t, p: lax.reduce_sum_p.bind(t, **dict(p, axes=tuple(a + 1 for a in p["axes"]))),
    "broadcast_in_dim": lambda t, p: lax.broadcast_in_dim(
        t, (t.shape[0],) + tuple(p["shape"]), (0,) + tuple(d + 1 for d in p["broadcast_dimensions"])
    ),
    "reshape": lambda t, p: lax.reshape(t, (t.shape[0],) + tuple(p["new_sizes"])),
    "transpose": lambda t, p: lax.transpose(t, (0,) + tuple(d + 1 for d in p["permutation"])),
    "squeeze": lambda t, p: lax.squeeze(t, tuple(d + 1 for d in p["dimensions"])),
    "convert_element_type": lambda t, p: lax.convert_element_type(t, p["new_dtype"]),
    "reduce_precision": lambda t, p: t,
    "copy": lambda t, p: t,
    "copy_p": lambda t, p: t,
    "stop_gradient": lambda t, p: t,  # rounding errors flow through values, whatever their use
}


def _propagate(prim, params, vals, tangents):
    """The tangents of the outputs (a list), vectorised over the samples."""
    name = prim.name
    if name in _BATCHED and tangents[0] is not None and len(vals) == 1:
        if name != "reshape" or params.get("dimensions") is None:
            return [_BATCHED[name](tangents[0], params)]
    if name in ("add", "sub", "add_any", "mul", "div"):
        (a, b), (ta, tb) = vals, tangents
        shape = jnp.broadcast_shapes(jnp.shape(a), jnp.shape(b))
        if name in ("add", "add_any", "sub"):
            da, db = None, (-1.0 if name == "sub" else None)
        elif name == "mul":
            da, db = _lift(b), _lift(a)
        else:
            da, db = 1 / _lift(b), -(_lift(a) / _lift(b)) / _lift(b)
        out = None
        for t, d in ((ta, da), (tb, db)):
            if t is not None:
                term = t if d is None else t * d
                term = _broadcast_batch(term, shape)
                out = term if out is None else out + term
        return [out]
    if name == "dot_general":
        (a, b), (ta, tb) = vals, tangents
        p = {k: v for k, v in params.items() if k != "out_sharding"}
        out = None if ta is None else jax.vmap(lambda t: lax.dot_general(t, b, **p))(ta)
        if tb is not None:
            t2 = jax.vmap(lambda t: lax.dot_general(a, t, **p))(tb)
            out = t2 if out is None else out + t2
        return [out]
    if name in _DERIVATIVE or name == "integer_pow":
        (x,), (t,) = vals, tangents
        if name == "integer_pow":
            k = params["y"]
            d = k * lax.integer_pow(x, k - 1) if k != 1 else jnp.ones_like(x)
        else:
            d = _DERIVATIVE[name](x, prim.bind(x, **params))
        return [_lift(d) * t]
    live = [t is not None for t in tangents]

    def jvp(*ts):
        it = iter(ts)
        full = [
            next(it) if alive else (jnp.zeros_like(v) if _floating(v) else _float0_zeros(v))
            for v, alive in zip(vals, live)
        ]
        return jax.jvp(lambda *a: _bind(prim, params, a), list(vals), full)[1]

    out = jax.vmap(jvp)(*[t for t in tangents if t is not None])
    return list(out) if prim.multiple_results else [out]


def _broadcast_batch(t, shape):
    """A batch of tangents ``(samples, *s)`` broadcast to ``(samples, *shape)`` (s is () or shape)."""
    target = (t.shape[0],) + tuple(shape)
    if t.shape == target:
        return t
    return lax.broadcast_in_dim(t, target, (0,) + tuple(range(1 + len(shape) - (t.ndim - 1), 1 + len(shape))))


# ----------------------------------------------------------------------------------------------
# The interpreter


_CALLS = {
    "jit",
    "pjit",
    "closed_call",
    "core_call",
    "remat",
    "remat2",
    "checkpoint",
    "custom_jvp_call",
    "custom_vjp_call",
    "custom_vjp_call_jaxpr",
}
"""Primitives whose body runs as it is on the operands: interpreted inside, operation by operation."""


def _bind(prim, params, vals):
    """``prim`` applied to ``vals`` as ``jax.core.eval_jaxpr`` applies it (sub-jaxprs as functions)."""
    return prim.bind(*vals, **prim.get_bind_params(params))


def _sub_jaxpr(prim, params) -> tuple[Any, list] | None:
    """The (jaxpr, consts) of a call-like primitive's body (jit, custom_jvp/vjp calls, remat), or None
    (other primitives with bodies, such as shard_map, are applied whole: their rounding inside is
    charged as a library function's, on their results)."""
    if prim.name not in _CALLS:
        return None
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        sub = params.get(key)
        if isinstance(sub, jcore.ClosedJaxpr):
            return sub.jaxpr, list(sub.consts)
        if isinstance(sub, jcore.Jaxpr):
            return sub, []
    return None


def _eval(ctx: _Ctx, jaxpr, consts, args, tangents):
    env: dict = {}

    def read(v):
        return (v.val, None) if isinstance(v, jcore.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = (c, None)
    for v, a, t in zip(jaxpr.invars, args, tangents):
        env[v] = (a, t)
    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        outs = _apply(ctx, eqn, [i[0] for i in ins], [i[1] for i in ins])
        for v, o in zip(eqn.outvars, outs):
            if not isinstance(v, jcore.DropVar):
                env[v] = o
    res = [read(v) for v in jaxpr.outvars]
    return [r[0] for r in res], [r[1] for r in res]


def _apply(ctx: _Ctx, eqn, vals, tangents):
    """``[(value, tangents)]`` of an equation's outputs."""
    prim, params = eqn.primitive, eqn.params
    name = prim.name
    if name in ("cond", "scan", "while"):
        outs, touts = {"cond": _cond, "scan": _scan, "while": _while}[name](ctx, params, vals, tangents)
        return list(zip(outs, touts))
    sub = _sub_jaxpr(prim, params)
    if sub is not None:
        jaxpr, consts = sub
        k = len(jaxpr.invars)
        outs, touts = _eval(ctx, jaxpr, consts, vals[len(vals) - k :], tangents[len(vals) - k :])
        return list(zip(outs, touts))
    outs = _bind(prim, params, vals)
    outs = list(outs) if prim.multiple_results else [outs]
    if not any(_floating(o) for o in outs):
        return [(o, None) for o in outs]
    touts: list[Any] = (
        [None] * len(outs) if all(t is None for t in tangents) else _propagate(prim, params, vals, tangents)
    )
    if len(outs) == 1 and _rounds(prim, params, [jax.typeof(v) for v in vals], outs[0]):
        ub = _magnitude(prim, params, vals, outs[0])
        noise = ctx.signs(outs[0].shape, outs[0].dtype) * _lift(ub)
        touts[0] = noise if touts[0] is None else touts[0] + noise
    return [(o, t if _floating(o) else None) for o, t in zip(outs, touts)]


def _salt(ctx: _Ctx):
    """A fresh salt for a loop body or branch met in ``ctx``."""
    salt = ctx.salted(0).salt
    assert salt is not None
    return salt


def _filled(ctx: _Ctx, vals, tangents):
    """Tangents with zeros for exact floating values (a loop's carry keeps one structure)."""
    return [
        t if t is not None or not _floating(v) else jnp.zeros((ctx.samples,) + jnp.shape(v), jnp.result_type(v))
        for v, t in zip(vals, tangents)
    ]


def _cond(ctx: _Ctx, params, vals, tangents):
    ops, tops = vals[1:], _filled(ctx, vals[1:], tangents[1:])
    salt = _salt(ctx)

    def branch(b):
        def run(o, t):
            outs, touts = _eval(_Ctx(ctx.samples, salt=salt), b.jaxpr, b.consts, list(o), list(t))
            return tuple(outs), tuple(_filled(ctx, outs, touts))

        return run

    outs, touts = lax.switch(vals[0], [branch(b) for b in params["branches"]], tuple(ops), tuple(tops))
    return list(outs), list(touts)


def _scan(ctx: _Ctx, params, vals, tangents):
    body = params["jaxpr"]
    nc, nk = params["num_consts"], params["num_carry"]
    tangents = _filled(ctx, vals, tangents)
    consts, tconsts = vals[:nc], tangents[:nc]
    salt = _salt(ctx)

    def step(c, x):
        i, carry, tcarry = c
        xs, txs = x
        inner = _Ctx(ctx.samples, salt=salt * np.uint32(0x165667B1) + i)
        ins, tins = list(consts) + list(carry) + list(xs), list(tconsts) + list(tcarry) + list(txs)
        outs, touts = _eval(inner, body.jaxpr, body.consts, ins, tins)
        touts = _filled(ctx, outs, touts)
        return (i + np.uint32(1), tuple(outs[:nk]), tuple(touts[:nk])), (tuple(outs[nk:]), tuple(touts[nk:]))

    # scanned with the iteration axis leading (the samples' axis second), sliced to (samples, ...)
    xs = (tuple(vals[nc + nk :]), tuple(None if t is None else jnp.moveaxis(t, 0, 1) for t in tangents[nc + nk :]))
    (_, carry, tcarry), (ys, tys) = lax.scan(
        step,
        (jnp.uint32(0), tuple(vals[nc : nc + nk]), tuple(tangents[nc : nc + nk])),
        xs,
        length=params["length"],
        reverse=params["reverse"],
    )
    return list(carry) + list(ys), list(tcarry) + [jnp.moveaxis(t, 1, 0) if t is not None else None for t in tys]


def _while(ctx: _Ctx, params, vals, tangents):
    cj, bj = params["cond_jaxpr"], params["body_jaxpr"]
    cn, bn = params["cond_nconsts"], params["body_nconsts"]
    tangents = _filled(ctx, vals, tangents)
    cconsts, bconsts, tb = vals[:cn], vals[cn : cn + bn], tangents[cn : cn + bn]
    salt = _salt(ctx)

    def body(state):
        i, c, tc = state
        inner = _Ctx(ctx.samples, salt=salt * np.uint32(0x165667B1) + i)
        outs, touts = _eval(inner, bj.jaxpr, bj.consts, list(bconsts) + list(c), list(tb) + list(tc))
        return i + np.uint32(1), tuple(outs), tuple(_filled(ctx, outs, touts))

    _, out, tout = lax.while_loop(
        lambda state: jcore.jaxpr_as_fun(cj)(*cconsts, *state[1])[0],
        body,
        (jnp.uint32(0), tuple(vals[cn + bn :]), tuple(tangents[cn + bn :])),
    )
    return list(out), list(tout)


def rounding_scales(
    F: Callable[[jax.Array], jax.Array], theta, samples: int = SAMPLES
) -> tuple[Any, Any, RoundingScales]:
    r"""$F(\theta)$, ``jax.grad(F)`` $(\theta)$ and their :class:`RoundingScales` (traceable: call it under jit).

    Evaluates the jaxpr of ``jax.value_and_grad(F)`` once, and beside it ``samples`` tangents: the
    first-order effect on every value of random-sign rounding errors of the sizes of
    :mod:`fnnjax.gradcheck._rounding` injected at every operation upstream. Costs about
    ``samples`` gradients' worth of vectorised work.

    Args:
      F: a scalar function of the flat vector $\theta$ (see :func:`flat_function`).
      theta: the point $\theta$, ``(P,)``.
      samples: how many random sign vectors to measure with.

    Returns:
      ``(f0, grad, RoundingScales)``.

    Example:
      >>> import jax.numpy as jnp, numpy as np
      >>> from fnnjax.gradcheck import rounding_scales
      >>> x = jnp.array([3.0, -1.0, 2.0]); y = jnp.float32(1.0)
      >>> # f = (x . t - y)^2 / 2 at an optimum: the gradient (x . t - y) x is 0, its rounding is not
      >>> f0, g, s = rounding_scales(lambda t: (x @ t - y) ** 2 / 2, jnp.array([1.0, 2.0, 0.0]))
      >>> float(f0), float(np.max(np.abs(g)))
      (0.0, 0.0)
      >>> bool(np.all(np.asarray(s.grad_error) > 0))  # in units of u: about |x_i| (|x| . |t| + |y|)
      True
    """
    return jax.jit(lambda t: _rounding_scales(F, t, samples))(theta)  # compiled when called outside a trace


def _rounding_scales(F, theta, samples: int):
    closed = jax.make_jaxpr(jax.value_and_grad(F))(theta)
    total = _pool_size(closed.jaxpr)
    pool = _hashed_signs(samples, total, 0, jnp.uint32(0x5BD1E995), jnp.int8) if total else None
    ctx = _Ctx(samples, pool=pool, salt=jnp.uint32(0))
    (f0, grad), (ef, eg) = _eval(ctx, closed.jaxpr, list(closed.consts), [theta], [None])
    u = float(jnp.finfo(theta.dtype).eps) / 2
    wide = jnp.dtype(jnp.float32) if jnp.finfo(theta.dtype).bits < 32 else theta.dtype

    def rms(t, shape):
        if t is None:
            return jnp.zeros(shape, wide)
        t = t.astype(wide) / u
        return jnp.sqrt(jnp.mean(t * t, axis=0))

    return f0, grad, RoundingScales(rms(ef, ()), rms(eg, jnp.shape(grad)))
