"""Forms found in real hand-ins, each reproduced by a submission written here: a Nielsen port whose
backward pass is renamed, returns weights first, and whose file runs the book's script at import;
a deeplearning.ai file that imports the course's ``dnn_utils`` without including it; cs231n code
written for the NumPy of its day (``np.float``, ``np.reshape(newshape=)``); Python 2 names that only
fail when the code runs.

Each verdict is also established here, independently of the grader: the submission's own gradient
against central differences of the course's loss.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from course_math import central_differences

from fnnjax.errors import UsageError
from fnnjax.verify.grader._convention_nielsen import NIELSEN
from fnnjax.verify.grader._functions import gradable
from fnnjax.verify.grader._submission import describe, import_target, load_notes, parse_target
from fnnjax.verify.grader._user_backprop import SubmissionError, check_user_backprop

FORMS = Path(__file__).resolve().parent / "submissions" / "real_forms"


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_a_nielsen_port_whose_script_fails_at_import_keeps_its_definitions_and_says_so():
    module = import_target(parse_target(str(FORMS / "network_ported.py")))
    notes = load_notes(module)
    assert "training_data" not in vars(module) and "Network" in vars(module)
    assert any("imports the file itself" in n for n in notes), notes
    assert any("runs a script at import that failed (FileNotFoundError" in n for n in notes), notes
    assert sum("mnist_loader_here" in n for n in notes) == 1, notes  # said once
    description = describe(module)
    assert "back_propagation" in description["classes"]["Network"]["methods"]
    # its feedforward(self, a, save=True) returns (zs, activations): another function than the book's
    assert gradable(description) == (None, (), "")  # nothing of the book's to grade on its own
    book = describe(import_target(parse_target("examples/courses/nielsen/network.py")))
    assert [s.name for s in gradable(book)[1]] == ["feedforward", "cost_derivative"]

    # independently: its back_propagation is right, weights first
    rng = np.random.default_rng(0)
    net = module.Network([3, 4, 2])
    x, y = rng.standard_normal((3, 1)), rng.uniform(size=(2, 1))

    def cost():
        a = x
        for w, b in zip(net.weights, net.biases):
            a = _sigmoid(w @ a + b)
        return 0.5 * float(np.sum((a - y) ** 2))

    nabla_w, nabla_b = net.back_propagation(x, y)
    for got, want in zip([*nabla_w, *nabla_b], central_differences(cost, [*net.weights, *net.biases])):
        assert np.allclose(got, want, atol=1e-8)


def test_a_nielsen_port_with_a_renamed_backward_pass_returning_weights_first_is_graded_right():
    report = check_user_backprop(str(FORMS / "network_ported.py"), seed=3)
    assert report.passed, report.render()
    assert report.convention.name == "nielsen" and "back_propagation(x, y)" in report.entry.why
    assert any("runs a script at import that failed" in n for n in report.notes), report.notes
    assert report.to_dict()["notes"] == list(report.notes)


@pytest.mark.parametrize("order", ["biases first", "weights first"])
def test_nielsen_pairs_are_told_apart_by_shape_and_a_wrong_pair_still_fails(order):
    case = NIELSEN.all_cases[0]
    rng = np.random.default_rng(1)
    params = {
        "weights": [rng.standard_normal((n, m)) for m, n in zip(case.sizes[:-1], case.sizes[1:])],
        "biases": [rng.standard_normal((n, 1)) for n in case.sizes[1:]],
    }

    class Inputs:
        pass

    inputs = Inputs()
    inputs.params = params  # type: ignore[attr-defined]
    pair = (params["biases"], params["weights"])
    returned = pair if order == "biases first" else pair[::-1]
    unpacked = NIELSEN.unpack({"returned": returned}, case, inputs, None)
    shapes = [tuple(leaf.shape) for leaf in unpacked.grads]
    assert shapes == [b.shape for b in params["biases"]] + [w.shape for w in params["weights"]]
    with pytest.raises(Exception, match=r"nabla_b\[0\] has shape"):  # two weight lists: neither order fits
        NIELSEN.unpack({"returned": (params["weights"], params["weights"])}, case, inputs, None)


def test_the_course_helper_a_deeplearning_ai_file_imports_is_supplied_and_said():
    module = import_target(parse_target(str(FORMS / "dnn_without_helpers.py")))
    assert any("imports dnn_utils, which the hand-in does not include" in n for n in load_notes(module))
    assert "dnn_utils" not in sys.modules
    # independently: its L_model_backward against central differences of the cross-entropy cost
    rng = np.random.default_rng(2)
    dims = [4, 5, 1]
    params = {}
    for i in range(1, len(dims)):
        params[f"W{i}"] = rng.standard_normal((dims[i], dims[i - 1]))
        params[f"b{i}"] = rng.standard_normal((dims[i], 1))
    X, Y = rng.standard_normal((4, 6)), rng.integers(0, 2, (1, 6)).astype(float)
    AL, caches = module.L_model_forward(X, params)
    grads = module.L_model_backward(AL, Y, caches)

    def cost():
        a = np.maximum(params["W1"] @ X + params["b1"], 0)
        a = _sigmoid(params["W2"] @ a + params["b2"])
        return float(-np.mean(Y * np.log(a) + (1 - Y) * np.log(1 - a)))

    keys = sorted(params)
    for key, want in zip(keys, central_differences(cost, [params[k] for k in keys])):
        assert np.allclose(grads["d" + key], want, atol=1e-7)


def test_cs231n_code_for_the_numpy_of_its_day_is_graded_on_its_mathematics():
    report = check_user_backprop(str(FORMS / "fc_net_old_numpy.py"), seed=1)
    assert report.passed, report.render()
    assert not hasattr(np, "product")  # the grader's own NumPy is untouched: only the submission's process


def test_python_2_names_that_fail_only_when_the_code_runs_make_the_file_ungradable_in_one_line():
    with pytest.raises(
        SubmissionError,
        match=r"cannot grade .*fc_net_python2_names.py: it is Python 2 code: "
        r"NameError: name 'xrange' is not defined \(xrange is Python 2;.*line 9\)",
    ):
        check_user_backprop(str(FORMS / "fc_net_python2_names.py"), seed=1)


def test_a_folder_given_to_check_user_backprop_names_check_handin():
    folder = Path(__file__).resolve().parent / "submissions" / "handins" / "dlai_w4a1"
    with pytest.raises(UsageError, match=r"is a folder of files, not one submission: grade it with check_handin\("):
        check_user_backprop(str(folder))
    with pytest.raises(UsageError, match=r"is a \.zip of files, not one submission"):
        check_user_backprop("hand-in.zip")
