"""Greedy layer-wise pretraining with autoencoders (F28, Hinton & Salakhutdinov / Bengio et al. 2006).

For each hidden layer l = 1..L-1 in turn, a one-hidden-layer autoencoder is trained, unsupervised,
to reconstruct that layer's input ``a^(l-1)`` (``a^(0) = x``, then the codes of the layers already
pretrained):

    encoder  h = f_l(W^(l) a + b^(l))          (W^(l): (M_l, M_{l-1}), the layer to initialise)
    decoder  a_hat = g(V h + c)                (V: (M_{l-1}, M_l) of its own, or tied: V = W^(l)T)
    loss     (1/N) sum_i 1/2 ||a_hat_i - a_i||^2   (fnnjax's "mse", F9)

then its codes ``f_l(W^(l) a + b^(l))`` become the next layer's input. The trained encoders give
the hidden layers of the supervised net; the output layer keeps its fresh initialisation; backprop
(:func:`fnnjax.fit`) then fine-tunes the whole net.

An untied autoencoder is an ``MLP((M_{l-1}, M_l, M_{l-1}), hidden=f_l, output=g)`` trained by
:func:`fnnjax.fit` with the hand-written backprop. With tied weights W appears twice, so its
gradient is the sum of the two paths' contributions (F20): ``dR/dW = dR/dW_enc + (dR/dV)^T``, both
from :func:`fnnjax.backprop` of the untied net evaluated at ``V = W^T``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnnjax._backprop import backprop
from fnnjax._losses import loss as risk
from fnnjax._model import MLP, Layer, Params, check_params, check_x, forward, params_dtype
from fnnjax._train import fit

__all__ = ["Pretrained", "TiedAutoencoder", "autoencoder_mlp", "pretrain", "tied_gradient"]

Array = jax.Array


class Pretrained(NamedTuple):
    """What :func:`pretrain` returns.

    Attributes:
      params: the supervised net's params: pretrained hidden layers, the given output layer.
      losses: one ``(epochs,)`` numpy array per hidden layer: the mean reconstruction loss of each
        epoch (the minibatch losses of that epoch, averaged).

    Example: see :func:`pretrain`, which returns one:

      >>> import numpy as np, fnnjax
      >>> fnnjax.Pretrained(params=(), losses=(np.array([0.5, 0.2]),)).losses[0].tolist()
      [0.5, 0.2]
    """

    params: Params
    losses: tuple[np.ndarray, ...]


class TiedAutoencoder(NamedTuple):
    r"""A tied-weight autoencoder's parameters: encoder ``W: (M, K)``, ``b: (M,)``; decoder bias
    ``c: (K,)``; the decoder's weights are $W^\top$ ($W$ appears twice: F20, :func:`tied_gradient`).

    Example:
      >>> import jax.numpy as jnp, fnnjax
      >>> ae = fnnjax.TiedAutoencoder(W=jnp.ones((2, 5)), b=jnp.zeros(2), c=jnp.zeros(5))
      >>> ae.W.T.shape  # the decoder's weights
      (5, 2)
    """

    W: Array
    b: Array
    c: Array


def autoencoder_mlp(mlp: MLP, layer: int, decoder: str = "identity") -> MLP:
    r"""The autoencoder that pretrains hidden layer ``layer`` (1-based) of ``mlp``.

    Args:
      mlp: the supervised net.
      layer: $l$ in $1, \dots, L-1$.
      decoder: the decoder's output activation $g$ (default identity; sigmoid suits inputs in $[0, 1]$).

    Returns:
      ``MLP((M_{l-1}, M_l, M_{l-1}), hidden=f_l, output=decoder)``: $M_{l-1}$ inputs, the $M_l$ units
      of layer $l$ with its activation $f_l$, $M_{l-1}$ outputs.

    Example:
      >>> import fnnjax
      >>> fnnjax.autoencoder_mlp(fnnjax.MLP((784, 256, 64, 10), hidden="sigmoid"), 2).sizes
      (256, 64, 256)
    """
    m_in, m = mlp.sizes[layer - 1], mlp.sizes[layer]
    return MLP((m_in, m, m_in), hidden=mlp.hidden[layer - 1], output=decoder, leaky_slope=mlp.leaky_slope)


def _untie(ae: TiedAutoencoder) -> Params:
    return (Layer(ae.W, ae.b), Layer(ae.W.T, ae.c))


def tied_gradient(ae_mlp: MLP, ae: TiedAutoencoder, a: Array) -> TiedAutoencoder:
    r"""The gradient of the tied autoencoder's reconstruction risk, by backprop (F12, F20).

    $W$ feeds the loss along two paths (encoder $W$, decoder $W^\top$); their contributions add:
    $\partial R / \partial W = G_\text{enc} + G_\text{dec}^\top$ with $(G_\text{enc}, G_\text{dec})$ the
    weight gradients of the untied net.

    Args:
      ae_mlp: the autoencoder's MLP (:func:`autoencoder_mlp`).
      ae: the tied parameters.
      a: the inputs to reconstruct, ``(N, K)``.

    Returns:
      ``TiedAutoencoder`` $(\partial R / \partial W, \partial R / \partial b, \partial R / \partial c)$.

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> mlp = fnnjax.MLP((3, 2, 3), hidden="tanh")
      >>> ae = fnnjax.TiedAutoencoder(jnp.ones((2, 3)), jnp.zeros(2), jnp.zeros(3))
      >>> g = fnnjax.tied_gradient(mlp, ae, jnp.eye(3))
      >>> untie = lambda p: (fnnjax.Layer(p.W, p.b), fnnjax.Layer(p.W.T, p.c))
      >>> tied_loss = lambda p: fnnjax.loss(mlp, untie(p), jnp.eye(3), jnp.eye(3), "mse")
      >>> bool(jnp.allclose(g.W, jax.grad(tied_loss)(ae).W, atol=1e-6))
      True
    """
    enc, dec = backprop(ae_mlp, _untie(ae), a, a, "mse")
    return TiedAutoencoder(enc.W + dec.W.T, enc.b, dec.b)


@functools.partial(jax.jit, static_argnames=("ae_mlp", "optimizer", "epochs", "batch_size"))
def _train_tied(ae: TiedAutoencoder, a: Array, key: Array, *, ae_mlp: MLP, optimizer, epochs: int, batch_size: int):
    """Minibatch descent on a tied autoencoder: one program, ``lax.scan`` over epochs and batches
    (each epoch reshuffled with its own key; the last partial batch is dropped)."""
    n = a.shape[0]
    steps = n // batch_size

    def step(carry, idx):
        ae, state = carry
        batch = a[idx]
        value = risk(ae_mlp, _untie(ae), batch, batch, "mse")
        updates, state = optimizer.update(tied_gradient(ae_mlp, ae, batch), state, ae)
        ae = cast(TiedAutoencoder, optax.apply_updates(ae, updates))  # optax types it as any pytree
        return (ae, state), value

    def epoch(carry, epoch_key):
        order = jax.random.permutation(epoch_key, n)[: steps * batch_size]
        carry, values = jax.lax.scan(step, carry, order.reshape(steps, batch_size))
        return carry, jnp.mean(values)

    (ae, _), losses = jax.lax.scan(epoch, (ae, optimizer.init(ae)), jax.random.split(key, epochs))
    return ae, losses


def _check_options(mlp: MLP, epochs, batch_size, n: int) -> None:
    if mlp.num_layers < 2:
        raise ValueError(
            f"the MLP with sizes {mlp.sizes} has no hidden layer to pretrain; greedy layer-wise "
            "pretraining needs at least one hidden layer, e.g. sizes (784, 256, 10)"
        )
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} = {value!r}; it must be a positive integer")
    if batch_size > n:
        raise ValueError(f"batch_size = {batch_size} is larger than the data set (N = {n}); use batch_size <= {n}")


def _pretrain_layer(
    ae_mlp: MLP, layer: Layer, a: Array, key: Array, *, optimizer, epochs: int, batch_size: int, tied: bool
) -> tuple[Layer, np.ndarray]:
    """Train one autoencoder whose encoder starts at ``layer`` and whose decoder starts at
    ``(W^T, 0)``; return the trained encoder layer and the per-epoch losses."""
    c = jnp.zeros((layer.W.shape[1],), layer.W.dtype)
    if tied:
        ae, losses = _train_tied(
            TiedAutoencoder(layer.W, layer.b, c),
            a,
            key,
            ae_mlp=ae_mlp,
            optimizer=optimizer,
            epochs=epochs,
            batch_size=batch_size,
        )
        return Layer(ae.W, ae.b), np.asarray(losses)
    start = (layer, Layer(layer.W.T, c))
    trained, history = fit(
        ae_mlp, start, (a, a), optimizer=optimizer, epochs=epochs, batch_size=batch_size, key=key, loss="mse"
    )
    return trained[0], np.asarray(history["train_loss"])


def pretrain(
    mlp: MLP,
    params: Params,
    x: Array,
    *,
    key: Array,
    epochs: int,
    batch_size: int,
    optimizer: optax.GradientTransformation,
    tied: bool = False,
    decoder: str = "identity",
) -> Pretrained:
    r"""Greedy layer-wise autoencoder pretraining of every hidden layer of ``mlp`` (F28).

    Hidden layer $l = 1, \dots, L-1$ in turn: an autoencoder (:func:`autoencoder_mlp`) whose encoder
    starts from ``params[l-1]`` and whose decoder starts from $(W^{(l)\top}, 0)$ (or is tied to
    $W^{(l)\top}$) is trained for ``epochs`` epochs to reconstruct $a^{(l-1)}$ with the mse loss,
    unsupervised (no labels); then $a^{(l)} = f_l(W^{(l)} a^{(l-1)} + b^{(l)})$ is computed with the
    trained encoder and feeds layer $l+1$. The output layer ``params[L-1]`` is returned unchanged: pass freshly
    initialised params and fine-tune the result with :func:`fnnjax.fit`.

    Args:
      mlp: the supervised net, with at least one hidden layer.
      params: its initial params (e.g. :func:`fnnjax.init_params`); the starting point of every
        encoder, and the output layer to keep.
      x: unlabelled inputs ``(N, M_0)``.
      key: a jax.random key (keyword-only), split into one per hidden layer (the shuffling).
      epochs: epochs per layer (K).
      batch_size: samples per step, 1..N.
      optimizer: an optax GradientTransformation, e.g. ``optax.sgd(0.1)``; a fresh state per layer.
      tied: decoder weights tied to $W^\top$ (default: a decoder of its own).
      decoder: the decoder's output activation (default identity).

    Returns:
      :class:`Pretrained` ``(params, losses)``: params of the structure, shapes and dtype of
      ``params``; ``losses[l-1]`` the ``(epochs,)`` reconstruction losses of layer $l$.

    Raises:
      ValueError/TypeError: for an MLP without hidden layers, params or x that do not fit it,
        a non-positive epochs or batch_size, a batch size larger than N, or an unknown decoder.

    Example:
      >>> import jax, optax, fnnjax
      >>> mlp = fnnjax.MLP((8, 4, 2, 3), hidden="sigmoid", output="softmax")
      >>> params = fnnjax.init_params(jax.random.key(0), mlp, "xavier")
      >>> x = jax.random.uniform(jax.random.key(1), (64, 8))
      >>> out = fnnjax.pretrain(mlp, params, x, key=jax.random.key(2), epochs=5, batch_size=16,
      ...                       optimizer=optax.sgd(0.5))
      >>> [l.shape for l in out.losses], out.params[2] is params[2]
      ([(5,), (5,)], True)
    """
    params = check_params(mlp, params)
    a, _ = check_x(mlp, x, params_dtype(params))
    _check_options(mlp, epochs, batch_size, a.shape[0])
    keys = jax.random.split(key, mlp.num_layers - 1)
    layers, losses = [], []
    for l in range(1, mlp.num_layers):
        ae_mlp = autoencoder_mlp(mlp, l, decoder)
        encoder, layer_losses = _pretrain_layer(
            ae_mlp,
            params[l - 1],
            a,
            keys[l - 1],
            optimizer=optimizer,
            epochs=int(epochs),
            batch_size=int(batch_size),
            tied=tied,
        )
        layers.append(encoder)
        losses.append(layer_losses)
        code_mlp = MLP(ae_mlp.sizes[:2], output=ae_mlp.hidden[0], leaky_slope=mlp.leaky_slope)
        a = forward(code_mlp, (encoder,), a)  # a^(l): the next autoencoder's data
    return Pretrained((*layers, params[-1]), tuple(losses))
