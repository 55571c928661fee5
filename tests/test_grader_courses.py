"""The course grader judges each course's forms as the course does: cs231n assignment 1's
``neural_net.py`` with its L2 factor, Nielsen's network2.py with its own cost, constructors it cannot
fill (named once, with ``--init``), unfinished starter code, the depths the course builds (others
optional), and the course's own standard of "right" (``--strict`` for fnnjax's float64 bound).

Every verdict is also established here, independently of the grader: the submission's own code in
float64 against central differences of the course's loss written below.
"""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from course_math import central_differences

from fnnjax.errors import UsageError
from fnnjax.verify.grader._user_backprop import SubmissionError, check_user_backprop

SUBMISSIONS = Path(__file__).resolve().parent / "submissions" / "courses"

_modules: dict[str, object] = {}
_reports: dict[tuple, object] = {}


def load(name: str):
    """The submission imported into this process (its own module object)."""
    if name not in _modules:
        spec = importlib.util.spec_from_file_location(f"_courses_{name}", SUBMISSIONS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[name] = module
    return _modules[name]


def report_for(name: str, **kwargs):
    """check_user_backprop on the imported submission (memoised per file and options)."""
    key = (name, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    if key not in _reports:
        _reports[key] = check_user_backprop(load(name), **kwargs)
    return _reports[key]


def scored(report):
    return [c.passed for c in report.cases if not c.case.optional]


def diagnosis(report):
    first = next(c for c in report.cases if not c.passed)
    return "\n".join((*first.diagnosis, *first.notes, first.error or ""))


# ----------------------------------------------------------------------------------------------
# The courses' losses, written here (float64), and central differences


def rel_error(x, y):
    """‖x − y‖ / (‖x‖ + ‖y‖) (deeplearning.ai's measure, per array: central differences of 1e-6 leave
    about 1e-10 absolute, which an elementwise measure would magnify on a near-zero element)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(np.linalg.norm(x - y) / max(1e-300, np.linalg.norm(x) + np.linalg.norm(y)))


def cs231n_loss(params, X, y, reg, factor):
    """Softmax loss averaged over N + factor·reg·Σ‖W‖², two layers with ReLU."""
    h = np.maximum(0, X @ params["W1"] + params["b1"])
    s = h @ params["W2"] + params["b2"]
    s = s - s.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean() + factor * reg * (np.sum(params["W1"] ** 2) + np.sum(params["W2"] ** 2))


def a1_error(module, factor, reg=0.2, **init):
    """The largest rel_error of an assignment-1 TwoLayerNet's own gradient against central
    differences of the course loss with the given L2 factor (and of its loss value)."""
    net = module.TwoLayerNet(5, 7, 3, **init)
    rng = np.random.default_rng(1)
    net.params = {
        "W1": rng.normal(0, 0.5, (5, 7)),
        "b1": rng.normal(0, 0.3, 7),
        "W2": rng.normal(0, 0.5, (7, 3)),
        "b2": rng.normal(0, 0.3, 3),
    }
    X, y = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)
    loss, grads = net.loss(X, y, reg=reg)
    keys = sorted(net.params)
    numeric = central_differences(lambda: cs231n_loss(net.params, X, y, reg, factor), [net.params[k] for k in keys])
    worst = max(rel_error(grads[k], n) for k, n in zip(keys, numeric))
    return max(worst, rel_error(np.float64(loss), np.float64(cs231n_loss(net.params, X, y, reg, factor))))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def nielsen_error(net, cost, sizes=(4, 5, 3)):
    """The largest rel_error of a Nielsen network's own backprop against central differences of
    the quadratic or cross-entropy cost of one example."""
    rng = np.random.default_rng(2)
    net.weights = [rng.normal(0, 1, (m, n)) for n, m in zip(sizes[:-1], sizes[1:])]
    net.biases = [rng.normal(0, 0.5, (m, 1)) for m in sizes[1:]]
    x, y = rng.normal(size=(sizes[0], 1)), rng.integers(0, 2, (sizes[-1], 1)).astype(float)

    def f():
        a = x
        for w, b in zip(net.weights, net.biases):
            a = sigmoid(w @ a + b)
        if cost == "quadratic":
            return 0.5 * np.sum((a - y) ** 2)
        return -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a))

    nabla_b, nabla_w = net.backprop(x, y)
    numeric = central_differences(f, [*net.biases, *net.weights])
    return max(rel_error(g, n) for g, n in zip([*nabla_b, *nabla_w], numeric))


def with_mistake(tmp_path, name: str, old: str, new: str):
    """The submission with one line changed (a classic mistake), imported into this process."""
    source = (SUBMISSIONS / f"{name}.py").read_text()
    assert source.count(old) == 1, old
    path = tmp_path / f"{name}_{len(list(tmp_path.iterdir()))}.py"
    path.write_text(source.replace(old, new))
    spec = importlib.util.spec_from_file_location(f"_wrong_{path.stem}_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fails_by_the_course_standard(report, words: str) -> None:
    """Wrong: not passed, the diagnosis says ``words``, and no failing case was let through."""
    assert not report.passed
    assert re.search(words, diagnosis(report)), diagnosis(report)
    wrong = [c for c in report.cases if not c.passed and not c.case.optional]
    assert wrong and not any("passes by the course's standard" in n for c in wrong for n in c.notes)


# ----------------------------------------------------------------------------------------------
# cs231n assignment 1: TwoLayerNet(input_size, hidden_size, output_size, std), loss(X, y, reg)
# (one test per L2 factor: the cases of one setting share their compiled reference programs)


def test_a1_is_judged_with_its_own_l2_factor_2017_on(tmp_path):
    right = load("a1_neural_net_2017")
    assert a1_error(right, factor=1.0) < 1e-6  # independently: right for reg·Σ‖W‖²
    report = report_for("a1_neural_net_2017")
    assert report.passed and report.conv.name == "cs231n", report.render()
    assert [c.case.depth for c in report.cases] == [2] * len(report.cases) and len(report.cases) >= 4
    assert "cs231n assignment 1's neural_net.py" in report.entry.why
    head = report.render().splitlines()[0]
    assert "reg·Σ W² (L2 term reg·Σ W²: cs231n assignment 1's neural_net.py, 2017 on; --l2-factor 0.5" in head

    old_year = load("a1_neural_net_2016")  # 0.5·reg·Σ‖W‖²: wrong for 2017 on
    assert a1_error(old_year, factor=1.0) > 1e-3  # independently
    report = report_for("a1_neural_net_2016")
    assert scored(report) == [c.case.l2 == 0 for c in report.cases]  # wrong wherever reg > 0
    fails_by_the_course_standard(
        report,
        r"grads\['W1'\], grads\['W2'\]: gains reg·W where 2·reg·W belongs: cs231n assignment 1 \(2017 on\)'s "
        r"loss is reg·Σ W², so dW gains 2·reg·W; the 2016 assignment's 0.5·reg·Σ W²\? rerun with --l2-factor 0.5",
    )
    assert "loss: the loss adds 0.5·reg·Σ W² where cs231n assignment 1 (2017 on)'s loss adds reg·Σ W²" in (
        diagnosis(report)
    )

    half_gradient = load("a1_neural_net_no_2reg")  # the loss of 2017, the gradient of 2016
    assert a1_error(half_gradient, factor=1.0) > 1e-3 and a1_error(half_gradient, factor=0.5) > 1e-3
    report = report_for("a1_neural_net_no_2reg")
    assert scored(report) == [c.case.l2 == 0 for c in report.cases]
    fails_by_the_course_standard(report, r"gains reg·W where 2·reg·W belongs")
    first = next(c for c in report.cases if not c.passed)
    assert first.loss.passed and not first.check.passed

    for old, new, words in [
        ("+ 2 * reg * W1", "", r"grads\['W1'\]: lacks 2·reg·W"),
        ("+ 2 * reg * W1", "+ 4 * reg * W1", r"gains 4·reg·W where 2·reg·W belongs"),
    ]:
        wrong = with_mistake(tmp_path, "a1_neural_net_2017", old, new)
        assert a1_error(wrong, factor=1.0) > 1e-3  # independently
        fails_by_the_course_standard(check_user_backprop(wrong), words)


def test_a1_2016_with_l2_factor_half_and_fc_net_crashing_on_empty_hidden_dims(tmp_path):
    from fnnjax.verify.grader._gradescope import gradescope_results

    old_year = load("a1_neural_net_2016")
    assert a1_error(old_year, factor=0.5) < 1e-6  # independently: right for 0.5·reg·Σ‖W‖²
    half = report_for("a1_neural_net_2016", l2_factor=0.5)
    assert half.passed, half.render()
    assert "0.5·reg·Σ W² (L2 term 0.5·reg·Σ W²: --l2-factor 0.5)" in half.render().splitlines()[0]

    # a FullyConnectedNet right at every depth the notebooks build, crashing on hidden_dims=[]
    module = load("fc_net_no_empty_hidden")
    net = module.FullyConnectedNet([7], input_dim=5, num_classes=3, reg=0.2, dtype=np.float64)
    assert a1_like_error(net, reg=0.2) < 1e-6  # independently
    with pytest.raises(IndexError):
        module.FullyConnectedNet([], input_dim=5, num_classes=3)
    report = report_for("fc_net_no_empty_hidden")
    assert report.passed, report.render()
    optional = [c for c in report.cases if c.case.optional]
    assert [c.case.depth for c in optional] == [1] and not optional[0].passed
    assert "[optional: a depth the course never builds, no points]" in report.render()
    assert {c.case.depth for c in report.cases if not c.case.optional} == {2, 3, 4}
    results = gradescope_results(report, points=10)
    assert results["score"] == 10
    optional_tests = [t for t in results["tests"] if "[optional: a depth the course never builds" in t["name"]]
    assert len(optional_tests) == 1 and optional_tests[0]["max_score"] == 0


def test_l2_factor_must_be_positive():
    with pytest.raises(UsageError, match=r"l2_factor=0 must be a positive number: 1 for reg·Σ‖W‖²"):
        check_user_backprop(load("a1_neural_net_2017"), l2_factor=0)


def a1_like_error(net, reg):
    """assignment 2's loss(X, y) (reg in the constructor, 0.5·reg·Σ‖W‖²) against central differences."""
    rng = np.random.default_rng(3)
    net.params = {
        "W1": rng.normal(0, 0.5, (5, 7)),
        "b1": rng.normal(0, 0.3, 7),
        "W2": rng.normal(0, 0.5, (7, 3)),
        "b2": rng.normal(0, 0.3, 3),
    }
    X, y = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)
    _, grads = net.loss(X, y)
    keys = sorted(net.params)
    numeric = central_differences(lambda: cs231n_loss(net.params, X, y, reg, 0.5), [net.params[k] for k in keys])
    return max(rel_error(grads[k], n) for k, n in zip(keys, numeric))


# ----------------------------------------------------------------------------------------------
# Constructors the grader cannot fill, unfinished starter code (in the submission's own process)


def test_a_constructor_the_grader_cannot_fill_fails_once_naming_its_signature_and_init():
    spec = str(SUBMISSIONS / "a1_extra_init.py")
    with pytest.raises(SubmissionError) as caught:
        check_user_backprop(spec)
    message = str(caught.value)
    assert message == (
        "TwoLayerNet(input_size, hidden_size, output_size, init_mode, std=0.0001): the grader cannot fill "
        "init_mode; it fills input_size, hidden_size, output_size, std (and reg, given to loss(X, y, reg)); "
        "pass other keyword values with --init KEY=VALUE (init={'KEY': VALUE} in Python)"
    )
    assert "verify" not in message and "_calls" not in message and caught.value.convention.name == "cs231n"
    assert a1_error(load("a1_extra_init"), factor=1.0, init_mode="gaussian") < 1e-6  # independently: right
    assert report_for("a1_extra_init", init={"init_mode": "gaussian"}).passed


def test_cli_init_and_gradescope_file_for_a_constructor_it_cannot_fill(tmp_path, capsys):
    from fnnjax.cli import main

    spec = str(SUBMISSIONS / "a1_extra_init.py")
    out = tmp_path / "results.json"
    assert main(["verify", "--backprop", spec, "--gradescope", str(out), "--seed", "0"]) == 1
    results = json.loads(out.read_text())
    assert results["score"] == 0 and len(results["tests"]) >= 4
    assert all("the grader cannot fill init_mode" in t["output"] for t in results["tests"])
    options = ["--init", "init_mode=gaussian", "--l2-factor", "1", "--strict", "--seed", "0"]
    assert main(["verify", "--backprop", spec, *options]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "(L2 term reg·Σ W²: --l2-factor 1)" in out
    assert main(["verify", "--backprop", spec, "--init", "init_mode"]) == 2
    assert "--init 'init_mode' is not KEY=VALUE; write e.g. --init std=0.1" in capsys.readouterr().err
    assert main(["verify", "--l2-factor", "0.5"]) == 2
    assert "--l2-factor applies to --backprop" in capsys.readouterr().err


def test_unfinished_init_is_named_not_implemented_once():
    with pytest.raises(
        SubmissionError,
        match=r"^not implemented yet: TwoLayerNet.__init__ leaves self.params empty \(the TODO is not done\)$",
    ):
        check_user_backprop(str(SUBMISSIONS / "a1_unfinished.py"))


# ----------------------------------------------------------------------------------------------
# Nielsen: network2.py's own cost, Network(sizes, activation_mode)


def test_network2_with_the_cross_entropy_cost(tmp_path):
    right = load("network2_cross_entropy")
    assert nielsen_error(right.Network([4, 5, 3]), "cross-entropy") < 1e-6  # independently
    report = report_for("network2_cross_entropy")
    assert report.conv.name == "nielsen" and report.passed, report.render()
    assert "cross-entropy cost −Σ [y ln a + (1 − y) ln(1 − a)]" in report.conv.reference

    wrong = load("network2_wrong_delta")  # CrossEntropyCost.delta keeps QuadraticCost's σ′
    assert nielsen_error(wrong.Network([4, 5, 3]), "cross-entropy") > 1e-3  # independently
    report = report_for("network2_wrong_delta")
    fails_by_the_course_standard(report, r"CrossEntropyCost.delta\(z, a, y\) is \(a - y\), σ′ cancels")
    assert "missing" not in diagnosis(report)

    no_hidden = with_mistake(tmp_path, "network2_cross_entropy", "sp = sigmoid_prime(z)", "sp = 1")
    assert nielsen_error(no_hidden.Network([4, 5, 3]), "cross-entropy") > 1e-3  # independently
    fails_by_the_course_standard(check_user_backprop(no_hidden), r"sigmoid_prime\(z\) is missing in the hidden")


def test_network2_with_the_quadratic_cost_and_a_network_with_activation_mode():
    right = load("network2_quadratic")
    assert nielsen_error(right.Network([4, 5, 3]), "quadratic") < 1e-6  # independently
    report = report_for("network2_quadratic")
    assert report.passed and "½‖a − y‖²" in report.conv.reference, report.render()
    assert "QuadraticCost" in report.conv.title

    ported = load("network_activation_mode")  # Network(sizes, activation_mode): built with "sigmoid"
    assert nielsen_error(ported.Network([4, 5, 3], "sigmoid"), "quadratic") < 1e-6  # independently
    report = report_for("network_activation_mode")
    assert report.passed, report.render()


# ----------------------------------------------------------------------------------------------
# The depths the course builds; the others are optional


def test_every_course_scores_only_the_depths_it_builds():
    from fnnjax.verify.grader._conventions import CONVENTIONS

    for name in ("cs231n", "deeplearning-ai", "nielsen"):
        cases = CONVENTIONS[name].all_cases
        assert {c.depth for c in cases if c.optional} == {1}, name
        assert {c.depth for c in cases if not c.optional} == {2, 3, 4}, name
        assert sum(not c.optional for c in cases) >= 4, name


# ----------------------------------------------------------------------------------------------
# The course's standard of "right", and --strict


def dlai_error(module):
    """deeplearning.ai's gradient_check_n difference of the submission's own gradient (float32 inside)
    against central differences of the course's cost in float64."""
    rng = np.random.default_rng(4)
    sizes = (5, 4, 3, 1)
    params = {}
    for l, (n, m) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{l}"] = rng.normal(0, 0.7, (m, n))
        params[f"b{l}"] = rng.normal(0, 0.3, (m, 1))
    X, Y = rng.normal(size=(5, 6)), rng.integers(0, 2, (1, 6)).astype(float)

    def cost():
        A = X
        for l in range(1, 4):
            Z = params[f"W{l}"] @ A + params[f"b{l}"]
            A = np.maximum(Z, 0) if l < 3 else sigmoid(Z)
        return -np.mean(Y * np.log(A) + (1 - Y) * np.log(1 - A))

    AL, caches = module.L_model_forward(X, params)
    grads = module.L_model_backward(AL, Y, caches)
    keys = sorted(params)
    numeric = np.concatenate([g.ravel() for g in central_differences(cost, [params[k] for k in keys])])
    got = np.concatenate([grads[f"d{k}"].ravel() for k in keys])
    return float(np.linalg.norm(got - numeric) / (np.linalg.norm(got) + np.linalg.norm(numeric)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(0) of a wrong network
def test_float32_and_log_epsilon_pass_by_the_course_standard_and_mistakes_do_not(tmp_path):
    module = load("dnn_float32_eps")
    error = dlai_error(module)
    assert 1e-10 < error < 2e-7  # independently: float32 rounding, within gradient_check_n's 2e-7
    report = report_for("dnn_float32_eps")
    assert report.passed, report.render()
    notes = [n for c in report.cases for n in c.notes]
    assert notes and all("passes by the course's standard" in n and "--strict" in n for n in notes)
    strict = report_for("dnn_float32_eps", strict=True)
    assert not any(scored(strict))

    for old, new, words, independent in [
        ("dZ[Z <= 0] = 0", "pass", r"relu_backward does not zero dZ", True),
        ("dW = 1 / m * np.dot", "dW = np.dot", r"a sum over the m = \d+ examples", True),
        ("dAL = -(np.divide", "dAL = (np.divide", r"sign flipped", True),
        ("dW = 1 / m * np.dot(dZ, A_prev.T)", "dW = 1 / m * np.dot(A_prev, dZ.T)", r"transposed", False),
    ]:
        wrong = with_mistake(tmp_path, "dnn_float32_eps", old, new)
        if independent:  # (a transposed dW has another shape: no difference to take)
            assert dlai_error(wrong) > 1e-3
        fails_by_the_course_standard(check_user_backprop(wrong), words)


def test_a_call_that_does_not_bind_is_named_never_pointed_into_the_grader():
    import types

    from fnnjax.verify.grader._calls import CallError, call

    def L_model_forward(X, parameters, keep_prob):  # a student's extra parameter
        return None

    module = types.SimpleNamespace(L_model_forward=L_model_forward, L_model_backward=L_model_forward)
    request = {"parameters": {}, "X": np.zeros((2, 1)), "Y": np.zeros((1, 1))}
    with pytest.raises(CallError) as caught:
        call("deeplearning-ai", module, request)
    assert re.fullmatch(
        r"L_model_forward\(X, parameters, keep_prob\) cannot be called as the convention calls it: "
        r".*missing 1 required positional argument: 'keep_prob'",
        str(caught.value),
    ), str(caught.value)
    assert ".py" not in str(caught.value)
