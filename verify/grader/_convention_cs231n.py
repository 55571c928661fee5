"""The cs231n convention: row layout ``scores = X W + b``, ReLU hidden layers, softmax loss
averaged over N, ``0.5 * reg * sum ||W||^2`` (assignment 2's ``fc_net.py``) or ``reg * sum ||W||^2``
(assignment 1's ``neural_net.py``, 2017 on).

Forms: a function ``(params, X, y, reg) -> (loss, grads)``; assignment 2's classes
``FullyConnectedNet(hidden_dims, input_dim, num_classes, ..., reg)`` and ``TwoLayerNet(input_dim,
hidden_dim, num_classes, weight_scale, reg)`` (from 2021 in assignment 1's ``fc_net.py`` too) with
``loss(X, y)``; assignment 1's ``TwoLayerNet(input_size, hidden_size, output_size, std=1e-4)`` with
``loss(X, y=None, reg=0.0)`` (through 2020). The L2 factor (``--l2-factor``): 1 for assignment 1's
``neural_net.py`` (its notebook's ``correct_loss`` from 2017 on), 0.5 for everything else (2016's
assignment 1 too: ``--l2-factor 0.5``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import fnnjax

from ._convention import (
    Case,
    Convention,
    Entry,
    Mismatch,
    Unpacked,
    coarsest,
    copy_tree,
    describe_value,
    gradient_array,
    match_path,
    near,
    scalar_value,
)

__all__ = ["CS231N", "Cs231n"]


A1_INIT = ("input_size", "hidden_size", "output_size")
"""The constructor parameters of assignment 1's ``neural_net.py`` ``TwoLayerNet`` (2016-2020)."""


def _cs231n_case(sizes, reg, n, optional=False):
    return Case(sizes, ("relu",) * (len(sizes) - 2), "softmax", "cross_entropy", reg, n, optional)


def _times(c: float, what: str) -> str:
    """``reg·W``, ``0.5·reg·Σ W²``, ``2·reg·W``: a multiple of reg in words."""
    return f"reg·{what}" if near(c, 1) else f"{c:.4g}·reg·{what}"


class Cs231n(Convention):
    """CS231n: row layout ``scores = X W + b``, ReLU hidden layers, softmax loss averaged over N,
    ``0.5 * reg * sum ||W||^2``; a function ``(params, X, y, reg) -> (loss, grads)`` or a class
    (``FullyConnectedNet``/``TwoLayerNet``) whose ``loss(X, y)`` returns ``(loss, grads)``."""

    name = "cs231n"
    title = "CS231n (row layout X W + b, softmax loss averaged over N, 0.5·reg·Σ W²)"
    contract = (
        "fn(params, X, y, reg) -> (loss, grads), or FullyConnectedNet/TwoLayerNet(...).loss(X, y) -> "
        "(loss, grads); params['W1']: (D, H), params['b1']: (H,)"
    )
    reference = "the softmax loss averaged over N + 0.5·reg·Σ W²"
    batch = "N"
    returns_loss = True

    all_cases = (
        _cs231n_case((5, 8, 4), 0.3, 7),
        _cs231n_case((6, 3), 0.0, 5, optional=True),  # hidden_dims=[]: the notebooks never build it
        _cs231n_case((4, 6, 6, 3), 0.1, 9),
        _cs231n_case((3, 5, 4, 6, 2), 0.0, 11),
        _cs231n_case((6, 6, 3), 0.05, 5),
        _cs231n_case((5, 8, 4), 0.0, 7),
        _cs231n_case((7, 5, 3), 0.2, 6),
        _cs231n_case((4, 9, 5, 3), 0.05, 7),
    )
    """The notebooks build one hidden layer (TwoLayerNet, FullyConnectedNet([H])) and more
    (FullyConnectedNet([H1, H2, ...])), never ``hidden_dims=[]``: that depth is optional."""

    course_metric = "elementwise"
    course_threshold = 1e-7
    course_source = "cs231n's rel_error; its notebooks expect about 1e-7 or less from their float64 gradient checks"
    l2_factor = 0.5
    owner = "cs231n"

    def cases(self, entry):
        if entry.kind == "class" and "hidden_dims" not in entry.init:  # TwoLayerNet: one hidden layer
            return tuple(c for c in self.all_cases if c.depth == 2)
        return self.all_cases

    def _form(self, entry: Entry) -> str:
        if entry.kind == "class" and any(name in entry.init for name in A1_INIT):
            return "a1"
        return entry.kind

    def _setup(self, entry, options):
        a1 = self._form(entry) == "a1"
        self.l2_factor = options.l2_factor if options.l2_factor is not None else (1.0 if a1 else 0.5)
        f = self.l2_factor
        if options.l2_factor is not None:
            self.owner = "this convention"
        elif a1:
            self.owner = "cs231n assignment 1 (2017 on)"
        term = f"{_times(f, 'Σ W²')}"
        source = (
            f"--l2-factor {f:g}"
            if options.l2_factor is not None
            else "cs231n assignment 1's neural_net.py, 2017 on; --l2-factor 0.5 for 2016's 0.5·reg·Σ W²"
        )
        if a1 or options.l2_factor is not None:  # the L2 term is not assignment 2's: say which one
            self.reference = f"the softmax loss averaged over N + {term} (L2 term {term}: {source})"
            self.title = f"CS231n (row layout X W + b, softmax loss averaged over N, L2 term {term}: {source})"

    def l2_coefficient(self, case):
        return 2 * self.l2_factor * case.l2

    def constructor_fills(self, entry):
        if self._form(entry) == "a1":
            return "input_size, hidden_size, output_size, std (and reg, given to loss(X, y, reg))"
        return (
            "input_dim, hidden_dim or hidden_dims, num_classes, weight_scale, reg, dtype, seed, dropout_keep_ratio, "
            "normalization (assignment 1's neural_net.py: input_size, hidden_size, output_size, std)"
        )

    def l2_hint(self, coefficient: float) -> str:
        """What to rerun with when a gradient's L2 term is ``coefficient·reg·W``, the other course year's."""
        if near(self.l2_factor, 1) and near(coefficient, 1):
            return "; the 2016 assignment's 0.5·reg·Σ W²? rerun with --l2-factor 0.5"
        if near(self.l2_factor, 0.5) and near(coefficient, 2):
            return "; if the course's loss is reg·Σ W² (cs231n assignment 1, 2017 on), rerun with --l2-factor 1"
        return ""

    def loss_l2_phrase(self, multiple: float) -> str:
        """The loss's regularisation is ``multiple`` times the right one (0: missing), in words."""
        f = self.l2_factor
        right = _times(f, "Σ W²")
        if near(multiple, 0):
            return f"the loss lacks the regularisation term {right}"
        hint = self.l2_hint(2 * f * multiple)
        return f"the loss adds {_times(f * multiple, 'Σ W²')} where {self.owner}'s loss adds {right}{hint}"

    def loss_layer_phrase(self, layer: int) -> str:
        """The loss lacks one layer's regularisation, in words."""
        return (
            f"the loss lacks {_times(self.l2_factor, f'‖W{layer}‖²')}, the regularisation of layer {layer} "
            "(of Σ over every W)"
        )

    def loss_bias_phrase(self) -> str:
        """The loss regularises the biases too, in words."""
        term = _times(self.l2_factor, "Σ W²")
        return f"the loss regularises the biases too; {self.owner}'s {term} has the weights only"

    def layers_to_params(self, layers):
        out = {}
        for l, layer in enumerate(layers, start=1):
            out[f"W{l}"] = layer.W.T
            out[f"b{l}"] = layer.b
        return out

    def params_to_layers(self, params):
        return tuple(fnnjax.Layer(params[f"W{l}"].T, params[f"b{l}"]) for l in range(1, len(params) // 2 + 1))

    def data(self, case, x, y):
        return {"X": x, "y": np.argmax(y, axis=1).astype(np.int64)}

    given_names = {"params": "params", "X": "X", "y": "y"}

    def init_kwargs(self, case: Case, entry: Entry) -> dict[str, Any]:
        """The constructor's keywords for a case: the sizes, reg, float64 (when it takes a dtype),
        then the ``--init`` values (which win)."""
        if self._form(entry) == "a1":
            kwargs: dict[str, Any] = {
                "input_size": case.sizes[0],
                "hidden_size": case.sizes[1],
                "output_size": case.sizes[-1],
                "std": 1e-2,
            }
        else:
            kwargs = {
                "input_dim": case.sizes[0],
                "num_classes": case.sizes[-1],
                "reg": case.l2,
                "weight_scale": 1e-2,
                "dtype": "float64",
                "dropout_keep_ratio": 1,  # not `dropout`: 0 (2016-2017) or 1 (2018-2020) means none
                "normalization": None,
                "seed": 0,
            }
            if "hidden_dims" in entry.init:
                kwargs["hidden_dims"] = list(case.sizes[1:-1])
            else:
                kwargs["hidden_dim"] = case.sizes[1]
        kwargs.update(dict(self.options.init))
        return kwargs

    def request(self, case, inputs, entry):
        data = copy_tree(inputs.data)
        if entry.kind == "class":
            request = {
                "init": self.init_kwargs(case, entry),
                "fills": self.constructor_fills(entry),
                "params": copy_tree(inputs.params),
                **data,
            }
            if self._form(entry) == "a1":  # loss(X, y, reg)
                request["loss_reg"] = case.l2
            return "cs231n-class", entry.name, request
        return "cs231n-function", entry.name, {"params": copy_tree(inputs.params), "reg": case.l2, **data}

    def unpack(self, result, case, inputs, entry, *, index=0, spec="your function"):
        what = f"{entry.name}(...).loss(X, y)" if entry.kind == "class" else f"{entry.name}(params, X, y, reg)"
        if entry.kind == "class":
            self._check_built(result.get("initial", {}), inputs.params, entry, case)
        if entry.kind == "class" and self._form(entry) == "a1":
            what = f"{entry.name}(...).loss(X, y, reg)"
        returned = result["returned"]
        if returned is None:
            raise Mismatch(f"not implemented yet: {what} returned None (the TODO is not done)")
        if not (isinstance(returned, (tuple, list)) and len(returned) == 2):
            raise Mismatch(f"{what} returned {describe_value(returned)}; cs231n's loss returns the pair (loss, grads)")
        loss, grads = returned
        if loss is None or (isinstance(grads, dict) and not grads):
            missing = "no loss" if loss is None else "an empty grads"
            raise Mismatch(f"not implemented yet: {what} returned {missing} (the TODO is not done)")
        value, loss_dtype = scalar_value(loss, "the loss it returned")
        if not isinstance(grads, dict):
            raise Mismatch(
                f"grads is {describe_value(grads)}; it must be a dict with the keys of params "
                f"({', '.join(sorted(inputs.params))})"
            )
        missing = sorted(set(inputs.params) - set(grads))
        if missing:
            raise Mismatch(
                f"grads has no {', '.join(repr(k) for k in missing)} (it has "
                f"{', '.join(repr(k) for k in sorted(map(str, grads))) or 'no keys'}); grads[k] is the "
                "gradient of the loss with respect to params[k], for every key of params"
            )
        leaves = [
            gradient_array(grads[k], f"grads[{k!r}]", tuple(inputs.params[k].shape), f"params[{k!r}]")
            for k in sorted(inputs.params)
        ]
        return Unpacked(leaves, coarsest(leaves), value, loss_dtype)

    def _check_built(self, initial: dict, params: dict, entry: Entry, case: Case) -> None:
        """The constructor built params with cs231n's keys and shapes (W1: (input_dim, H1), ...)."""
        if not isinstance(initial, dict):
            return
        got = set(initial)
        want = set(params)
        if not got:
            raise Mismatch(
                f"not implemented yet: {entry.name}.__init__ leaves self.params empty (the TODO is not done)"
            )
        if got != want:
            raise Mismatch(
                f"{entry.name}(...) built self.params with the keys "
                f"{', '.join(sorted(map(str, got))) or 'none'}; cs231n's are "
                f"{', '.join(sorted(want))} (W1..W{case.depth}, b1..b{case.depth})"
            )
        for k in sorted(want):
            shape = tuple(initial[k])
            if shape != tuple(params[k].shape):
                layer = int(k[1:])
                what = (
                    f"(input, output) = ({case.sizes[layer - 1]}, {case.sizes[layer]})"
                    if k[0] == "W"
                    else f"(output,) = ({case.sizes[layer]},)"
                )
                raise Mismatch(
                    f"{entry.name}(...) built self.params[{k!r}] with shape {shape}; cs231n's layout "
                    f"is {what}: scores = X @ W + b"
                )

    def leaf_info(self, path):
        m = match_path(r"\['([Wb])(\d+)'\]", path)
        return int(m.group(2)), m.group(1)

    def leaf_name(self, path):
        layer, kind = self.leaf_info(path)
        return f"grads['{kind}{layer}']"

    transposed_hint = "; dW = X.T @ dout has W's shape (D_in, D_out), like scores = X @ W + b"

    def factor_phrase(self, alpha, what, n):
        if near(alpha, -1):
            return f"sign flipped ({what} = -expected: dscores = probs - onehot(y), not onehot(y) - probs)"
        if near(alpha, n):
            return (
                f"a sum over the N = {n} samples where the mean belongs ({what} is N times too big: "
                "softmax_loss divides dscores by N)"
            )
        if near(alpha, 1 / n):
            return f"divided by N twice ({what} is 1/N = 1/{n} of the right one: softmax_loss already divides by N)"
        return None

    def l2_phrase(self, beta, is_weight, layer):
        f = self.l2_factor
        c = 2 * f * beta  # the returned L2 term is c·reg·W
        right = _times(2 * f, "W")
        rule = f"{self.owner}'s loss is {_times(f, 'Σ W²')}, so dW gains {right}"
        if not is_weight:
            return f"includes {_times(c, 'b')}, but cs231n does not regularise biases (db = Σ_i dout_i only)"
        if near(beta, 0):
            return f"lacks {right}: {rule}"
        why = ""
        if near(f, 0.5) and near(beta, 2):
            why = " (2·reg·W is the gradient of reg·Σ W²)"
        elif near(f, 0.5) and near(beta, 0.5):
            why = " (the 0.5 cancels the 2 of W²)"
        return f"gains {_times(c, 'W')} where {right} belongs: {rule}{why}{self.l2_hint(c)}"

    variants = {
        "no_hidden_fprime": "the ReLU mask is missing in the backward pass: relu_backward must pass dout only where "
        "the layer's input was positive (dx = dout * (x > 0))",
        "extra_output_fprime": "an extra softmax derivative on dscores: softmax_loss's gradient is already "
        "(probs - onehot(y)) / N",
    }

    def case_words(self, case):
        return f"{case.architecture} (N = {case.batch}), reg = {case.l2:g}"


CS231N = Cs231n()
