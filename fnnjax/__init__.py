"""fnnjax: the mathematics of fully connected feedforward networks, checkable and fast, in JAX.

Parameters are a tuple of :class:`Layer` (``W: (M_l, M_{l-1})``, ``b: (M_l,)``); an :class:`MLP`
is a static, hashable description; every function is pure and ``jax.jit``-compatible.
"""

from fnnjax._activations import ACTIVATIONS, HIDDEN_ACTIVATIONS, activate, activation_derivative, softmax_vjp
from fnnjax._backprop import backprop, deltas
from fnnjax._differentiate import METHODS, default_step, finite_difference_gradient, gradient
from fnnjax._gradcheck import GradCheckReport, GradientCheckError, check_gradients
from fnnjax._losses import LOSSES, l2_penalty, loss
from fnnjax._model import MLP, SCHEMES, Layer, Params, Trace, forward, forward_trace, init_params
from fnnjax._perceptron import PerceptronResult, threshold_unit, train_perceptron, xor_network
from fnnjax._pretrain import Pretrained, TiedAutoencoder, autoencoder_mlp, pretrain, tied_gradient
from fnnjax._train import (GRADIENTS, History, NonFiniteLossError, Trainer, TrainState, dropout_scales, evaluate,
                           fit, l2_decay)
from fnnjax._sharding import data_mesh
from fnnjax._checkpoint import (CheckpointError, Checkpointer, Restored, latest_checkpoint, load_params,
                                restore_checkpoint, save_checkpoint, save_params)
from fnnjax import data

__version__ = "0.1.0"

__all__ = [
    "GRADIENTS",
    "History",
    "NonFiniteLossError",
    "TrainState",
    "Trainer",
    "dropout_scales",
    "evaluate",
    "fit",
    "l2_decay",
    "data_mesh",
    "CheckpointError",
    "Checkpointer",
    "Restored",
    "latest_checkpoint",
    "load_params",
    "restore_checkpoint",
    "save_checkpoint",
    "save_params",
    "GradCheckReport",
    "GradientCheckError",
    "check_gradients",
    "ACTIVATIONS",
    "HIDDEN_ACTIVATIONS",
    "LOSSES",
    "METHODS",
    "MLP",
    "SCHEMES",
    "Layer",
    "Params",
    "PerceptronResult",
    "Pretrained",
    "TiedAutoencoder",
    "autoencoder_mlp",
    "pretrain",
    "tied_gradient",
    "Trace",
    "activate",
    "activation_derivative",
    "backprop",
    "data",
    "default_step",
    "deltas",
    "finite_difference_gradient",
    "forward",
    "forward_trace",
    "gradient",
    "init_params",
    "l2_penalty",
    "loss",
    "softmax_vjp",
    "threshold_unit",
    "train_perceptron",
    "xor_network",
]
