"""Bad input gets a clear error at trace time naming the argument and the numbers."""

import jax
import jax.numpy as jnp
import pytest

import fnnjax
from fnnjax import Layer


@pytest.fixture
def net():
    mlp = fnnjax.MLP((4, 5, 3), hidden="tanh", output="softmax")
    return mlp, fnnjax.init_params(jax.random.key(0), mlp, "xavier")


def test_x_width(net):
    mlp, params = net
    with pytest.raises(ValueError, match=r"x has width 7 but the MLP expects 4 inputs"):
        fnnjax.forward(mlp, params, jnp.ones((2, 7)))
    with pytest.raises(ValueError, match=r"x has shape \(2, 3, 4\) but the MLP expects \(N, 4\)"):
        fnnjax.forward(mlp, params, jnp.ones((2, 3, 4)))


def test_x_width_under_jit(net):
    mlp, params = net
    with pytest.raises(ValueError, match="x has width 7"):
        jax.jit(fnnjax.backprop, static_argnums=0)(mlp, params, jnp.ones((2, 7)), jnp.array([0, 1]))


def test_y_batch_and_shape(net):
    mlp, params = net
    x = jnp.ones((4, 4))
    with pytest.raises(ValueError, match=r"y has 3 rows \(shape \(3,\)\) but x has 4 samples"):
        fnnjax.loss(mlp, params, x, jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"y has shape \(4, 5\) .* expects one-hot targets of shape \(4, 3\)"):
        fnnjax.loss(mlp, params, x, jnp.ones((4, 5)))
    with pytest.raises(ValueError, match=r"y has shape \(4, 2\) but loss 'mse'.* expects \(4, 3\)"):
        fnnjax.backprop(mlp, params, x, jnp.ones((4, 2)), loss="mse")


def test_labels_out_of_range(net):
    mlp, params = net
    with pytest.raises(ValueError, match=r"label 3 is out of range: the MLP has 3 classes.* 0\.\.2"):
        fnnjax.backprop(mlp, params, jnp.ones((2, 4)), jnp.array([0, 3]))
    with pytest.raises(ValueError, match=r"label -1 is out of range"):
        fnnjax.loss(mlp, params, jnp.ones((2, 4)), jnp.array([-1, 0]))


def test_binary_targets_out_of_range():
    mlp = fnnjax.MLP((2, 1), output="sigmoid")
    params = fnnjax.init_params(jax.random.key(0), mlp)
    with pytest.raises(ValueError, match=r"y contains 2, but binary cross-entropy targets must lie in \[0, 1\]"):
        fnnjax.loss(mlp, params, jnp.ones((2, 2)), jnp.array([0.0, 2.0]))


def test_params_count_prints_both_treedefs(net):
    mlp, params = net
    with pytest.raises(
        TypeError, match=r"expected a tuple of 2 fnnjax.Layer.*got 1 entries(.|\n)*expected treedef(.|\n)*got treedef"
    ):
        fnnjax.forward(mlp, params[:1], jnp.ones(4))
    with pytest.raises(TypeError, match="expected treedef"):
        fnnjax.forward(mlp, {"W": params[0].W}, jnp.ones(4))


def test_params_shape_and_dtype(net):
    mlp, params = net
    bad = (Layer(params[0].W.T, params[0].b), params[1])
    with pytest.raises(
        ValueError, match=r"params\[0\].W \(layer 1\) has shape \(4, 5\) but the MLP .* expects \(5, 4\)"
    ):
        fnnjax.forward(mlp, bad, jnp.ones(4))
    mixed = (params[0], Layer(params[1].W.astype(jnp.bfloat16), params[1].b))
    with pytest.raises(ValueError, match=r"params\[1\].W \(layer 2\) has dtype bfloat16 but params\[0\].W has float32"):
        fnnjax.forward(mlp, mixed, jnp.ones(4))
    ints = (Layer(params[0].W.astype(jnp.int32), params[0].b.astype(jnp.int32)), params[1])
    with pytest.raises(ValueError, match=r"has dtype int32 but parameters must be floating"):
        fnnjax.forward(mlp, ints, jnp.ones(4))


def test_mlp_description_errors():
    with pytest.raises(ValueError, match=r"softmax is allowed only on the output layer, but hidden layer 2 uses it"):
        fnnjax.MLP((3, 4, 4, 2), hidden=("relu", "softmax"))
    with pytest.raises(
        ValueError, match=r"unknown hidden activation 'swish' \(layer 1\); valid names are identity, sigmoid"
    ):
        fnnjax.MLP((3, 4, 2), hidden="swish")
    with pytest.raises(ValueError, match=r"unknown output activation 'gelu'; valid names are .*softmax"):
        fnnjax.MLP((3, 2), output="gelu")
    with pytest.raises(ValueError, match=r"hidden has 1 activation names but sizes describe 2 hidden layers"):
        fnnjax.MLP((3, 4, 4, 2), hidden=["relu"])
    with pytest.raises(ValueError, match=r"sizes\[1\] = 0 is not a positive integer"):
        fnnjax.MLP((3, 0, 2))
    with pytest.raises(ValueError, match=r"sizes \(3,\) has 1 entry"):
        fnnjax.MLP((3,))


def test_unknown_names_list_the_valid_ones(net):
    mlp, params = net
    x, y = jnp.ones((2, 4)), jnp.array([0, 1])
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'; valid losses are mse, squared_error, cross_entropy"):
        fnnjax.loss(mlp, params, x, y, loss="hinge")
    with pytest.raises(ValueError, match=r"unknown gradient method 'adjoint'; valid methods are backprop, grad, vjp"):
        fnnjax.gradient(mlp, params, x, y, method="adjoint")
    with pytest.raises(ValueError, match=r"unknown init scheme 'lecun'; valid schemes are normal, uniform, xavier"):
        fnnjax.init_params(jax.random.key(0), mlp, "lecun")
    with pytest.raises(
        ValueError, match=r"init scheme 'normal' takes the options \('std',\) \(and dtype\), not \['gain'\]"
    ):
        fnnjax.init_params(jax.random.key(0), mlp, "normal", gain=2.0)
    with pytest.raises(ValueError, match=r"unknown activation 'mish'; valid names are"):
        fnnjax.activate("mish", jnp.ones(2))
    with pytest.raises(ValueError, match=r"step applies only to fd_central and fd_forward"):
        fnnjax.gradient(mlp, params, x, y, method="grad", step=1e-3)


def test_loss_must_fit_the_output():
    mlp = fnnjax.MLP((3, 2), output="identity")
    params = fnnjax.init_params(jax.random.key(0), mlp)
    with pytest.raises(ValueError, match=r"loss 'cross_entropy' needs output='softmax' .* has output='identity'"):
        fnnjax.loss(mlp, params, jnp.ones((1, 3)), jnp.array([1]))
    one = fnnjax.MLP((3, 1), output="softmax")
    with pytest.raises(ValueError, match=r"softmax cross-entropy needs at least 2 output units"):
        fnnjax.loss(one, fnnjax.init_params(jax.random.key(0), one), jnp.ones((1, 3)), jnp.array([0]))
