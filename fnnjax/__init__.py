"""fnnjax: the mathematics of fully connected feedforward networks, checkable and fast, in JAX.

Parameters are a tuple of :class:`Layer` (``W: (M_l, M_{l-1})``, ``b: (M_l,)``); an :class:`MLP`
is a static, hashable description; every function is pure and ``jax.jit``-compatible.

The formulas cited by number in docstrings and messages (F1-F28) are stated and derived in the
documentation's formula pages, ``docs/formulas/`` (one heading per formula, e.g.
``docs/formulas/backprop.md#f10``; ``verify.formula_page`` gives the page of any number).
"""

from typing import TYPE_CHECKING

# the core: model, activations, losses, the hand-written backward pass, every other method
# training, checkpoints, data, scaling out
from fnnjax import data
from fnnjax._activations import ACTIVATIONS, HIDDEN_ACTIVATIONS, activate, activation_derivative, softmax_vjp
from fnnjax._backprop import backprop, deltas
from fnnjax._checkpoint import (
    Checkpointer,
    CheckpointError,
    DamagedCheckpointError,
    Restored,
    latest_checkpoint,
    load_params,
    restore_checkpoint,
    save_checkpoint,
    save_params,
)
from fnnjax._differentiate import (
    METHODS,
    default_step,
    finite_difference_gradient,
    finite_difference_steps,
    gradient,
    representable_step,
)
from fnnjax._losses import LOSSES, l2_penalty, loss
from fnnjax._model import MLP, SCHEMES, Layer, Params, Trace, forward, forward_trace, init_params

# the notes' other systems
from fnnjax._perceptron import PerceptronResult, threshold_unit, train_perceptron, xor_network
from fnnjax._pretrain import Pretrained, TiedAutoencoder, autoencoder_mlp, pretrain, tied_gradient
from fnnjax._sharding import data_mesh
from fnnjax._train import (
    EVAL_BATCH_SIZE,
    GRADIENTS,
    History,
    NonFiniteLossError,
    Trainer,
    TrainState,
    dropout_scales,
    evaluate,
    evaluation_sums,
    fit,
    l2_decay,
    prepare_data,
)

# checking gradients written by hand
from fnnjax.gradcheck import GradCheckReport, GradientCheckError, check_gradients

if TYPE_CHECKING:  # imported on first use (see __getattr__): the grader is not imported with fnnjax
    from fnnjax.verify.grader import check_backprop

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "EVAL_BATCH_SIZE",
    "GRADIENTS",
    "HIDDEN_ACTIVATIONS",
    "LOSSES",
    "METHODS",
    "MLP",
    "SCHEMES",
    "activate",
    "activation_derivative",
    "autoencoder_mlp",
    "backprop",
    "check_backprop",
    "check_gradients",
    "Checkpointer",
    "CheckpointError",
    "DamagedCheckpointError",
    "data",
    "data_mesh",
    "default_step",
    "deltas",
    "dropout_scales",
    "evaluate",
    "evaluation_sums",
    "finite_difference_gradient",
    "finite_difference_steps",
    "fit",
    "forward",
    "forward_trace",
    "GradCheckReport",
    "gradient",
    "GradientCheckError",
    "History",
    "init_params",
    "l2_decay",
    "l2_penalty",
    "latest_checkpoint",
    "Layer",
    "load_params",
    "loss",
    "NonFiniteLossError",
    "Params",
    "PerceptronResult",
    "prepare_data",
    "pretrain",
    "Pretrained",
    "restore_checkpoint",
    "representable_step",
    "Restored",
    "save_checkpoint",
    "save_params",
    "softmax_vjp",
    "threshold_unit",
    "tied_gradient",
    "TiedAutoencoder",
    "Trace",
    "train_perceptron",
    "Trainer",
    "TrainState",
    "xor_network",
]


def __getattr__(name: str):
    """``fnnjax.check_backprop``, imported on first use: ``import fnnjax`` does not import the grader."""
    if name == "check_backprop":
        from fnnjax.verify.grader import check_backprop

        globals()[name] = check_backprop
        return check_backprop
    raise AttributeError(f"module 'fnnjax' has no attribute {name!r}")
