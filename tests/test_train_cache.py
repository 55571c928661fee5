"""fit reuses a compiled epoch only for the same computation (fnnjax._static_key).

The learning-rate sweep of the issue, run as module-level code, trains at every rate exactly as a
plain ``jax.jit`` loop does; the same optimizer object after the global it reads changed, a
mutated list and an object's attribute are new programs; equal optimizers and an
``optax.inject_hyperparams`` sweep share one program (a trace counter says how many were traced);
and the key itself: what it follows, where it is strict, and that it keeps alive what it compares by
identity.
"""

import functools
import gc
import types
import weakref

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnjax
from fnnjax import _train
from fnnjax._static_key import ByStructure, structural_key

MLP = fnnjax.MLP((3, 4, 2), hidden="tanh", output="softmax")
X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32)
P0 = fnnjax.init_params(jax.random.key(0), MLP, "xavier")
EPOCHS = 2  # full batches (batch_size = N): one step per epoch, the batch order does not matter


def fit(optimizer):
    return fnnjax.fit(MLP, P0, (X, Y), optimizer=optimizer, epochs=EPOCHS, batch_size=8, key=jax.random.key(1))[0]


@functools.cache
def plain_jit_loop(lr: float):
    """The issue's yardstick: a fresh ``jax.jit`` step per rate, full-batch SGD steps on the core
    loss (memoised: each rate is computed once)."""
    optimizer = optax.sgd(lr)

    @jax.jit
    def step(params, state):
        grads = jax.grad(fnnjax.loss, argnums=1)(MLP, params, X, Y)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params, state = P0, optimizer.init(P0)
    for _ in range(EPOCHS):
        params, state = step(params, state)
    return params


def run_module(source: str, **names) -> dict:
    """Run ``source`` as the body of a fresh module (its loop variables are module globals, as in a
    script or notebook); return the module's namespace."""
    module = types.ModuleType("sweep_script")
    module.__dict__.update(names)
    exec(compile(source, "sweep_script.py", "exec"), module.__dict__)
    return module.__dict__


@pytest.fixture
def traces(monkeypatch):
    """Counts the traces of the epoch program (each is a compilation) in a fresh jit cache."""
    count = [0]
    original = _train._epoch_program

    def counted(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(
        _train,
        "_train_epoch",
        jax.jit(
            counted, static_argnames=("spec", "batch_size", "mesh", "unroll"), donate_argnames=("params", "opt_state")
        ),
    )
    return count


ISSUE_SWEEP = """
for lr in (0.0, 0.5):
    results[lr] = fnnjax.fit(mlp, params, data, optimizer=optax.sgd(lambda step: lr), epochs=2,
                             batch_size=8, key=jax.random.key(1))[0]
"""


def test_the_issue_sweep_trains_at_each_rate_as_a_plain_jit_loop(traces):
    ns = run_module(ISSUE_SWEEP, fnnjax=fnnjax, optax=optax, jax=jax, mlp=MLP, params=P0, data=(X, Y), results={})
    results = ns["results"]
    chex.assert_trees_all_equal(results[0.0], P0)  # rate 0: nothing moves
    for lr in (0.0, 0.5):
        chex.assert_trees_all_close(results[lr], plain_jit_loop(lr), rtol=1e-5, atol=1e-6)
    assert float(jnp.max(jnp.abs(results[0.5][0].W - P0[0].W))) > 1e-2  # rate 0.5 trains
    assert traces[0] == 2  # two computations, two programs


@pytest.mark.parametrize(
    "source",
    [
        "lr = 0.0\nopt = optax.sgd(lambda step: lr)\nfirst = fit(opt)\nlr = 0.5\nsecond = fit(opt)",
        "rates = [0.0]\nopt = optax.sgd(lambda step: rates[0])\nfirst = fit(opt)\nrates[0] = 0.5\nsecond = fit(opt)",
        "cfg = types.SimpleNamespace(lr=0.0)\nopt = optax.sgd(lambda step: cfg.lr)\nfirst = fit(opt)\n"
        "cfg.lr = 0.5\nsecond = fit(opt)",
    ],
    ids=["global-rebound", "list-mutated", "attribute-set"],
)
def test_the_same_optimizer_object_reading_a_changed_value_is_a_new_program(source):
    ns = run_module(source, fit=fit, optax=optax, types=types)
    chex.assert_trees_all_equal(ns["first"], P0)
    chex.assert_trees_all_close(ns["second"], plain_jit_loop(0.5), rtol=1e-5, atol=1e-6)


def test_equal_optimizers_share_one_program_and_an_injected_rate_sweeps_without_recompiling(traces):
    a, b = fit(optax.sgd(0.1)), fit(optax.sgd(0.1))  # two new objects, one computation
    assert traces[0] == 1
    chex.assert_trees_all_equal(a, b)
    swept = {lr: fit(optax.inject_hyperparams(optax.sgd)(learning_rate=lr)) for lr in (0.0, 0.1, 0.5)}
    assert traces[0] == 2  # one more program for the three rates
    chex.assert_trees_all_equal(swept[0.0], P0)
    for lr in (0.1, 0.5):  # the rate is used, not baked in: each trains as a plain loop at its rate
        chex.assert_trees_all_close(swept[lr], plain_jit_loop(lr), rtol=1e-5, atol=1e-6)
    fit(optax.sgd(0.2))  # the counter does see a new program (the checks above can fail)
    assert traces[0] == 3


# ----------------------------------------------------------------------------------------------
# The key itself (no compilation)


def key_of_update(optimizer):
    return ByStructure(optimizer.update)


def test_the_key_follows_globals_helpers_and_module_attributes():
    ns = run_module(
        "lr = 0.1\n"
        "def helper():\n    return lr\n"
        "def make():\n    return optax.sgd(lambda step: helper())\n"
        "def make_cfg():\n    return optax.sgd(lambda step: cfg.lr)\n",
        optax=optax,
        cfg=types.SimpleNamespace(lr=0.1),
    )
    before, before_cfg = key_of_update(ns["make"]()), key_of_update(ns["make_cfg"]())
    assert key_of_update(ns["make"]()) == before and key_of_update(ns["make_cfg"]()) == before_cfg
    ns["lr"] = 0.2
    ns["cfg"].lr = 0.2
    assert key_of_update(ns["make"]()) != before
    assert key_of_update(ns["make_cfg"]()) != before_cfg


def test_a_recursive_global_function_is_keyed_and_equal():
    ns = run_module(
        "def fact(n):\n    return 1 if n <= 1 else n * fact(n - 1)\n"
        "def make():\n    return optax.sgd(lambda step: 0.01 * fact(3))\n",
        optax=optax,
    )
    assert key_of_update(ns["make"]()) == key_of_update(ns["make"]())


@pytest.mark.parametrize(
    "body",
    ["globals()['lr']", "getattr(cfg, 'lr')", "next(rates)"],
    ids=["globals", "getattr", "iterator"],
)
def test_what_the_key_cannot_see_into_is_never_shared(body):
    ns = run_module(
        f"lr = 0.1\nrates = iter([0.1, 0.2])\ndef make():\n    return optax.sgd(lambda step: {body})\n",
        optax=optax,
        cfg=types.SimpleNamespace(lr=0.1),
    )
    assert key_of_update(ns["make"]()) != key_of_update(ns["make"]())


def test_an_object_compared_by_identity_is_kept_alive():
    """ids are reused after an object dies: the key holds the object, so that cannot happen."""

    class Schedule:
        def __call__(self, step):
            return 0.1

    schedule = Schedule()
    alive = weakref.ref(schedule)
    key = structural_key(optax.sgd(schedule).update)
    del schedule
    gc.collect()
    assert alive() is not None
    assert structural_key(optax.sgd(Schedule()).update) != key
    del key
    gc.collect()
    assert alive() is None


@pytest.mark.parametrize(
    "a, b, same",
    [
        (lambda: optax.adam(1e-3), lambda: optax.adam(1e-3), True),
        (
            lambda: optax.chain(optax.clip(1.0), optax.sgd(0.3)),
            lambda: optax.chain(optax.clip(1.0), optax.sgd(0.3)),
            True,
        ),
        (lambda: optax.sgd(0.1), lambda: optax.sgd(0.2), False),
        (lambda: optax.sgd(0.0), lambda: optax.sgd(-0.0), False),
        (lambda: optax.sgd(jnp.float32(0.1)), lambda: optax.sgd(np.float64(0.1)), False),
        (lambda: optax.sgd(0.1), lambda: optax.sgd(0.1, momentum=0.9), False),
    ],
    ids=["adam", "chain", "rate", "signed-zero", "dtype", "momentum"],
)
def test_the_key_of_library_optimizers(a, b, same):
    assert (key_of_update(a()) == key_of_update(b())) is same


def test_a_numpy_array_read_by_the_schedule_is_keyed_by_its_contents():
    ns = run_module(
        "rates = np.array([0.1])\ndef make():\n    return optax.sgd(lambda step: rates[0])\n", np=np, optax=optax
    )
    before = key_of_update(ns["make"]())
    assert key_of_update(ns["make"]()) == before
    ns["rates"][0] = 0.2
    assert key_of_update(ns["make"]()) != before
