"""``fnnjax verify --backprop`` in the course conventions: students' files, written from each course's
published starter code, pass when right and fail with the course's own diagnosis for each classic
mistake (cs231n, deeplearning.ai, Nielsen); the convention is detected from what the file defines;
NumPy, JAX and PyTorch arrays; float32 results judged with float32 tolerances."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from fnnjax.errors import UsageError
from fnnjax.verify.grader._submission import Target, import_target
from fnnjax.verify.grader._user_backprop import SubmissionError, check_user_backprop

ROOT = Path(__file__).resolve().parent.parent
COURSES = ROOT / "examples" / "courses"
STUDENTS = Path(__file__).resolve().parent / "students"

CS231N = ("cs231n", "fc_net.py")
DLAI = ("deeplearning_ai", "dnn.py")
NIELSEN = ("nielsen", "network.py")

_cache = {}


def student(tmp_path_factory, name, folder, target, changes=(), edit=None):
    """A copy of a course example with some lines changed (each old text must occur exactly once)."""
    dest = tmp_path_factory.mktemp(name)
    shutil.copytree(COURSES / folder, dest, dirs_exist_ok=True)
    path = dest / (edit or target)
    source = path.read_text()
    for old, new in changes:
        assert source.count(old) == 1, f"{old!r} occurs {source.count(old)} times in {path.name}"
        source = source.replace(old, new)
    path.write_text(source)
    return str(dest / target)


def isolated(tmp_path_factory, name, folder, target, changes=(), edit=None, **kwargs):
    """check_user_backprop on the changed copy, in its own process (memoised: one run per file)."""
    if name not in _cache:
        _cache[name] = check_user_backprop(student(tmp_path_factory, name, folder, target, changes, edit), **kwargs)
    return _cache[name]


def in_process(tmp_path_factory, name, folder, target, changes=()):
    """The same, imported into this process (single-file students: quicker, same judging)."""
    if name not in _cache:
        module = import_target(Target("", student(tmp_path_factory, name, folder, target, changes), None, True))
        _cache[name] = check_user_backprop(module)
    return _cache[name]


def verdicts(report):
    return [c.passed for c in report.cases]


def diagnosis_text(report):
    first = report.first_failure
    return "\n".join((*first.diagnosis, *first.notes, first.error or ""))


# ----------------------------------------------------------------------------------------------
# Right submissions pass, in every form, with the convention detected


@pytest.mark.parametrize(
    "spec, convention, n_cases, why",
    [
        ("cs231n/fc_net.py", "cs231n", 8, "class FullyConnectedNet with loss(X, y) (detected)"),
        ("cs231n/fc_net.py:TwoLayerNet", "cs231n", 4, "class TwoLayerNet with loss(X, y) (named on the command line)"),
        ("cs231n/fc_loss.py", "cs231n", 8, "fc_net_loss(params, X, y, reg) (detected)"),
        ("deeplearning_ai/dnn.py", "deeplearning-ai", 6, "defines L_model_forward and L_model_backward (detected)"),
        ("nielsen/network.py", "nielsen", 5, "class Network with backprop(x, y) (detected)"),
    ],
)
def test_right_course_submissions_pass_in_their_own_process(spec, convention, n_cases, why):
    report = check_user_backprop(str(COURSES / spec))
    assert report.passed, report.render()
    assert report.isolated and report.conv.name == convention and len(report.cases) == n_cases
    assert why in report.entry.why
    text = report.render()
    assert f"in the {convention} convention" in text and f"PASS: all {n_cases} cases agree" in text
    assert {c.check.dtype for c in report.cases} == {"float64"}
    if convention == "cs231n":  # the returned loss is checked too
        assert all(c.loss is not None and c.loss.passed for c in report.cases)


def test_cases_vary_depth_widths_batch_and_reg():
    from fnnjax.verify.grader._conventions import CONVENTIONS

    for conv in CONVENTIONS.values():
        cases = conv.all_cases
        assert {c.depth for c in cases} == {1, 2, 3, 4}, conv.name
        assert any(m == n for c in cases for n, m in zip(c.sizes, c.sizes[1:])), conv.name  # a square layer
        assert any(m != n for c in cases for n, m in zip(c.sizes, c.sizes[1:]))  # nonsquare ones
        assert all(c.batch not in c.sizes for c in cases), conv.name  # N is no layer width
    assert {c.l2 > 0 for c in CONVENTIONS["cs231n"].all_cases} == {True, False}
    assert {c.batch for c in CONVENTIONS["nielsen"].all_cases} == {1}  # one example, as network.py


# ----------------------------------------------------------------------------------------------
# cs231n: the class form (FullyConnectedNet built in float64, its loss checked too)

REG_CASES = [True, False, True, False, True, False, True, True]  # which cs231n cases have reg > 0

CS231N_MISTAKES = [
    # name, file, changes, failing cases, diagnosis
    (
        "no_relu_mask",
        "layers.py",
        [("dx = dout * (x > 0)", "dx = dout")],
        [True, False, True, True, True, True, True, True],
        r"grads\['W1'\], grads\['b1'\]: the ReLU mask is missing in the backward pass: relu_backward must pass dout "
        r"only where the layer's input was positive",
    ),
    (
        "sum_not_mean",
        "layers.py",
        [("    dx /= N\n", "")],
        [True] * 8,
        r"grads\['W1'\], grads\['W2'\], grads\['b1'\], grads\['b2'\]: a sum over the N = 7 samples where the mean "
        r"belongs \(the data term is N times too big: softmax_loss divides dscores by N\)",
    ),
    (
        "reg_twice",
        "fc_net.py",
        [('grads[f"W{l}"] += self.reg * W', 'grads[f"W{l}"] += 2 * self.reg * W')],
        REG_CASES,
        r"grads\['W1'\], grads\['W2'\]: gains 2·reg·W where reg·W belongs: cs231n's loss is 0.5·reg·Σ W², "
        r"so dW gains reg·W",
    ),
    (
        "no_reg_gradient",
        "fc_net.py",
        [('            grads[f"W{l}"] += self.reg * W\n', "")],
        REG_CASES,
        r"grads\['W1'\], grads\['W2'\]: lacks reg·W: cs231n's loss is 0.5·reg·Σ W², so dW gains reg·W",
    ),
    (
        "loss_without_half",
        "fc_net.py",
        [("loss += 0.5 * self.reg * np.sum(W * W)", "loss += self.reg * np.sum(W * W)")],
        REG_CASES,
        r"loss: the gradient is right but the loss value is not: the loss adds reg·Σ W² where cs231n's loss adds "
        r"0.5·reg·Σ W²",
    ),
    (
        "last_layer_unregularised",
        "fc_net.py",
        [("for l in range(1, L + 1):\n            W", "for l in range(1, L):\n            W")],
        REG_CASES,
        r"(?s)grads\['W2'\]: lacks reg·W.*wrong only in layer 2 \(grads\['W2'\]\): every other layer is "
        r"right.*loss: the loss lacks 0.5·reg·‖W2‖², the regularisation of layer 2",
    ),
    (
        "bias_regularised",
        "fc_net.py",
        [
            (
                '            grads[f"W{l}"] += self.reg * W\n',
                '            grads[f"W{l}"] += self.reg * W\n'
                '            grads[f"b{l}"] += self.reg * self.params[f"b{l}"]\n',
            )
        ],
        REG_CASES,
        r"grads\['b1'\], grads\['b2'\]: includes reg·b, but cs231n does not regularise biases",
    ),
    (
        "sign_flipped",
        "layers.py",
        [("dx /= N", "dx /= -N")],
        [True] * 8,
        r"sign flipped \(the data term = -expected: dscores = probs - onehot\(y\), not onehot\(y\) - probs\)",
    ),
    (
        "transposed_dw",
        "layers.py",
        [("dw = x.reshape(x.shape[0], -1).T @ dout", "dw = dout.T @ x.reshape(x.shape[0], -1)")],
        [True] * 8,
        r"ValueError: operands could not be broadcast together with shapes \(8,5\) \(5,8\)",
    ),
    (
        "built_transposed",
        "fc_net.py",
        [("np.random.randn(dims[l - 1], dims[l])", "np.random.randn(dims[l], dims[l - 1])")],
        [True] * 8,
        r"FullyConnectedNet\(\.\.\.\) built self.params\['W1'\] with shape \(8, 5\); cs231n's layout is "
        r"\(input, output\) = \(5, 8\): scores = X @ W \+ b",
    ),
]


@pytest.mark.parametrize(
    "name, edit, changes, failing, diagnosis", CS231N_MISTAKES, ids=[m[0] for m in CS231N_MISTAKES]
)
def test_cs231n_mistake_fails_where_it_shows_with_the_course_diagnosis(
    tmp_path_factory, name, edit, changes, failing, diagnosis
):
    report = isolated(tmp_path_factory, f"cs231n_{name}", "cs231n", "fc_net.py", changes, edit)
    assert not report.passed
    assert [not v for v in verdicts(report)] == failing, report.render()
    assert re.search(diagnosis, diagnosis_text(report)), diagnosis_text(report)
    text = report.render()
    assert "FAIL:" in text and "case         5-8-4 (N = 7), reg = 0.3" in text


def test_cs231n_loss_disagreeing_with_a_right_gradient_is_named(tmp_path_factory):
    report = isolated(
        tmp_path_factory, "cs231n_loss_without_half", "cs231n", "fc_net.py", CS231N_MISTAKES[4][2], "fc_net.py"
    )
    first = report.first_failure
    assert first.check.passed and not first.loss.passed  # every gradient right, the loss value wrong
    assert first.loss.got == pytest.approx(first.loss.expected + (first.loss.expected - 1.932560), abs=1e-4)
    assert "FAIL  loss" in report.render()


def test_cs231n_float32_results_are_judged_with_float32_tolerances(tmp_path_factory):
    cast = [
        (
            "    L = len(params) // 2\n",
            "    params = {k: v.astype(np.float32) for k, v in params.items()}\n"
            "    X = X.astype(np.float32)\n    L = len(params) // 2\n",
        )
    ]
    report = isolated(tmp_path_factory, "cs231n_float32", "cs231n", "fc_loss.py", cast)
    assert report.passed, report.render()
    ad = [r for r in report.cases[0].check.leaves if r.oracle == "autodiff"]
    assert max(r.max_abs_err for r in ad) > 1e-9  # float32 rounding, far above float64's
    assert all(r.tolerance > 1e-8 for r in ad)  # eps32^(3/4), not eps64^(3/4)
    assert report.cases[0].loss.passed


def test_pytorch_tensors_are_converted(tmp_path):
    pytest.importorskip("torch")
    report = check_user_backprop(str(STUDENTS / "cs231n_torch.py"))
    assert report.passed, report.render()


# ----------------------------------------------------------------------------------------------
# deeplearning.ai: L_model_forward then L_model_backward; AL is checked too

DLAI_MISTAKES = [
    (
        "relu_backward_no_mask",
        [("    dZ[Z <= 0] = 0\n", "")],
        [True, False, True, True, True, True],
        r"(?s)dW1, db1: relu_backward does not zero dZ where Z <= 0.*wrong only in layer 1 \(dW1, db1\)",
    ),
    (
        "no_one_over_m",
        [("dW = 1 / m * np.dot(dZ, A_prev.T)", "dW = np.dot(dZ, A_prev.T)"), ("db = 1 / m * np.sum", "db = np.sum")],
        [True] * 6,
        r"dW1, dW2, db1, db2: a sum over the m = 7 examples where the mean belongs \(the gradient is m times too "
        r"big\): linear_backward's dW = \(1/m\) dZ A_prev.T",
    ),
    (
        "dAL_sign",
        [("dAL = -(np.divide", "dAL = (np.divide")],
        [True] * 6,
        r"sign flipped \(the gradient = -expected\): dAL = -\(np.divide\(Y, AL\) - np.divide\(1 - Y, 1 - AL\)\)",
    ),
    (
        "dW_transposed",
        [("dW = 1 / m * np.dot(dZ, A_prev.T)", "dW = 1 / m * np.dot(A_prev, dZ.T)")],
        [True] * 6,
        r"dW1: transposed: got has shape \(5, 4\) and equals expected.T \(shape \(4, 5\) expected\); linear_backward's",
    ),
    (
        "sigmoid_backward_of_AL_minus_Y",
        [("dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))", "dAL = AL - Y")],
        [True] * 6,
        r"sigmoid_backward was given AL - Y, so dZ came out as \(AL - Y\) σ'\(Z\)",
    ),
    (
        "relu_on_the_output",
        [('parameters["b" + str(L)], "sigmoid")', 'parameters["b" + str(L)], "relu")')],
        [True] * 6,
        r"L_model_forward's AL differs from sigmoid\(W_L A_\(L-1\) \+ b_L\)",
    ),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the student's log(0) on a ReLU output
@pytest.mark.parametrize("name, changes, failing, diagnosis", DLAI_MISTAKES, ids=[m[0] for m in DLAI_MISTAKES])
def test_deeplearning_ai_mistake_is_diagnosed(tmp_path_factory, name, changes, failing, diagnosis):
    report = in_process(tmp_path_factory, f"dlai_{name}", "deeplearning_ai", "dnn.py", changes)
    assert report.conv.name == "deeplearning-ai"
    assert [not v for v in verdicts(report)] == failing, report.render()
    assert re.search(diagnosis, diagnosis_text(report)), diagnosis_text(report)


def test_deeplearning_ai_db_without_keepdims_is_a_structure_failure(tmp_path_factory):
    report = isolated(
        tmp_path_factory,
        "dlai_keepdims",
        "deeplearning_ai",
        "dnn.py",
        [("np.sum(dZ, axis=1, keepdims=True)", "np.sum(dZ, axis=1)")],
    )
    assert not any(verdicts(report)) and {c.kind for c in report.cases} == {"structure"}
    assert report.cases[0].error == (
        "grads['db1'] has shape (4,) but parameters['b1'] has shape (4, 1); a gradient "
        "has the shape of its parameter; sum with keepdims=True: db = (1/m) "
        "np.sum(dZ, axis=1, keepdims=True)"
    )
    assert "WRONG STRUCTURE" in report.render()
    with pytest.raises(UsageError, match=r"grads\['db1'\] has shape \(4,\)"):  # in this process: at once
        in_process(
            tmp_path_factory,
            "dlai_keepdims_here",
            "deeplearning_ai",
            "dnn.py",
            [("np.sum(dZ, axis=1, keepdims=True)", "np.sum(dZ, axis=1)")],
        )


# ----------------------------------------------------------------------------------------------
# Nielsen: Network(sizes).backprop(x, y) for one example

NIELSEN_MISTAKES = [
    (
        "hidden_sigmoid_prime",
        [
            (
                "delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp",
                "delta = np.dot(self.weights[-l + 1].transpose(), delta)",
            )
        ],
        [True, False, True, True, True],
        r"(?s)nabla_b\[0\], nabla_w\[0\]: sigmoid_prime\(z\) is missing in the hidden deltas.*wrong only in layer 1 "
        r"\(nabla_b\[0\], nabla_w\[0\], index 0\)",
    ),
    (
        "output_sigmoid_prime",
        [
            (
                "delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])",
                "delta = self.cost_derivative(activations[-1], y)",
            )
        ],
        [True] * 5,
        r"sigmoid_prime\(zs\[-1\]\) is missing in the output delta",
    ),
    (
        "sigmoid_prime_of_activation",
        [
            ("* sigmoid_prime(zs[-1])", "* sigmoid_prime(activations[-1])"),
            ("sp = sigmoid_prime(z)", "sp = sigmoid_prime(activations[-l])"),
        ],
        [True] * 5,
        r"sigmoid_prime of the activation where sigmoid_prime\(z\) belongs",
    ),
    (
        "nabla_w_transposed",
        [
            (
                "nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())",
                "nabla_w[-l] = np.dot(activations[-l - 1], delta.transpose())",
            )
        ],
        [True, False, True, True, True],
        r"nabla_w\[0\]: transposed: got has shape \(4, 5\) and equals expected.T",
    ),
    (
        "cost_derivative_sign",
        [("return output_activations - y", "return y - output_activations")],
        [True] * 5,
        r"sign flipped \(the gradient = -expected\): cost_derivative\(output_activations, y\) is "
        r"output_activations - y",
    ),
    (
        "cost_derivative_doubled",
        [("return output_activations - y", "return 2 * (output_activations - y)")],
        [True] * 5,
        r"off by a factor 2 \(the gradient is doubled\): the cost ½‖a − y‖² has the derivative a − y",
    ),
]


@pytest.mark.parametrize("name, changes, failing, diagnosis", NIELSEN_MISTAKES, ids=[m[0] for m in NIELSEN_MISTAKES])
def test_nielsen_mistake_is_diagnosed(tmp_path_factory, name, changes, failing, diagnosis):
    report = in_process(tmp_path_factory, f"nielsen_{name}", "nielsen", "network.py", changes)
    assert report.conv.name == "nielsen"
    assert [not v for v in verdicts(report)] == failing, report.render()
    assert re.search(diagnosis, diagnosis_text(report)), diagnosis_text(report)


def test_nielsen_in_jax_float32_passes_with_float32_tolerances():
    report = check_user_backprop(str(STUDENTS / "nielsen_jax.py"))
    assert report.passed, report.render()
    ad = [r for r in report.cases[0].check.leaves if r.oracle == "autodiff"]
    assert all(r.tolerance > 1e-9 for r in ad)  # float32's eps^(3/4), the JAX arrays came back in float32


# ----------------------------------------------------------------------------------------------
# Detection and its errors


def write(tmp_path, name, source):
    path = tmp_path / name
    path.write_text(source)
    return str(path)


def test_convention_option_restricts_detection_and_explains_a_misfit(tmp_path):
    spec = str(COURSES / "nielsen" / "network.py")
    with pytest.raises(
        SubmissionError,
        match=r"nothing in .*network.py fits --convention cs231n \(it defines "
        r"Network, sigmoid, sigmoid_prime\); expected fn\(params, X, y, "
        r"reg\) -> \(loss, grads\), or FullyConnectedNet",
    ):
        check_user_backprop(spec, convention="cs231n")
    with pytest.raises(
        UsageError,
        match=r"unknown convention 'pytorch'; valid names are fnnjax, cs231n, "
        r"deeplearning-ai, nielsen",
    ):
        check_user_backprop(spec, convention="pytorch")
    both = write(
        tmp_path, "both.py", "class Network:\n    def backprop(self, x, y): pass\n\ndef loss(params, X, y, reg): pass\n"
    )
    with pytest.raises(
        SubmissionError,
        match=r"both.py defines several things to check: Network \(nielsen\), loss "
        r"\(cs231n\); name one as .*both.py:NAME and/or pass --convention NAME",
    ):
        check_user_backprop(both)
    nothing = write(tmp_path, "nothing.py", "def helper(z):\n    return z\n")
    with pytest.raises(
        SubmissionError,
        match=r"nothing in .*nothing.py fits a convention \(it defines helper\); "
        r"expected one of: fnnjax: fn\(mlp, params, x, y, loss=\.\.\., l2=\.\.\.\)",
    ):
        check_user_backprop(nothing)
    with pytest.raises(SubmissionError, match=r"nothing.py:helper is helper\(z\), which fits no convention"):
        check_user_backprop(f"{nothing}:helper")
    with pytest.raises(SubmissionError, match=r"nothing.py has no function 'backprop' \(it defines helper\)"):
        check_user_backprop(f"{nothing}:backprop")


def test_course_objects_run_in_this_process_too():
    module = import_target(Target("", str(COURSES / "nielsen" / "network.py"), None, True))
    report = check_user_backprop(module.Network, convention="nielsen")
    assert report.passed and not report.isolated and report.conv.name == "nielsen"


def test_right_submissions_leave_their_inputs_alone_and_report_json():
    import json

    report = check_user_backprop(str(COURSES / "cs231n" / "fc_loss.py"), seed=3)
    d = json.loads(json.dumps(report.to_dict()))
    assert d["status"] == "pass" and d["convention"] == "cs231n" and d["isolated"] is True
    assert d["entry"]["name"] == "fc_net_loss" and len(d["cases"]) == 8
    assert all(c["notes"] == [] and c["loss_value"]["passed"] for c in d["cases"])
    assert np.isfinite(d["seconds"])
