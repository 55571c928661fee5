"""The cs231n convention: row layout ``scores = X W + b``, ReLU hidden layers, softmax loss
averaged over N, ``0.5 * reg * sum ||W||^2``."""

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


def _cs231n_case(sizes, reg, n):
    return Case(sizes, ("relu",) * (len(sizes) - 2), "softmax", "cross_entropy", reg, n)


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
        _cs231n_case((6, 3), 0.0, 5),
        _cs231n_case((4, 6, 6, 3), 0.1, 9),
        _cs231n_case((3, 5, 4, 6, 2), 0.0, 11),
        _cs231n_case((6, 6, 3), 0.05, 5),
        _cs231n_case((5, 8, 4), 0.0, 7),
    )

    def cases(self, entry):
        if entry.kind == "class" and "hidden_dims" not in entry.init:  # TwoLayerNet: one hidden layer
            return tuple(c for c in self.all_cases if c.depth == 2)
        return self.all_cases

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
        """The constructor's keywords for a case: the sizes, reg, float64 (when it takes a dtype)."""
        kwargs = {
            "input_dim": case.sizes[0],
            "num_classes": case.sizes[-1],
            "reg": case.l2,
            "weight_scale": 1e-2,
            "dtype": "float64",
            "dropout_keep_ratio": 1,
            "normalization": None,
            "seed": 0,
        }
        if "hidden_dims" in entry.init:
            kwargs["hidden_dims"] = list(case.sizes[1:-1])
        else:
            kwargs["hidden_dim"] = case.sizes[1]
        return kwargs

    def request(self, case, inputs, entry):
        data = copy_tree(inputs.data)
        if entry.kind == "class":
            return (
                "cs231n-class",
                entry.name,
                {"init": self.init_kwargs(case, entry), "params": copy_tree(inputs.params), **data},
            )
        return "cs231n-function", entry.name, {"params": copy_tree(inputs.params), "reg": case.l2, **data}

    def unpack(self, result, case, inputs, entry, *, index=0, spec="your function"):
        what = f"{entry.name}(...).loss(X, y)" if entry.kind == "class" else f"{entry.name}(params, X, y, reg)"
        if entry.kind == "class":
            self._check_built(result.get("initial", {}), inputs.params, entry, case)
        returned = result["returned"]
        if not (isinstance(returned, (tuple, list)) and len(returned) == 2):
            raise Mismatch(f"{what} returned {describe_value(returned)}; cs231n's loss returns the pair (loss, grads)")
        loss, grads = returned
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
        rule = "cs231n's loss is 0.5·reg·Σ W², so dW gains reg·W"
        if not is_weight:
            times = "reg·b" if near(beta, 1) else f"{beta:.4g}·reg·b"
            return f"includes {times}, but cs231n does not regularise biases (db = Σ_i dout_i only)"
        if near(beta, 0):
            return f"lacks reg·W: {rule}"
        if near(beta, 2):
            return f"gains 2·reg·W where reg·W belongs: {rule} (2·reg·W is the gradient of reg·Σ W²)"
        if near(beta, 0.5):
            return f"gains 0.5·reg·W where reg·W belongs: {rule} (the 0.5 cancels the 2 of W²)"
        return f"gains {beta:.4g}·reg·W where reg·W belongs: {rule}"

    variants = {
        "no_hidden_fprime": "the ReLU mask is missing in the backward pass: relu_backward must pass dout only where "
        "the layer's input was positive (dx = dout * (x > 0))",
        "extra_output_fprime": "an extra softmax derivative on dscores: softmax_loss's gradient is already "
        "(probs - onehot(y)) / N",
    }

    def describe_case(self, case):
        return f"{case.architecture} (N = {case.batch}), reg = {case.l2:g}"


CS231N = Cs231n()
