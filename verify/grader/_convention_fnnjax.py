"""The fnnjax convention: ``fn(mlp, params, x, y, loss=..., l2=...)`` returns ``tuple(fnnjax.Layer(dW, db))``."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

import fnnjax
from fnnjax.gradcheck import leaf_layout

from ._convention import BATCH_SIZE, Case, Convention, Inputs, Mismatch, Unpacked, match_path, near

__all__ = ["FNNJAX", "Fnnjax"]


def _param_name(path: str) -> str:
    """``[1].W`` -> ``W^(2)``."""
    m = re.fullmatch(r"\[(\d+)\]\.(W|b)", path)
    return f"{m.group(2)}^({int(m.group(1)) + 1})" if m else path


def _to_layers(tree: Any) -> Any:
    """Decoded ``Layer`` named tuples back to :class:`fnnjax.Layer` (other structures unchanged)."""
    if hasattr(type(tree), "_fields") and type(tree).__name__ == "Layer" and tuple(type(tree)._fields) == ("W", "b"):
        return fnnjax.Layer(*(_to_layers(x) for x in tree))
    if isinstance(tree, list):
        return [_to_layers(x) for x in tree]
    if isinstance(tree, tuple) and not hasattr(type(tree), "_fields"):
        return tuple(_to_layers(x) for x in tree)
    return tree


class Fnnjax(Convention):
    """fnnjax's own API: ``fn(mlp, params, x, y, loss=..., l2=...)`` returns ``tuple(fnnjax.Layer(dW, db))``."""

    name = "fnnjax"
    title = "fnnjax (the notes' conventions)"
    contract = "fn(mlp, params, x, y, loss=..., l2=...) -> tuple of fnnjax.Layer(dW, db), the gradient of R (F7)"
    reference = "fnnjax.loss (F7)"
    batch = "N"

    all_cases = (
        Case((4, 6, 3), ("relu",), "softmax", "cross_entropy", 0.1),
        Case((4, 3), (), "softmax", "cross_entropy", 0.0),
        Case((3, 5, 4, 2), ("tanh", "sigmoid"), "sigmoid", "cross_entropy", 0.0),
        Case((5, 4, 6, 3, 2), ("leaky_relu", "softplus", "identity"), "identity", "mse", 0.1),
        Case((3, 6, 4, 3), ("step", "relu"), "tanh", "mse", 0.05),
        Case((2, 5, 5, 1), ("sigmoid", "tanh"), "sigmoid", "squared_error", 0.1),
    )

    def configured(self, entry, options):
        """fnnjax's own convention has no options: always itself (judged by its float64 tolerances)."""
        return self

    def layers_to_params(self, layers):
        return tuple(layers)

    def params_to_layers(self, params):
        return tuple(params)

    def data(self, case, x, y):
        return {"x": x, "y": y}

    def request(self, case, inputs, entry):
        return (
            "fnnjax",
            entry.name,
            {
                "sizes": list(case.sizes),
                "hidden": list(case.hidden),
                "output": case.output,
                "loss": case.loss,
                "l2": case.l2,
                "params": [[np.array(l.W), np.array(l.b)] for l in inputs.params],
                "x": inputs.x.copy(),
                "y": inputs.y.copy(),
            },
        )

    def unpack(self, result, case, inputs, entry, *, index=0, spec="your function"):
        return self.check_returned(_to_layers(result["returned"]), case, index, inputs, spec)

    def check_returned(self, grads, case: Case, index: int, inputs: Inputs, spec: str) -> Unpacked:
        """The returned gradient's leaves as float64 arrays, or a :class:`Mismatch` naming what is wrong."""
        import jax

        layout = leaf_layout(inputs.params)
        where = f"case {index + 1} ({case.architecture}, {case.activations}, {case.loss}, l2 = {case.l2:g})"
        got = jax.tree_util.tree_structure(grads)
        if got != layout.treedef:
            raise Mismatch(
                f"{spec} returned {_describe_tree(grads)} in {where}, but the gradient must have params' "
                f"structure, a tuple of {case.depth} fnnjax.Layer(W, b): return "
                f"tuple(fnnjax.Layer(dW, db) for each layer) (expected treedef {layout.treedef}; "
                f"got treedef {got})"
            )
        out = []
        for path, shape, leaf in zip(layout.paths, layout.shapes, jax.tree_util.tree_leaves(grads)):
            gshape = tuple(np.shape(leaf))
            name = _param_name(path)
            if gshape != shape and not (len(shape) == 2 and gshape == shape[::-1]):
                raise Mismatch(
                    f"{spec} returned shape {gshape} for d{name} in {where}, but {name} has "
                    f"shape {shape}; a gradient has the shape of its parameter"
                )
            gdt = np.asarray(leaf).dtype if isinstance(leaf, np.ndarray) else jax.numpy.result_type(leaf)
            if gdt != np.dtype(layout.dtype):
                raise Mismatch(
                    f"{spec} returned {gdt} for d{name} in {where}, but the params are {layout.dtype}; "
                    "compute in the params' dtype (e.g. jnp.zeros(shape, params[0].W.dtype))"
                )
            out.append(np.asarray(leaf, np.float64))
        return Unpacked(out, layout.dtype)

    def leaf_info(self, path):
        m = match_path(r"\[(\d+)\]\.(W|b)", path)
        return int(m.group(1)) + 1, m.group(2)

    def leaf_name(self, path):
        return _param_name(path)

    def param_name(self, layer, kind):
        return f"{kind}^({layer})"

    def factor_phrase(self, alpha, what, n):
        if near(alpha, -1):
            return f"sign flipped ({what} = -expected: y - a where a - y belongs?)"
        if near(alpha, n) and n > 1:
            return (
                f"a sum over the batch where the mean belongs ({what} is N = {n} times too big; F13 averages with 1/N)"
            )
        if near(alpha, 1 / n) and n > 1:
            return f"divided by N twice ({what} is 1/N = 1/{n} of the right one)"
        if near(alpha, 2):
            return f"off by a constant factor 2 ({what} is doubled: 2 (a - y) for mse = 1/2 ||a - y||^2?)"
        if near(alpha, 0.5):
            return (
                f"off by a constant factor 1/2 ({what} is halved: a - y for squared_error = ||a - y||^2, "
                "whose derivative is 2 (a - y)?)"
            )
        return None

    def l2_phrase(self, beta, is_weight, layer):
        if not is_weight:
            if near(beta, 1):
                return (
                    f"bias decayed: db^({layer}) includes l2 b^({layer}), but the L2 term excludes biases "
                    "(F7, F13: dR/db = (1/N) sum_i delta_i)"
                )
            return f"db^({layer}) includes {beta:.4g} l2 b^({layer}), but biases are not regularised (F7)"
        if near(beta, 0):
            return f"missing the L2 term l2 W^({layer}) (F13: dR/dW^(l) = (1/N) sum_i delta_i a_i^T + l2 W^(l))"
        if near(beta, 2):
            return (
                f"extra L2 term: 2 l2 W^({layer}) where l2 W^({layer}) belongs (the gradient of (l2/2) ||W||^2 is l2 W)"
            )
        if near(beta, 1 / BATCH_SIZE):
            return f"the L2 term is divided by N (l2 W^({layer}) / {BATCH_SIZE}); the penalty is not averaged"
        if near(beta, -1):
            return f"the L2 term has the wrong sign (-l2 W^({layer}))"
        return f"the L2 term is {beta:.4g} l2 W^({layer}) instead of l2 W^({layer})"

    variants = {
        "no_hidden_fprime": "missing f'(z^(l)) in the hidden error terms (F11: delta^(l) = f'(z^(l)) * "
        "(W^(l+1)T delta^(l+1)))",
        "no_output_fprime": "missing the output derivative f_L'(z^(L)) in delta^(L) (F10: delta^(L) = dL/da^(L) * "
        "f_L'(z^(L)))",
        "extra_output_fprime": "an extra f_L'(z^(L)) in delta^(L): with cross-entropy it cancels and delta^(L) = "
        "y_hat - y (F10)",
        "fprime_at_activation": "f' evaluated at the activation a^(l) where the net input z^(l) belongs (F11: "
        "f'(z^(l)))",
    }

    def layer_line(self, layer, names):
        return f"wrong only in layer {layer}: every other layer is right"

    def case_words(self, case):
        return (
            f"{case.architecture} (N = {case.batch}), activations {case.activations}, loss {case.loss}, "
            f"l2 = {case.l2:g}"
        )


def _describe_tree(tree) -> str:
    if isinstance(tree, (tuple, list)):
        kinds = sorted({type(t).__name__ for t in tree})
        plural = "" if len(tree) == 1 else "s"
        return f"a {type(tree).__name__} of {len(tree)} {'/'.join(k + plural for k in kinds) or 'items'}"
    return f"a {type(tree).__name__}"


FNNJAX = Fnnjax()
