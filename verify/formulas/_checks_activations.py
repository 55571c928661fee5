"""Checks of the activation functions, their derivatives and vanishing gradients: F17-F18."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import fnnjax
from fnnjax import MLP, Layer

from ._evidence import NUMPY_DERIVATIVES, REFERENCE_ACTIVATIONS, compiled, fit_slope, seeds_for
from ._registry import Outcome, check

__all__ = ["derivative_bounds", "derivatives", "identities", "vanishing_gradients"]

ELEMENTWISE = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "step")
SLOPE = 0.1


def _grid(quick: bool) -> np.ndarray:
    """A dense grid on [-40, 40], points near 0 (down to 1e-300), and far saturated tails; z = 0
    itself is left out (relu, leaky_relu and step have a kink there)."""
    dense = np.linspace(-40.0, 40.0, 2001 if quick else 16001)
    tiny = np.logspace(-300, 0, 31)
    tails = np.asarray([50.0, 100.0, 300.0, 700.0])
    z = np.concatenate([dense, tiny, -tiny, tails, -tails])
    return np.unique(z[z != 0])


def _all_derivatives(derivative_fn, z):
    return {name: derivative_fn(name, z, slope=SLOPE) for name in ELEMENTWISE}


def _all_autodiff(z):
    return {
        name: jax.vmap(jax.grad(lambda v, name=name: REFERENCE_ACTIVATIONS[name](v, SLOPE)))(z) for name in ELEMENTWISE
    }


_jit_all_derivatives = compiled(_all_derivatives, 0)
_jit_all_autodiff = compiled(_all_autodiff)


def _errors(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(max |got - ref| / max |ref|, max relative error where |ref| >= 1e-8 max |ref|)."""
    scale = float(np.max(np.abs(ref)))
    if scale == 0.0:
        worst = float(np.max(np.abs(got)))
        return worst, worst
    absolute = float(np.max(np.abs(got - ref))) / scale
    mask = np.abs(ref) >= 1e-8 * scale
    relative = float(np.max(np.abs(got[mask] - ref[mask]) / np.abs(ref[mask])))
    return absolute, relative


@check(
    "F17-derivatives",
    claim="sigmoid' = s(1-s), tanh' = 1 - tanh^2, relu' = 1[z>0], softplus' = sigmoid, "
    "leaky' = 1 or slope, identity' = 1, step' = 0 (a.e.)",
    method="fnnjax.activation_derivative on a dense grid of [-40, 40], near 0 (to 1e-300) and tails to "
    "+-700 vs jax.grad of the jax.nn functions and vs stable numpy closed forms",
)
def derivatives(*, seed: int = 0, quick: bool = False, activation_derivative=fnnjax.activation_derivative) -> Outcome:
    """F17 for every elementwise activation.

    Args:
      activation_derivative: the implementation under test, ``(name, z, slope=) -> f'(z)``.
    """
    z = _grid(quick)
    got = _jit_all_derivatives(activation_derivative, jnp.asarray(z))
    auto = _jit_all_autodiff(jnp.asarray(z))
    measured = {}
    ok = True
    for name in ELEMENTWISE:
        g = np.asarray(got[name])
        errs = [_errors(g, np.asarray(auto[name])), _errors(g, NUMPY_DERIVATIVES[name](z, SLOPE))]
        absolute, relative = max(e[0] for e in errs), max(e[1] for e in errs)
        measured[name] = f"abs {absolute:.1e}, rel {relative:.1e}"
        ok = ok and absolute <= 1e-12 and relative <= 1e-6
    measured["grid points"] = int(z.size)
    return Outcome(
        measured, "abs (scaled by max|f'|) <= 1e-12; rel <= 1e-6 where f' >= 1e-8 max|f'|; vs both references", ok
    )


def _identities(activate_fn, z, a, b, h):
    f = {
        name: (lambda v, name=name: activate_fn(name, v, slope=SLOPE))
        for name in ("tanh", "sigmoid", "softplus", "step")
    }
    tanh_gap = f["tanh"](z) - (2 * f["sigmoid"](2 * z) - 1)
    # Simpson's rule for int_a^b sigmoid on 2000 panels, per interval
    t = jnp.linspace(0.0, 1.0, 2001)
    grid = a[:, None] + (b - a)[:, None] * t[None, :]
    w = jnp.where((jnp.arange(2001) % 2) == 1, 4.0, 2.0).at[0].set(1.0).at[-1].set(1.0)
    integral = jnp.sum(f["sigmoid"](grid) * w[None, :], axis=1) * (b - a) / (3 * 2000)
    antiderivative = f["softplus"](b) - f["softplus"](a)
    step_fd = (f["step"](z + h) - f["step"](z - h)) / (2 * h)
    step_at_0 = (f["step"](h) - f["step"](-h)) / (2 * h)
    return tanh_gap, integral, antiderivative, step_fd, step_at_0


_jit_identities = compiled(_identities, 0)


@check(
    "F17-identities",
    claim="tanh(z) = 2 sigma(2z) - 1; softplus is the antiderivative of sigmoid; the step "
    "unit has zero derivative almost everywhere (none at 0)",
    method="fnnjax.activate: tanh vs 2 sigma(2z) - 1 on a grid; Simpson's rule for int_a^b sigma vs "
    "softplus(b) - softplus(a); central differences of step away from 0 and at 0",
)
def identities(*, seed: int = 0, quick: bool = False, activate=fnnjax.activate) -> Outcome:
    """F17's identities between activations.

    Args:
      activate: the implementation under test, ``(name, z, slope=) -> f(z)``.
    """
    rng = np.random.default_rng(seed)
    z = np.linspace(-20.0, 20.0, 4001)
    z = z[np.abs(z) > 1e-3]
    a = rng.uniform(-8, 0, 8)
    b = a + rng.uniform(0.5, 8, 8)
    h = 1e-4
    tanh_gap, integral, anti, step_fd, step_at_0 = (
        np.asarray(v) for v in _jit_identities(activate, jnp.asarray(z), jnp.asarray(a), jnp.asarray(b), h)
    )
    tanh_err = float(np.max(np.abs(tanh_gap)))
    integral_err = float(np.max(np.abs(integral - anti) / np.abs(anti)))
    step_away = float(np.max(np.abs(step_fd)))
    passed = tanh_err <= 1e-12 and integral_err <= 1e-10 and step_away == 0.0 and step_at_0 == 1 / (2 * h)
    return Outcome(
        {
            "max |tanh(z) - (2 sigma(2z) - 1)|": tanh_err,
            "max rel error of int sigma vs softplus difference": integral_err,
            "max |step'| by central differences, |z| > 1e-3": step_away,
            "step difference quotient at 0 (h = 1e-4)": float(step_at_0),
        },
        "<= 1e-12; <= 1e-10 (Simpson); 0 away from 0; 1/(2h) at 0 (no derivative)",
        passed,
    )


@check(
    "F18-derivative-bounds",
    claim="sigma' <= 1/4 everywhere (equal at 0), tanh' <= 1 (equal at 0); relu' = 1 on the active side",
    method="fnnjax.activation_derivative: maximum over the dense grid and the value at 0 exactly; relu' "
    "for every z > 0 of the grid",
)
def derivative_bounds(
    *, seed: int = 0, quick: bool = False, activation_derivative=fnnjax.activation_derivative
) -> Outcome:
    """F18's bounds: why saturating activations shrink the error terms.

    Args:
      activation_derivative: the implementation under test, ``(name, z, slope=) -> f'(z)``.
    """
    z = np.concatenate([_grid(quick), [0.0]])
    got = {k: np.asarray(v) for k, v in _jit_all_derivatives(activation_derivative, jnp.asarray(z)).items()}
    sig_max, tanh_max = float(got["sigmoid"].max()), float(got["tanh"].max())
    sig0, tanh0 = float(got["sigmoid"][-1]), float(got["tanh"][-1])
    relu_active = bool(np.all(got["relu"][z > 0] == 1.0))
    passed = sig_max <= 0.25 and sig0 == 0.25 and tanh_max <= 1.0 and tanh0 == 1.0 and relu_active
    return Outcome(
        {
            "max sigma'": sig_max,
            "sigma'(0)": sig0,
            "max tanh'": tanh_max,
            "tanh'(0)": tanh0,
            "relu' = 1 for all z > 0": relu_active,
        },
        "max sigma' = sigma'(0) = 0.25; max tanh' = tanh'(0) = 1; relu' = 1",
        passed,
    )


def _deep_problem(hidden: str, gain: float, seed: int, depth: int, width: int):
    rng = np.random.default_rng([seed, depth, width])
    mlp = MLP((width,) * (depth + 1), hidden=hidden, output="identity")
    std = gain * (np.sqrt(1.0 / width) if hidden == "sigmoid" else np.sqrt(2.0 / width))  # xavier / he
    params = tuple(
        Layer(jnp.asarray(std * rng.standard_normal((width, width))), jnp.zeros((width,), jnp.float64))
        for _ in range(depth)
    )
    x = jnp.asarray(rng.standard_normal((16, width)))
    y = jnp.asarray(rng.standard_normal((16, width)))
    return mlp, params, x, y


def _decay_rate(deltas, hidden: str, gain: float, seeds, depth: int, width: int) -> float:
    """The fitted slope of log(||delta(l)|| / ||delta(L)||) against the number of layers the error
    has flowed back through, L - l (per-sample norms, averaged over samples and seeds)."""
    impl = compiled(deltas, 0, 4)
    logs = []
    for s in seeds:
        mlp, params, x, y = _deep_problem(hidden, gain, s, depth, width)
        ds = [np.linalg.norm(np.asarray(d), axis=1) for d in impl(mlp, params, x, y, "mse")]
        logs.append([float(np.mean(np.log(d / ds[-1]))) for d in ds])
    mean = np.mean(np.asarray(logs), axis=0)
    back = np.arange(depth)[::-1]  # delta(l) for l = 1..L has flowed back through L - l layers
    return fit_slope(back, mean)


@check(
    "F18-vanishing-gradients",
    claim="with sigmoid units ||delta(l)|| shrinks geometrically as it flows back; "
    "ReLU largely avoids it; a large init scale explodes it",
    method="depth-12 width-32 nets, fnnjax.deltas: fitted slope of log(||delta(l)||/||delta(L)||) per layer "
    "back, for sigmoid (xavier), relu (he) and relu (2 x he)",
)
def vanishing_gradients(*, seed: int = 0, quick: bool = False, deltas=fnnjax.deltas) -> Outcome:
    """F18 measured: the per-layer decay rate of the error terms.

    Args:
      deltas: the implementation under test, ``(mlp, params, x, y, loss) -> (delta^(1), ..., delta^(L))``.
    """
    depth, width = (8, 32) if quick else (12, 32)
    seeds = seeds_for(seed, quick)
    sig = _decay_rate(deltas, "sigmoid", 1.0, seeds, depth, width)
    relu = _decay_rate(deltas, "relu", 1.0, seeds, depth, width)
    big = _decay_rate(deltas, "relu", 2.0, seeds, depth, width)
    passed = sig <= -0.7 and abs(relu) <= 0.25 and big >= 0.35
    return Outcome(
        {
            "sigmoid: log-norm slope per layer": sig,
            "sigmoid: factor per layer": float(np.exp(sig)),
            "relu: log-norm slope per layer": relu,
            "relu, 2x init: log-norm slope per layer": big,
            "depth": depth,
        },
        "sigmoid slope <= -0.7 (factor <= 0.5); |relu| <= 0.25; 2x init >= +0.35",
        passed,
    )
