"""The deeplearning.ai convention (course 1, week 4): column layout ``Z = W A + b``, ReLU hidden
layers, a sigmoid output, the cross-entropy cost averaged over m."""

from __future__ import annotations

import numpy as np

import fnnjax

from ._convention import (
    Case,
    Convention,
    Mismatch,
    Unpacked,
    coarsest,
    copy_tree,
    describe_value,
    gradient_array,
    match_path,
    near,
)

__all__ = ["DEEPLEARNING_AI", "DeepLearningAI"]


def _dlai_case(sizes, m, optional=False):
    return Case(sizes, ("relu",) * (len(sizes) - 2), "sigmoid", "cross_entropy", 0.0, m, optional)


class DeepLearningAI(Convention):
    """deeplearning.ai, course 1 week 4: column layout ``Z = W A + b``, ReLU hidden layers, a sigmoid
    output and the cross-entropy cost averaged over m; ``L_model_forward`` then ``L_model_backward``."""

    name = "deeplearning-ai"
    title = "deeplearning.ai course 1 week 4 (column layout Z = W A + b, sigmoid output, cost averaged over m)"
    contract = (
        "L_model_forward(X, parameters) -> (AL, caches); L_model_backward(AL, Y, caches) -> grads "
        "with dW1, db1, ...; parameters['W1']: (n1, n0), parameters['b1']: (n1, 1)"
    )
    reference = "the cross-entropy cost -(1/m) Σ (Y log AL + (1 - Y) log(1 - AL))"
    batch = "m"
    checks_output = True

    all_cases = (
        _dlai_case((5, 4, 1), 7),
        _dlai_case((3, 1), 5, optional=True),  # one layer: the course builds [n_x, n_h, n_y] and deeper
        _dlai_case((4, 6, 6, 1), 9),
        _dlai_case((6, 5, 3, 4, 1), 11),
        _dlai_case((7, 3, 1), 5),
        _dlai_case((3, 5, 4, 1), 6),
    )
    """The course's networks have two layers or more (``[n_x, n_h, n_y]``, ``[12288, 20, 7, 5, 1]``),
    here at small sizes; a one-layer network is optional."""

    course_metric = "norm"
    course_threshold = 2e-7
    course_source = "deeplearning.ai's gradient_check_n, over every parameter at once, flags a difference above 2e-7"

    def layers_to_params(self, layers):
        out = {}
        for l, layer in enumerate(layers, start=1):
            out[f"W{l}"] = layer.W
            out[f"b{l}"] = layer.b.reshape(-1, 1)
        return out

    def params_to_layers(self, params):
        return tuple(fnnjax.Layer(params[f"W{l}"], params[f"b{l}"].reshape(-1)) for l in range(1, len(params) // 2 + 1))

    def data(self, case, x, y):
        return {"X": x.T.copy(), "Y": y.T.copy()}

    given_names = {"parameters": "parameters", "X": "X", "Y": "Y"}

    def request(self, case, inputs, entry):
        return "deeplearning-ai", None, {"parameters": copy_tree(inputs.params), **copy_tree(inputs.data)}

    def unpack(self, result, case, inputs, entry, *, index=0, spec="your function"):
        returned = result["returned"]
        AL, grads = returned["AL"], returned["grads"]
        m = case.batch
        if not isinstance(AL, np.ndarray) or AL.shape != (1, m) or AL.dtype.kind != "f":
            raise Mismatch(
                f"L_model_forward returned AL = {describe_value(AL)}; it must be the (1, m) = (1, {m}) "
                "array of sigmoid outputs"
            )
        if not isinstance(grads, dict):
            raise Mismatch(
                f"L_model_backward returned {describe_value(grads)}; it must return the dict grads "
                "with grads['dW' + str(l)] and grads['db' + str(l)] for l = 1..L"
            )
        wanted = [f"d{k}" for k in sorted(inputs.params)]
        missing = [k for k in wanted if k not in grads]
        if missing:
            have = ", ".join(sorted(map(str, grads))) or "no keys"
            raise Mismatch(
                f"grads has no {', '.join(repr(k) for k in missing)} (it has {have}); L_model_backward "
                f"must return grads['dW' + str(l)] and grads['db' + str(l)] for l = 1..{case.depth}"
            )
        leaves = []
        for k in sorted(inputs.params):
            hint = "; sum with keepdims=True: db = (1/m) np.sum(dZ, axis=1, keepdims=True)" if k[0] == "b" else ""
            leaves.append(
                gradient_array(
                    grads[f"d{k}"], f"grads['d{k}']", tuple(inputs.params[k].shape), f"parameters['{k}']", hint
                )
            )
        return Unpacked(leaves, coarsest(leaves), output=AL)

    def leaf_info(self, path):
        m = match_path(r"\['([Wb])(\d+)'\]", path)
        return int(m.group(2)), m.group(1)

    def leaf_name(self, path):
        layer, kind = self.leaf_info(path)
        return f"d{kind}{layer}"

    transposed_hint = "; linear_backward's dW = (1/m) dZ A_prev.T has W's shape (n_l, n_(l-1))"

    def factor_phrase(self, alpha, what, n):
        if near(alpha, -1):
            return (
                f"sign flipped ({what} = -expected): dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL)), "
                "mind the leading minus"
            )
        if near(alpha, n):
            return (
                f"a sum over the m = {n} examples where the mean belongs ({what} is m times too big): "
                "linear_backward's dW = (1/m) dZ A_prev.T and db = (1/m) np.sum(dZ, axis=1, keepdims=True)"
            )
        if near(alpha, 1 / n):
            return (
                f"divided by m twice ({what} is 1/m = 1/{n} of the right one): the 1/m belongs in linear_backward only"
            )
        return None

    def case_words(self, case):
        return f"layers_dims {list(case.sizes)} (m = {case.batch})"

    variants = {
        "no_hidden_fprime": "relu_backward does not zero dZ where Z <= 0 (dZ = np.array(dA, copy=True); "
        "dZ[Z <= 0] = 0)",
        "extra_output_fprime": "sigmoid_backward was given AL - Y, so dZ came out as (AL - Y) σ'(Z); give it "
        "dAL = -(Y/AL - (1 - Y)/(1 - AL)), whose sigmoid_backward is dZ = AL - Y",
        "fprime_at_activation": "σ'(A) where σ'(Z) belongs: sigmoid_backward takes the cache Z, not the activation",
    }


DEEPLEARNING_AI = DeepLearningAI()
