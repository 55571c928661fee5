"""Perceptrons (F4): the threshold unit, Rosenblatt's rule on AND/OR/NOT/XOR, the 2-2-1 XOR net.

Independent evidence: a plain-Python transcription of the rule, and linear programming (scipy) to
decide which truth tables are linearly separable at all.
"""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

import fnnjax
from fnnjax import data

INPUTS = data.logic_gate("and")[0]


def python_perceptron(x, t, epochs, lr=1.0):
    """The rule exactly as the notes state it, in Python floats, one sample at a time."""
    w, b, errors = [0.0] * len(x[0]), 0.0, []
    for _ in range(epochs):
        wrong = 0
        for xi, ti in zip(x.tolist(), t.tolist()):
            y = 1.0 if sum(wj * xj for wj, xj in zip(w, xi)) + b > 0 else 0.0
            w = [wj + lr * (ti - y) * xj for wj, xj in zip(w, xi)]
            b += lr * (ti - y)
            wrong += ti != y
        errors.append(wrong)
    return w, b, errors


def linearly_separable(x, t) -> bool:
    """Whether some (w, b) has w.x + b >= 1 on the 1s and <= -1 on the 0s (an LP feasibility test)."""
    signs = np.where(t == 1, 1.0, -1.0)
    a_ub = -signs[:, None] * np.hstack([x, np.ones((len(x), 1))])
    result = linprog(
        np.zeros(x.shape[1] + 1), A_ub=a_ub, b_ub=-np.ones(len(x)), bounds=[(None, None)] * (x.shape[1] + 1)
    )
    return result.status == 0


def test_threshold_unit_values():
    out = fnnjax.threshold_unit(INPUTS, jnp.array([1.0, 1.0]), -0.5)
    np.testing.assert_array_equal(out, [0, 1, 1, 1])
    assert float(fnnjax.threshold_unit(jnp.array([0.0]), jnp.array([1.0]), 0.0)) == 0.0  # step(0) = 0
    with pytest.raises(ValueError, match=r"x has shape \(4, 2\) and w has shape \(3,\)"):
        fnnjax.threshold_unit(INPUTS, jnp.ones(3), 0.0)


@pytest.mark.parametrize("gate", ["and", "or", "not", "xor"])
def test_rule_matches_the_plain_python_rule(gate):
    x, t = data.logic_gate(gate)
    result = fnnjax.train_perceptron(x, t, epochs=12, lr=0.5)
    w, b, errors = python_perceptron(x, t, 12, lr=0.5)
    np.testing.assert_allclose(result.w, w)
    assert float(result.b) == pytest.approx(b)
    assert result.errors.tolist() == errors


@pytest.mark.parametrize("gate", ["and", "or", "not"])
def test_and_or_not_converge_to_a_correct_unit(gate):
    x, t = data.logic_gate(gate)
    result = fnnjax.train_perceptron(x, t, epochs=50)
    assert result.converged and result.epochs_to_converge < 10
    np.testing.assert_array_equal(fnnjax.threshold_unit(x, result.w, result.b), t)
    assert result.errors[result.epochs_to_converge :].tolist() == [0] * (50 - result.epochs_to_converge)


def test_xor_never_reaches_zero_errors():
    x, t = data.logic_gate("xor")
    result = fnnjax.train_perceptron(x, t, epochs=500)
    assert not result.converged and result.epochs_to_converge is None
    assert int(result.errors.min()) >= 1
    assert not linearly_separable(x, t)  # F4: no (w, b) exists, so no epoch can be error-free


def test_rule_converges_exactly_on_the_separable_functions_of_two_inputs():
    """All 16 boolean functions of 2 inputs: 14 are separable (all but XOR and XNOR)."""
    outcomes = {}
    for table in itertools.product([0.0, 1.0], repeat=4):
        t = np.array(table, np.float32)
        converged = fnnjax.train_perceptron(INPUTS, t, epochs=60).converged
        outcomes[table] = converged
        assert converged == linearly_separable(INPUTS, t), table
    assert [k for k, v in outcomes.items() if not v] == [(0, 1, 1, 0), (1, 0, 0, 1)]


def test_initial_weights_are_used():
    x, t = data.logic_gate("or")
    result = fnnjax.train_perceptron(x, t, epochs=3, w=jnp.array([1.0, 1.0]), b=-0.5)
    assert result.errors.tolist() == [0, 0, 0]  # already an OR unit: nothing to learn
    np.testing.assert_array_equal(result.w, [1.0, 1.0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epochs=0), r"epochs = 0; the number of passes must be a positive integer"),
        (dict(lr=0.0), r"lr = 0.0; the learning rate must be > 0"),
        (dict(w=jnp.ones(3)), r"w has shape \(3,\) but x has 2 inputs"),
    ],
)
def test_rule_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fnnjax.train_perceptron(*data.logic_gate("and"), **kwargs)


def test_rule_rejects_bad_tables():
    with pytest.raises(ValueError, match=r"targets \[0.0, 2.0\] must be 0 or 1"):
        fnnjax.train_perceptron(np.zeros((2, 1)), np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match=r"x has shape \(4,\) and t has shape \(4,\)"):
        fnnjax.train_perceptron(np.zeros(4), np.zeros(4))


def test_xor_network_computes_xor():
    mlp, params = fnnjax.xor_network()
    assert mlp.sizes == (2, 2, 1) and mlp.activations == ("step", "step")
    x, t = data.logic_gate("xor")
    np.testing.assert_array_equal(fnnjax.forward(mlp, params, x)[:, 0], t)
    hidden = fnnjax.forward_trace(mlp, params, x).a[1]
    np.testing.assert_array_equal(hidden[:, 0], data.logic_gate("or")[1])  # h1 = OR
    np.testing.assert_array_equal(hidden[:, 1], data.logic_gate("and")[1])  # h2 = AND


def test_xor_network_check_fails_on_a_wrong_variant():
    mlp, params = fnnjax.xor_network()
    wrong = (params[0], fnnjax.Layer(params[1].W * jnp.float32(-1), params[1].b))  # "AND but not OR"
    x, t = data.logic_gate("xor")
    assert not np.array_equal(fnnjax.forward(mlp, wrong, x)[:, 0], t)
    linear = fnnjax.MLP((2, 2, 1), hidden="identity", output="step")  # no hidden threshold: F3/F4
    assert not np.array_equal(fnnjax.forward(linear, params, x)[:, 0], t)


def test_docstring_examples():
    import doctest

    import fnnjax._perceptron

    result = doctest.testmod(fnnjax._perceptron, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_example_runs(capsys):
    import runpy

    runpy.run_path("examples/perceptron.py", run_name="not_main")["main"](8)
    out = capsys.readouterr().out
    assert "AND: learned in 5 epochs" in out and "no error-free epoch in 8" in out
    assert "(1, 1)->0  (correct: True)" in out
