"""The Nielsen convention (network.py, network2.py): ``Network(sizes)``, sigmoid in every layer, the
cost of one example, ``backprop(x, y) -> (nabla_b, nabla_w)``.

The cost is the network's own: network.py's ½‖a − y‖² (``cost_derivative``), or network2.py's
``self.cost`` (``QuadraticCost`` or ``CrossEntropyCost``, told apart by what its ``fn(a, y)``
computes), read from the constructed network before the cases run.
"""

from __future__ import annotations

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

__all__ = ["NIELSEN", "Nielsen"]


def _nielsen_case(sizes, optional=False, loss="mse"):
    return Case(sizes, ("sigmoid",) * (len(sizes) - 2), "sigmoid", loss, 0.0, 1, optional)


def _shapes(value) -> list | None:
    if not isinstance(value, (list, tuple)):
        return None
    return [tuple(getattr(v, "shape", ())) for v in value]


def _weights_first(returned, params) -> bool:
    """Whether a backprop returned ``(nabla_w, nabla_b)``: the first list shaped like the weights, the
    second like the biases, and not the other way round (they differ whenever a layer has two inputs)."""
    weights = [tuple(w.shape) for w in params["weights"]]
    biases = [tuple(b.shape) for b in params["biases"]]
    first, second = _shapes(returned[0]), _shapes(returned[1])
    return weights != biases and first == weights and second == biases


class Nielsen(Convention):
    """Nielsen's network.py: ``Network(sizes)`` with ``weights[l]: (n_l, n_(l-1))``, ``biases[l]:
    (n_l, 1)``, sigmoid in every layer, the cost ½‖a − y‖² of one example, ``backprop(x, y) ->
    (nabla_b, nabla_w)``."""

    name = "nielsen"
    title = "Nielsen, Neural Networks and Deep Learning (network.py: sigmoid layers, ½‖a − y‖² of one example)"
    contract = (
        "Network(sizes).backprop(x, y) -> (nabla_b, nabla_w) (or (nabla_w, nabla_b), told apart by shape) "
        "for one example x: (n_0, 1); "
        "weights[l]: (n_(l+1), n_l), biases[l]: (n_(l+1), 1)"
    )
    reference = "the quadratic cost ½‖a − y‖² of one example"
    batch = None

    all_cases = (
        _nielsen_case((4, 5, 3)),
        _nielsen_case((3, 2), optional=True),  # no hidden layer: the book's networks have one or more
        _nielsen_case((3, 5, 5, 2)),
        _nielsen_case((4, 6, 3, 5, 2)),
        _nielsen_case((6, 4, 3)),
    )
    """The book's networks have at least one hidden layer (``[784, 30, 10]``); none is optional."""

    course_metric = "norm"
    course_threshold = 1e-7
    course_source = (
        "the book has no gradient check: deeplearning.ai's measure over every parameter at once, with cs231n's 1e-7"
    )

    def _setup(self, entry, options):
        if options.cost == "cross-entropy":
            self.all_cases = tuple(c._replace(loss="cross_entropy") for c in type(self).all_cases)
            self.title = (
                "Nielsen, Neural Networks and Deep Learning (network2.py with CrossEntropyCost: sigmoid layers, "
                "the cross-entropy cost of one example)"
            )
            self.reference = "the cross-entropy cost −Σ [y ln a + (1 − y) ln(1 − a)] of one example (CrossEntropyCost)"
            self.variants = {**type(self).variants, **_CROSS_ENTROPY_VARIANTS}
        elif options.cost == "quadratic":
            self.title = (
                "Nielsen, Neural Networks and Deep Learning (network2.py with QuadraticCost: sigmoid layers, "
                "½‖a − y‖² of one example)"
            )
            self.variants = {**type(self).variants, **_QUADRATIC_VARIANTS}

    def constructor_fills(self, entry):
        return "sizes (its first parameter), an activation parameter with 'sigmoid', the rest with their defaults"

    def layers_to_params(self, layers):
        return {"biases": [layer.b.reshape(-1, 1) for layer in layers], "weights": [layer.W for layer in layers]}

    def params_to_layers(self, params):
        return tuple(fnnjax.Layer(w, b.reshape(-1)) for w, b in zip(params["weights"], params["biases"]))

    def data(self, case, x, y):
        return {"x": x.T.copy(), "y": y.T.copy()}

    given_names = {"biases": "self.biases", "weights": "self.weights", "x": "x", "y": "y"}

    def request(self, case, inputs, entry):
        params = copy_tree(inputs.params)
        init = dict(self.options.init)
        request = {"sizes": list(case.sizes), "init": init, "fills": self.constructor_fills(entry)}
        return "nielsen", entry.name, {**request, **params, **copy_tree(inputs.data)}

    def unpack(self, result, case, inputs, entry, *, index=0, spec="your function"):
        returned = result["returned"]
        if not (isinstance(returned, (tuple, list)) and len(returned) == 2):
            raise Mismatch(
                f"backprop(x, y) returned {describe_value(returned)}; it must return the pair (nabla_b, nabla_w)"
            )
        order = ("biases", "weights")
        if _weights_first(returned, inputs.params):
            order = ("weights", "biases")  # (nabla_w, nabla_b): the student's own order, told apart by shape
        leaves = []
        for name, key in (("nabla_b", "biases"), ("nabla_w", "weights")):
            got = returned[order.index(key)]
            params = inputs.params[key]
            if not isinstance(got, (list, tuple)) or len(got) != len(params):
                raise Mismatch(
                    f"{name} is {describe_value(got)}; it must be a list of {len(params)} arrays, one "
                    f"per layer, shaped like self.{key}"
                )
            leaves += [
                gradient_array(g, f"{name}[{i}]", tuple(p.shape), f"self.{key}[{i}]")
                for i, (g, p) in enumerate(zip(got, params))
            ]
        return Unpacked(leaves, coarsest(leaves))

    def leaf_info(self, path):
        m = match_path(r"\['(biases|weights)'\]\[(\d+)\]", path)
        return int(m.group(2)) + 1, "W" if m.group(1) == "weights" else "b"

    def leaf_name(self, path):
        layer, kind = self.leaf_info(path)
        return f"nabla_{kind.lower()}[{layer - 1}]"

    def param_name(self, layer, kind):
        return f"self.{'weights' if kind == 'W' else 'biases'}[{layer - 1}]"

    transposed_hint = "; nabla_w[-l] = np.dot(delta, activations[-l-1].transpose()) has the weights' shape"

    def factor_phrase(self, alpha, what, n):
        if near(alpha, -1):
            return (
                f"sign flipped ({what} = -expected): cost_derivative(output_activations, y) is output_activations - y"
            )
        if near(alpha, 2):
            return f"off by a factor 2 ({what} is doubled): the cost ½‖a − y‖² has the derivative a − y, not 2 (a − y)"
        if near(alpha, 0.5):
            return f"off by a factor 1/2 ({what} is halved): the derivative of ½‖a − y‖² is a − y"
        return None

    variants = {
        "no_hidden_fprime": "sigmoid_prime(z) is missing in the hidden deltas: delta = "
        "np.dot(self.weights[-l+1].transpose(), delta) * sigmoid_prime(z)",
        "no_output_fprime": "sigmoid_prime(zs[-1]) is missing in the output delta: delta = "
        "self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])",
        "fprime_at_activation": "sigmoid_prime of the activation where sigmoid_prime(z) belongs: sigmoid_prime "
        "takes the weighted input z = zs[-l], not activations[-l]",
    }

    def layer_line(self, layer, names):
        return f"wrong only in layer {layer} ({', '.join(names)}, index {layer - 1}): every other layer is right"

    def case_words(self, case):
        return f"sizes {list(case.sizes)} (one example)"


_CROSS_ENTROPY_VARIANTS = {
    "extra_output_fprime": "the output delta has a sigmoid_prime(z) too many: with the cross-entropy cost "
    "CrossEntropyCost.delta(z, a, y) is (a - y), σ′ cancels (it is QuadraticCost's delta that has "
    "(a - y) * sigmoid_prime(z))",
}
"""network2.py with CrossEntropyCost: its classic mistake is QuadraticCost's delta."""

_QUADRATIC_VARIANTS = {
    "no_output_fprime": "sigmoid_prime(z) is missing in the output delta: QuadraticCost.delta(z, a, y) is "
    "(a - y) * sigmoid_prime(z) (only CrossEntropyCost's delta is a - y)",
}
"""network2.py with QuadraticCost: its output delta lives in QuadraticCost.delta."""


NIELSEN = Nielsen()
