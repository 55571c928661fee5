"""fnnjax.fit against independent evidence.

A plain Python loop with the core's jax.grad and optax reproduces fit's trajectory (batching rule,
partial last batch, metrics); the hand-written backprop with dropout masks equals jax.grad of the
dropped-out risk; L2 in the loss equals optax weight decay; the same key gives the same bits; no
epoch after the first compiles anything; a non-finite loss names its epoch and step.
"""

import functools
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnjax
from fnnjax._backprop import backward, output_delta
from fnnjax._model import trace_batch
from fnnjax._static_key import ByStructure
from fnnjax._train import _autodiff_gradient, _backprop_gradient, _Hyper, _StepSpec

MLP = fnnjax.MLP((6, 5, 4), hidden="tanh", output="softmax")
N, B = 40, 16  # 2 full batches and one of 8: the partial-batch rule is always exercised
SGD = optax.sgd(0.3)  # one optimizer object: fits with equal settings share compiled programs


def make_data(seed, n=N):
    """Inputs N(0, 1), labels from a random linear rule (numpy: no compilation at import)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    return x, np.argmax(x @ rng.standard_normal((6, 4)), axis=1).astype(np.int32)


def xavier(rng, sizes):
    return tuple(
        fnnjax.Layer(
            jnp.asarray(rng.normal(0, np.sqrt(2 / (m + n)), (m, n)), jnp.float32), jnp.zeros((m,), jnp.float32)
        )
        for n, m in zip(sizes[:-1], sizes[1:])
    )


TRAIN, VAL = make_data(0), make_data(1, 24)
P0 = xavier(np.random.default_rng(2), MLP.sizes)


def run(**kw):
    options = dict(optimizer=SGD, epochs=3, batch_size=B, key=jax.random.key(3))
    options.update(kw)
    return fnnjax.fit(MLP, P0, TRAIN, **options)


def assert_trees(a, b, **tol):
    chex.assert_trees_all_close(a, b, **tol)


@functools.partial(jax.jit, static_argnums=0)
def reference_step(optimizer, params, opt_state, x, y, scale):
    value, g = jax.value_and_grad(fnnjax.loss, argnums=1)(MLP, params, x, y)
    updates, opt_state = optimizer.update(jax.tree.map(lambda t: t * scale, g), opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value


def reference_fit(params, optimizer, key, epochs, x, y, batch_size, last="own_mean"):
    """The documented rule, written independently: split the key, permute, cut into batches of B
    with a shorter last one, one optax step per batch on the mean loss (the core's jax.grad).

    ``last`` picks how the short last batch is treated: ``own_mean`` (the documented rule),
    ``drop`` or ``mean_over_B`` (wrong rules, for checks that must fail)."""
    opt_state = optimizer.init(params)
    losses = []
    n = len(x)
    for _ in range(epochs):
        key, epoch_key = jax.random.split(key)
        perm_key, _ = jax.random.split(epoch_key)
        order = np.asarray(jax.random.permutation(perm_key, n))
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            short = len(idx) < batch_size
            if short and last == "drop":
                continue
            scale = len(idx) / batch_size if short and last == "mean_over_B" else 1.0
            params, opt_state, value = reference_step(optimizer, params, opt_state, x[idx], y[idx], np.float32(scale))
            total += float(value) * len(idx)
        losses.append(total / n)
    return params, losses


@pytest.mark.parametrize("gradient", fnnjax.GRADIENTS)
def test_fit_follows_the_documented_loop(gradient):
    params, hist = run(gradient=gradient)
    ref_params, ref_losses = reference_fit(P0, SGD, jax.random.key(3), 3, *TRAIN, B)
    assert_trees(params, ref_params, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(hist["train_loss"], ref_losses, rtol=1e-5)
    assert [r["epoch"] for r in hist.epochs] == [1, 2, 3]
    assert hist["train_loss"][-1] < hist["train_loss"][0]  # it learns


@pytest.mark.parametrize("gradient", fnnjax.GRADIENTS)
def test_an_unrolled_epoch_loop_takes_the_same_steps(gradient):
    """unroll=2 (and one larger than the 3 steps of an epoch) runs the same steps as the documented
    loop; only XLA's fusion may differ, hence float tolerances, not bits."""
    ref_params, ref_losses = reference_fit(P0, SGD, jax.random.key(3), 3, *TRAIN, B)
    for unroll in (2, 50):
        params, hist = run(gradient=gradient, unroll=unroll)
        assert_trees(params, ref_params, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(hist["train_loss"], ref_losses, rtol=1e-5)


def test_the_partial_batch_is_averaged_over_its_own_samples():
    """Dropping the last batch, or averaging it over B, gives another trajectory: fit matches only
    the rule it documents (checks that can fail)."""
    params, _ = run(epochs=2)
    for rule, same in (("own_mean", True), ("drop", False), ("mean_over_B", False)):
        ref, _ = reference_fit(P0, SGD, jax.random.key(3), 2, *TRAIN, B, last=rule)
        close = all(
            np.allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
            for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref))
        )
        assert close == same, rule


def test_metrics_and_evaluation():
    params, hist = run(eval={"val": VAL, "test": TRAIN})
    last = hist.epochs[-1]
    assert set(last) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds"}
    for name, (x, y) in (("val", VAL), ("test", TRAIN)):
        assert last[f"{name}_loss"] == pytest.approx(float(fnnjax.loss(MLP, params, x, y)), rel=1e-5)
        pred = np.argmax(np.asarray(fnnjax.forward(MLP, params, x)), axis=1)
        assert last[f"{name}_acc"] == pytest.approx(np.mean(pred == y))
    chunked = fnnjax.evaluate(MLP, params, VAL, batch_size=7)  # 3 chunks of 7 and one of 3
    assert chunked["loss"] == pytest.approx(last["val_loss"], rel=1e-5)
    assert chunked["acc"] == pytest.approx(last["val_acc"])
    assert 0 <= hist["train_acc"].min() and hist["train_acc"].max() <= 1
    assert json.loads(json.dumps(hist.to_dict()))["epochs"][0]["epoch"] == 1


def test_callbacks_see_each_epoch_and_can_stop():
    seen = []

    def stop_at_two(record, state):
        seen.append((record["epoch"], state.epoch))
        return state.epoch == 2

    _, hist = run(epochs=5, callbacks=[stop_at_two])
    assert seen == [(1, 1), (2, 2)] and len(hist) == 2


def test_trainer_is_the_loop_behind_fit():
    params, hist = run()
    trainer = fnnjax.Trainer(MLP, P0, TRAIN, optimizer=SGD, epochs=3, batch_size=B, key=jax.random.key(3))
    records = list(trainer)
    assert [r["train_loss"] for r in records] == list(hist["train_loss"])
    assert trainer.state.epoch == 3 and trainer.compile_seconds >= 0
    chex.assert_trees_all_equal(trainer.state.params, params)
    with pytest.raises(StopIteration):
        next(trainer)


def test_buffers_are_donated_but_never_the_callers():
    before = [np.asarray(leaf).copy() for leaf in jax.tree.leaves(P0)]
    kept = []
    run(epochs=2, callbacks=[lambda r, s: kept.append(s.params) if r["epoch"] == 1 else None])
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(kept[0]))  # donated to epoch 2
    for leaf, b in zip(jax.tree.leaves(P0), before):
        assert not leaf.is_deleted()
        np.testing.assert_array_equal(np.asarray(leaf), b)


def test_no_compilation_after_the_first_epoch():
    events = []

    def listener(name, *_, **__):
        if name == "/jax/core/compile/backend_compile_duration":
            events.append(name)

    at_epoch = []
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        # an optimizer no other test builds: fit must compile, so the listener is shown to work
        fnnjax.fit(
            MLP,
            P0,
            TRAIN,
            optimizer=optax.sgd(0.2125),
            epochs=4,
            batch_size=B,
            key=jax.random.key(0),
            eval=VAL,
            callbacks=[lambda r, s: at_epoch.append(len(events))],
        )
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert at_epoch[0] >= 1  # at least the epoch program (new optimizer object)
    assert at_epoch == [at_epoch[0]] * 4, f"compilations after each epoch: {at_epoch}"


def test_same_key_same_bits_and_dropout_uses_the_key():
    a, ha = run(dropout=0.3)
    b, hb = run(dropout=0.3)
    c, _ = run(dropout=0.3, key=jax.random.key(4))
    chex.assert_trees_all_equal(a, b)
    assert list(ha["train_loss"]) == list(hb["train_loss"])
    assert not np.array_equal(np.asarray(a[0].W), np.asarray(c[0].W))


def test_dropout_backprop_equals_grad_in_fit():
    a, ha = run(dropout=0.3, gradient="backprop")
    b, hb = run(dropout=0.3, gradient="grad")
    d, _ = run(gradient="backprop")
    assert_trees(a, b, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(ha["train_loss"], hb["train_loss"], rtol=1e-5)
    assert not np.allclose(np.asarray(a[0].W), np.asarray(d[0].W), atol=1e-4)  # dropout acts


def test_dropout_scales_are_inverted_dropout():
    mlp = fnnjax.MLP((3, 400, 300, 2))
    s = fnnjax.dropout_scales(jax.random.key(0), mlp, 50, 0.25)
    assert [a.shape for a in s] == [(50, 400), (50, 300)]
    values = np.concatenate([np.asarray(a).ravel() for a in s])
    assert set(np.unique(values)) == {0.0, np.float32(1 / 0.75)}
    assert np.mean(values == 0) == pytest.approx(0.25, abs=0.01)  # DROP rate
    assert np.mean(values) == pytest.approx(1.0, abs=0.015)  # E[s] = 1: no rescaling at eval


def test_hand_written_dropout_gradient_equals_autodiff(x64):
    mlp = fnnjax.MLP((5, 7, 6, 3), hidden=("relu", "sigmoid"), output="softmax")
    k = jax.random.split(jax.random.key(5), 4)
    params = fnnjax.init_params(k[0], mlp, "he", dtype=jnp.float64)
    x = jax.random.normal(k[1], (9, 5), jnp.float64)
    target = jax.nn.one_hot(jax.random.randint(k[2], (9,), 0, 3), 3, dtype=jnp.float64)
    scales = fnnjax.dropout_scales(k[3], mlp, 9, 0.5, jnp.float64)
    valid = jnp.arange(9) < 7
    spec = _StepSpec(mlp, "cross_entropy", ByStructure(SGD.update), "backprop", True, True, True)
    hyper = _Hyper(jnp.asarray(0.01, jnp.float64), jnp.asarray(0.5, jnp.float64))
    hand_fn = jax.jit(lambda *a: _backprop_gradient(spec, hyper, *a)[0])
    auto_fn = jax.jit(lambda *a: _autodiff_gradient(spec, hyper, *a)[0])
    for v in (None, valid):
        hand = hand_fn(params, x, target, scales, v)
        auto = auto_fn(params, x, target, scales, v)
        assert_trees(hand, auto, rtol=1e-10, atol=1e-12)
    # without the masks in the delta recursion the gradient is wrong: the hook is needed

    @jax.jit
    def no_masks(params, x, target, scales):
        trace = trace_batch(mlp, params, x, scales)
        ds = backward(mlp, params, trace, output_delta(mlp, "cross_entropy", trace, target) / 9)
        return ds[0].T @ trace.a[0]

    hand = hand_fn(params, x, target, scales, None)
    wrong = no_masks(params, x, target, scales)
    assert not np.allclose(np.asarray(wrong), np.asarray(hand[0].W - 0.01 * params[0].W))


def test_weight_decay_in_the_loss_equals_optax_decay():
    lam = 0.05

    def trajectory(**kw):
        out = []
        run(epochs=3, callbacks=[lambda r, s: out.append(jax.tree.map(np.array, s.params))], **kw)
        return out

    in_loss = trajectory(l2=lam)
    by_optax = trajectory(optimizer=optax.chain(fnnjax.l2_decay(lam), SGD))
    decay_all = trajectory(optimizer=optax.chain(optax.add_decayed_weights(lam), SGD))
    plain = trajectory()
    for a, b in zip(in_loss, by_optax):
        assert_trees(a, b, rtol=1e-6, atol=1e-7)
    assert not np.allclose(in_loss[-1][0].W, plain[-1][0].W, atol=1e-4)  # decay acts
    assert not np.allclose(in_loss[-1][0].b, decay_all[-1][0].b, atol=1e-5)  # biases excluded (F7)


def test_non_finite_loss_names_epoch_and_step():
    """1-1 linear net, L = 1/2 (w + b)^2 on x = 1, y = 0: each SGD step multiplies s = w + b by
    1 - 2 lr = -1e10, so the losses are 0.5, 5e19, then 5e39 = inf in float32: step 1 of epoch 2."""
    mlp = fnnjax.MLP((1, 1))
    params = (fnnjax.Layer(jnp.ones((1, 1)), jnp.zeros((1,))),)
    data = (np.ones((2, 1), np.float32), np.zeros((2, 1), np.float32))
    seen = []
    with pytest.raises(
        fnnjax.NonFiniteLossError, match=r"non-finite loss at epoch 2, step 1 of 2 \(global step 3\)"
    ) as info:
        fnnjax.fit(
            mlp,
            params,
            data,
            optimizer=optax.sgd(5e9),
            loss="mse",
            epochs=5,
            batch_size=1,
            key=jax.random.key(0),
            callbacks=[lambda r, s: seen.append(r["epoch"])],
        )
    assert (info.value.epoch, info.value.step) == (2, 1)
    assert seen == [1] and len(info.value.history) == 1
    assert info.value.history.epochs[0]["train_loss"] == pytest.approx((0.5 + 5e19) / 2, rel=1e-3)


@pytest.mark.parametrize(
    "kw, err, match",
    [
        (dict(optimizer="sgd"), TypeError, "optimizer must be an optax GradientTransformation"),
        (dict(gradient="fd"), ValueError, "unknown gradient 'fd'; valid values are backprop, grad"),
        (dict(dropout=1.0), ValueError, r"dropout = 1.0 .* probability of DROPPING"),
        (dict(l2=-1.0), ValueError, r"l2 = -1.0 .* >= 0"),
        (dict(batch_size=41), ValueError, r"batch_size = 41 is larger than the training set \(N = 40\)"),
        (dict(batch_size=0), ValueError, "batch_size = 0 but it must be a positive integer"),
        (dict(epochs=0), ValueError, "epochs = 0 but it must be a positive integer"),
        (dict(unroll=0), ValueError, "unroll = 0 but it must be a positive integer"),
        (dict(epochs=2, initial_epoch=3), ValueError, "initial_epoch = 3 is past epochs = 2"),
        (dict(loss="hinge"), ValueError, "unknown loss 'hinge'"),
        (dict(eval=(np.ones((3, 5)), np.zeros(3, np.int32))), ValueError, "x has width 5 but the MLP expects 6"),
        (dict(opt_state=optax.adam(0.1).init(P0)), TypeError, "opt_state does not match optimizer.init"),
    ],
)
def test_fit_rejects_bad_input(kw, err, match):
    with pytest.raises(err, match=match):
        run(**kw)


def test_fit_rejects_images_that_are_not_flattened():
    x = np.zeros((4, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"train x has shape \(4, 2, 3\) .* reshape it"):
        fnnjax.fit(MLP, P0, (x, np.zeros(4, np.int32)), optimizer=SGD, epochs=1, batch_size=2, key=jax.random.key(0))
