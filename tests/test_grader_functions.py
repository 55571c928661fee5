"""Per-function credit: the course functions a student writes, each checked on its own cases.

Every verdict asserted here is established independently of the grader: the test calls the
submission's functions itself (they are our own files, in tests/submissions/functions/) and compares
what they return with central differences, in NumPy float64, of the course's loss written again
here, or with the forward formula written again here. The grader's own references are checked
against the same independent values.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from fnnjax.cli import main
from fnnjax.verify.grader._function_calls import call_function, unfinished_reason
from fnnjax.verify.grader._functions import (
    COURSE_FUNCTIONS,
    DIFF_TOL,
    REL_TOL,
    cases_for,
    check_functions,
    gradable,
    judge,
)
from fnnjax.verify.grader._gradescope import gradescope_results, split_parts, split_points
from fnnjax.verify.grader._isolation import Outcome, Worker
from fnnjax.verify.grader._submission import describe, parse_target
from fnnjax.verify.grader._user_backprop import check_user_backprop

SUBMISSIONS = Path(__file__).resolve().parent / "submissions" / "functions"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "courses"
H = 1e-6
"""The central-difference step (float64: truncation and rounding errors near 1e-9 relative)."""


# ----------------------------------------------------------------------------------------------
# Independent evidence: central differences and forward formulas written here


def central_difference(f, x: np.ndarray) -> np.ndarray:
    """d f() / d x by central differences, perturbing x in place and restoring it."""
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        old = x[index]
        x[index] = old + H
        up = f()
        x[index] = old - H
        down = f()
        x[index] = old
        grad[index] = (up - down) / (2 * H)
    return grad


def sig(z):
    return 1 / (1 + np.exp(-z))


def affine(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b


def softmax_mean_loss(x, y):
    total = 0.0
    for i in range(x.shape[0]):  # one row at a time, as the definition reads
        total += -x[i, y[i]] + np.log(np.sum(np.exp(x[i])))
    return total / x.shape[0]


def svm_mean_loss(x, y):
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if j != y[i]:
                total += max(0.0, x[i, j] - x[i, y[i]] + 1.0)
    return total / x.shape[0]


def cross_entropy(al, y):
    return float(-np.mean(y * np.log(al) + (1 - y) * np.log(1 - al)))


def dlai_network_cost(weights, biases, x, y):
    a = x
    for k, (w, b) in enumerate(zip(weights, biases)):
        z = w @ a + b
        a = sig(z) if k == len(weights) - 1 else np.maximum(0, z)
    return cross_entropy(a, y)


def independent(name: str, request: dict) -> dict:
    """What the function must return for this request, by formulas and central differences written here."""
    args = [a.copy() if isinstance(a, np.ndarray) else a for a in request["args"]]
    cache = request.get("cache")
    if name == "affine_forward":
        return {"out": affine(*args)}
    if name == "relu_forward":
        return {"out": np.where(args[0] > 0, args[0], 0.0)}
    if name == "affine_relu_forward":
        return {"out": np.maximum(affine(*args), 0)}
    if name in ("affine_backward", "affine_relu_backward"):
        (dout,), (x, w, b) = args, [a.copy() for a in cache["args"]]
        act = (lambda a: np.maximum(a, 0)) if name == "affine_relu_backward" else (lambda a: a)

        def scalar():
            return float(np.sum(dout * act(affine(x, w, b))))

        return {
            "dx": central_difference(scalar, x),
            "dw": central_difference(scalar, w),
            "db": central_difference(scalar, b),
        }
    if name == "relu_backward":
        (dout,), x = args, cache["args"][0].copy()
        return {"dx": central_difference(lambda: float(np.sum(dout * np.maximum(x, 0))), x)}
    if name in ("softmax_loss", "svm_loss"):
        x, y = args
        loss = softmax_mean_loss if name == "softmax_loss" else svm_mean_loss
        return {"loss": loss(x, y), "dx": central_difference(lambda: loss(x, y), x)}
    if name == "linear_forward":
        a, w, b = args
        return {"Z": np.einsum("ij,jk->ik", w, a) + b}
    if name == "linear_activation_forward":
        a, w, b, activation = args
        z = np.einsum("ij,jk->ik", w, a) + b
        return {"A": sig(z) if activation == "sigmoid" else np.maximum(z, 0)}
    if name == "L_model_forward":
        x, parameters = args
        depth = len(parameters) // 2
        a = x
        for layer in range(1, depth + 1):
            z = parameters[f"W{layer}"] @ a + parameters[f"b{layer}"]
            a = sig(z) if layer == depth else np.maximum(z, 0)
        return {"AL": a}
    if name == "compute_cost":
        return {"cost": cross_entropy(*args)}
    if name in ("linear_backward", "linear_activation_backward"):
        # deeplearning.ai: dZ (or dA) is the gradient of the SUM of the m examples' losses; dW and
        # db are gradients of the MEAN (1/m), dA_prev of the sum (no 1/m)
        if name == "linear_backward":
            upstream, (a, w, b) = args[0], [v.copy() for v in args[1]]
            act = lambda z: z  # noqa: E731
        else:
            upstream, ((a, w, b), _), activation = args[0], args[1], args[2]
            a, w, b = a.copy(), w.copy(), b.copy()
            act = sig if activation == "sigmoid" else (lambda z: np.maximum(z, 0))
        m = a.shape[1]

        def summed():
            return float(np.sum(upstream * act(w @ a + b)))

        return {
            "dA_prev": central_difference(summed, a),
            "dW": central_difference(summed, w) / m,
            "db": central_difference(summed, b) / m,
        }
    if name == "L_model_backward":
        al, y, caches = args
        x = caches[0][0][0].copy()
        weights = [c[0][1].copy() for c in caches]
        biases = [c[0][2].copy() for c in caches]
        out = {}
        for layer in range(1, len(caches) + 1):

            def cost():
                return dlai_network_cost(weights, biases, x, y)

            out[f"dW{layer}"] = central_difference(cost, weights[layer - 1])
            out[f"db{layer}"] = central_difference(cost, biases[layer - 1])
        assert np.allclose(dlai_network_cost(weights, biases, x, y), cross_entropy(al, y))
        return out
    if name == "update_parameters":
        parameters, grads, rate = args
        return {k: v - rate * grads["d" + k] for k, v in parameters.items()}
    if name == "feedforward":
        (a,), net = args, request["network"]
        for w, b in zip(net["weights"], net["biases"]):
            a = sig(np.einsum("ij,jk->ik", w, a) + b)
        return {"a": a}
    if name == "cost_derivative":
        a, y = (v.copy() for v in args)
        return {"output_activations - y": central_difference(lambda: 0.5 * float(np.sum((a - y) ** 2)), a)}
    raise AssertionError(name)


def close(expected, got, tol: float = 1e-6) -> bool:
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape and not (expected.ndim == 0 and got.size == 1):
        return False
    got = got.reshape(expected.shape)
    return bool(np.all(np.abs(got - expected) <= tol * np.maximum(1e-6, np.abs(expected) + np.abs(got))))


# ----------------------------------------------------------------------------------------------
# The submissions, called here (trusted: our own files)


def load(path: Path):
    """Import one of our test submissions with its folder on sys.path (its neighbours too)."""
    folder = str(path.parent)
    neighbours = {p.stem for p in path.parent.glob("*.py")}
    for name in neighbours:
        sys.modules.pop(name, None)
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(f"_functions_test_{path.parent.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
        for name in neighbours:
            sys.modules.pop(name, None)
    return module


def student_returns(module, name: str, request: dict):
    """Call the submission's function as the course notebooks do (the cache from its own forward)."""
    args = [a.copy() if isinstance(a, np.ndarray) else a for a in request["args"]]
    if "network" in request:
        net = module.Network(list(request["network"]["sizes"]))
        net.weights, net.biases = list(request["network"]["weights"]), list(request["network"]["biases"])
        return getattr(net, name)(*args)
    fn = getattr(module, name)
    if "cache" in request:
        _, cache = getattr(module, request["cache"]["forward"])(*(a.copy() for a in request["cache"]["args"]))
        args.insert(1, cache)
    return fn(*args)


def independent_verdict(path: Path) -> dict[str, bool]:
    """Function name -> right on every case, by the submission's own outputs against `independent`."""
    module = load(path)
    verdicts = {}
    for specs in COURSE_FUNCTIONS.values():
        for spec in specs:
            if spec.course == "nielsen":
                if not hasattr(getattr(module, "Network", None), spec.name):
                    continue
            elif getattr(getattr(module, spec.name, None), "__module__", None) != module.__name__:
                continue  # imported from elsewhere: not this file's work
            right = True
            for case in cases_for(spec, 0):
                returned = student_returns(module, spec.name, case.request)
                want = independent(spec.name, case.request)
                if spec.returns == "dict":
                    got = [returned.get(k) for k in want]
                elif spec.returns == "one":
                    got = [returned]
                else:
                    got = list(returned)[: len(want)]
                right &= all(g is not None and close(w, g) for w, g in zip(want.values(), got))
            verdicts[spec.title] = right
    return verdicts


# ----------------------------------------------------------------------------------------------
# The grader's references are right


@pytest.mark.parametrize("spec", [s for specs in COURSE_FUNCTIONS.values() for s in specs], ids=lambda s: s.name)
def test_every_reference_agrees_with_central_differences(spec):
    for case in cases_for(spec, 0):
        want = independent(spec.name, case.request)
        assert list(want) == list(case.expected), spec.name
        for key, value in want.items():
            assert close(value, case.expected[key]), (spec.name, case.label, key)


def test_cases_are_small_float64_and_named_in_the_course_words():
    labels = [c.label for c in cases_for(COURSE_FUNCTIONS["cs231n"][1], 0)]
    assert labels == ["N=3, D=4, M=5", "N=4, x of shape (4, 2, 3), D=6, M=3"]
    for specs in COURSE_FUNCTIONS.values():
        for spec in specs:
            cases = cases_for(spec, 0)
            assert 2 <= len(cases) <= 4
            for case in cases:
                for value in case.expected.values():
                    assert np.asarray(value).dtype == np.float64 and np.asarray(value).size <= 64
    again = cases_for(COURSE_FUNCTIONS["deeplearning-ai"][4], 0)[0].expected["dW"]
    assert np.array_equal(again, cases_for(COURSE_FUNCTIONS["deeplearning-ai"][4], 0)[0].expected["dW"])  # seeded


# ----------------------------------------------------------------------------------------------
# Which functions are the student's


def test_only_functions_defined_in_the_file_are_graded():
    layer_utils = describe(load(SUBMISSIONS / "cs231n_right" / "layer_utils.py"))
    course, specs, _ = gradable(layer_utils)
    assert course == "cs231n" and [s.name for s in specs] == ["affine_relu_forward", "affine_relu_backward"]
    assert "affine_forward" not in layer_utils["defined"]  # star-imported from layers.py: not this file's work

    module = load(SUBMISSIONS / "dlai_right" / "dnn.py")
    dnn = describe(module)
    course, specs, _ = gradable(dnn)
    assert course == "deeplearning-ai" and len(specs) == 8
    assert hasattr(module, "relu_backward") and "relu_backward" not in {s.name for s in specs}  # dnn_utils'

    course, specs, owner = gradable(describe(load(SUBMISSIONS / "nielsen_right" / "network.py")))
    assert (course, owner) == ("nielsen", "Network")
    assert [s.title for s in specs] == ["Network.feedforward", "Network.cost_derivative"]

    fc_net = describe(load(EXAMPLES / "cs231n" / "fc_net.py"))  # imports its layers: nothing of its own
    assert gradable(fc_net) == (None, (), "")
    assert gradable(dnn, convention="cs231n") == (None, (), "")


# ----------------------------------------------------------------------------------------------
# Unfinished functions


def test_unfinished_forms_are_recognised_from_the_source(tmp_path):
    (tmp_path / "unfinished_forms.py").write_text(
        "def only_pass(x):\n    pass\n"
        'def only_doc(x):\n    """TODO"""\n'
        "def not_impl(x):\n    raise NotImplementedError\n"
        "def placeholder(A, W, b):\n    Z, cache = None\n    return Z, cache\n"
        "def done(x):\n    return x + 1\n"
    )
    namespace = vars(load(tmp_path / "unfinished_forms.py"))
    for name in ("only_pass", "only_doc", "not_impl"):
        assert (
            unfinished_reason(namespace[name]) == "has only pass, a docstring or raise NotImplementedError in its body"
        )
    assert unfinished_reason(namespace["placeholder"]) is None  # only once it raised
    assert unfinished_reason(namespace["placeholder"], raised=True) == (
        "still holds the starter code's placeholder Z, cache = None"
    )
    assert unfinished_reason(namespace["done"], raised=True) is None


def test_a_starter_function_is_not_implemented_yet_not_a_crash():
    class Module:
        @staticmethod
        def affine_forward(x, w, b):
            out = None
            cache = (x, w, b)
            return out, cache

        @staticmethod
        def raising(x):
            raise ValueError("a real bug")

    spec = COURSE_FUNCTIONS["cs231n"][0]
    case = cases_for(spec, 0)[0]
    result = call_function("function:affine_forward", Module, case.request)
    assert result["unfinished"] == "returns None where a result belongs, as the starter code does"
    verdict = judge(spec, case, result)
    assert (verdict.passed, verdict.kind) == (False, "unfinished")
    assert verdict.message.startswith("not implemented yet: affine_forward returns None")
    with pytest.raises(ValueError, match="a real bug"):  # a finished function that raises is the student's bug
        call_function("function:raising", Module, {"args": [1]})


# ----------------------------------------------------------------------------------------------
# Whole submissions, in their own process


def grade(path: Path, **kwargs):
    return check_user_backprop(str(path), **kwargs)


@pytest.fixture(scope="module")
def cs231n_reports():
    names = ("cs231n_right/layers.py", "cs231n_right/layer_utils.py", "cs231n_wrong_affine_backward/layers.py")
    names += ("cs231n_unfinished_relu_backward/layers.py",)
    return {name: grade(SUBMISSIONS / name) for name in names}


def statuses(report) -> dict[str, str]:
    return {f.name: f.to_dict()["status"] for f in report.functions}


def test_right_cs231n_layers_get_every_point(cs231n_reports):
    for name in ("cs231n_right/layers.py", "cs231n_right/layer_utils.py"):
        assert all(independent_verdict(SUBMISSIONS / name).values())  # right, by central differences
        report = cs231n_reports[name]
        assert report.passed and report.cases == () and report.isolated, report.render()
        assert set(statuses(report).values()) == {"pass"}
        assert "PASS: all" in report.render()
    assert list(statuses(cs231n_reports["cs231n_right/layers.py"])) == [
        "affine_forward",
        "affine_backward",
        "relu_forward",
        "relu_backward",
        "svm_loss",
        "softmax_loss",
    ]
    results = gradescope_results(cs231n_reports["cs231n_right/layers.py"], points=12)
    assert results["score"] == 12 and len(results["tests"]) == 12
    assert {t["max_score"] for t in results["tests"]} == {1.0}
    assert results["tests"][3]["name"] == "affine_backward: case 2 (N=4, x of shape (4, 2, 3), D=6, M=3)"
    assert results["tests"][3]["number"] == "2.2"


def test_a_wrong_affine_backward_loses_only_its_own_points(cs231n_reports):
    verdicts = independent_verdict(SUBMISSIONS / "cs231n_wrong_affine_backward" / "layers.py")
    assert [k for k, right in verdicts.items() if not right] == ["affine_backward"]
    report = cs231n_reports["cs231n_wrong_affine_backward/layers.py"]
    assert not report.passed
    assert statuses(report) == {k: "pass" if right else "fail" for k, right in verdicts.items()}
    assert report.first_wrong_function.name == "affine_backward"
    text = report.render()
    assert "the first wrong function is affine_backward (case 1: dw: relative error 5.0e-01" in text
    assert "1/N times the expected value: an extra division by N" in text
    results = gradescope_results(report, points=12)
    lost = [t["name"] for t in results["tests"] if t["status"] == "failed"]
    assert lost == [
        "affine_backward: case 1 (N=3, D=4, M=5)",
        "affine_backward: case 2 (N=4, x of shape (4, 2, 3), D=6, M=3)",
    ]
    assert results["score"] == 10
    assert "the first wrong function is affine_backward (case 1: dw:" in results["output"]


def test_an_unfinished_relu_backward_is_not_implemented_yet(cs231n_reports):
    report = cs231n_reports["cs231n_unfinished_relu_backward/layers.py"]
    assert statuses(report)["relu_backward"] == "not implemented yet"
    assert [k for k, v in statuses(report).items() if v != "pass"] == ["relu_backward"]
    relu = report.functions[3]
    assert {c.kind for c in relu.cases} == {"unfinished"}
    assert relu.cases[0].message == "not implemented yet: relu_backward returns None, as the starter code does"
    assert "relu_backward    NOT IMPLEMENTED YET" in report.render()
    results = gradescope_results(report, points=6)
    assert [t["score"] for t in results["tests"] if t["name"].startswith("relu_backward")] == [0.0, 0.0]
    assert results["score"] == 5


def test_a_function_named_on_the_command_line_is_graded_alone():
    report = grade(SUBMISSIONS / "cs231n_wrong_affine_backward" / "layers.py:relu_forward")
    assert [f.name for f in report.functions] == ["relu_forward"] and report.passed


def test_deeplearning_ai_functions_right_and_the_first_wrong_one_named():
    right = SUBMISSIONS / "dlai_right" / "dnn.py"
    wrong = SUBMISSIONS / "dlai_wrong_linear_backward" / "dnn.py"
    assert all(independent_verdict(right).values())
    verdicts = independent_verdict(wrong)
    assert [k for k, ok in verdicts.items() if not ok] == [
        "linear_backward",
        "linear_activation_backward",
        "L_model_backward",
    ]
    with Worker(parse_target(str(right)), timeout=10) as worker:  # the functions alone: no JAX reference
        course, specs, owner = gradable(worker.load().value["description"])
        functions = check_functions(specs, lambda form, r: worker.call(form, None, r))
    assert course == "deeplearning-ai" and all(f.passed for f in functions) and len(functions) == 8

    report = grade(wrong)  # the whole network and the functions, end to end
    assert not report.passed and not any(c.passed for c in report.cases)
    assert statuses(report) == {k: "pass" if ok else "fail" for k, ok in verdicts.items()}
    text = report.render()
    assert "the whole network fails; the first wrong function is linear_backward (case 1: dW: difference" in text
    assert "m = 5 times the expected value: a sum where the mean belongs (divide by m)" in text
    results = gradescope_results(report, points=10)
    assert sum(t["max_score"] for t in results["tests"]) == pytest.approx(10, abs=1e-9)
    assert round(sum(t["max_score"] for t in results["tests"]) * 100) == 1000  # whole hundredths, exactly 10
    numbers = [t["number"] for t in results["tests"]]
    assert numbers[0] == "1.1" and numbers[-1] == "9.2" and len(set(numbers)) == len(numbers)
    assert results["tests"][0]["name"].startswith("whole network: case 1: ")
    assert results["extra_data"]["functions"]["linear_backward"] == "fail"


def test_an_unfinished_deeplearning_ai_branch_is_not_implemented_yet():
    path = SUBMISSIONS / "dlai_unfinished" / "dnn.py"
    with Worker(parse_target(str(path)), timeout=10) as worker:
        _, specs, _ = gradable(worker.load().value["description"])
        functions = check_functions(specs[:2], lambda form, r: worker.call(form, None, r))
    assert [f.passed for f in functions] == [True, False]
    sigmoid_case, relu_case = functions[1].cases
    assert sigmoid_case.kind == "unfinished" and relu_case.passed
    assert "still holds the starter code's placeholder Z, linear_cache = None" in sigmoid_case.message
    assert functions[1].summary() == "NOT IMPLEMENTED YET (case 1; 1 of 2 cases pass)"


@pytest.mark.parametrize("folder", ["nielsen_right", "nielsen_wrong_feedforward", "nielsen_wrong_cost_derivative"])
def test_nielsen_feedforward_and_cost_derivative(folder):
    path = SUBMISSIONS / folder / "network.py"
    verdicts = independent_verdict(path)
    assert sum(not ok for ok in verdicts.values()) == (0 if folder == "nielsen_right" else 1)
    with Worker(parse_target(str(path)), timeout=10) as worker:
        _, specs, owner = gradable(worker.load().value["description"])
        functions = check_functions(specs, lambda form, r: worker.call(form, None, r), owner=owner)
    assert {f.name: f.passed for f in functions} == verdicts
    if folder == "nielsen_wrong_cost_derivative":
        assert "the sign is flipped" in functions[1].cases[0].message


# ----------------------------------------------------------------------------------------------
# Points


def test_points_split_over_parts_then_cases_add_up_exactly():
    parts = split_parts(10, [2, 3, 4])
    assert parts == [[1.67, 1.67], [1.11, 1.11, 1.11], [0.84, 0.83, 0.83, 0.83]]
    assert sum(round(p * 100) for part in parts for p in part) == 1000
    for total, counts in ((100, [6, 2, 2, 2, 2, 2, 2, 2, 2]), (7, [5, 1, 3]), (1, [2, 2, 2])):
        assert sum(round(p * 100) for part in split_parts(total, counts) for p in part) == round(total * 100)
    assert split_parts(10, [6]) == [split_points(10, 6)]  # one part: the single-entry split of today


def test_the_command_line_writes_per_function_tests(tmp_path):
    out = tmp_path / "results.json"
    path = SUBMISSIONS / "cs231n_wrong_affine_backward" / "layers.py"
    status = main(["verify", "--backprop", str(path), "--gradescope", str(out), "--points", "10"])
    assert status == 1
    data = json.loads(out.read_text())
    assert len(data["tests"]) == 12 and round(sum(t["max_score"] for t in data["tests"]) * 100) == 1000
    assert {t["name"].split(":")[0] for t in data["tests"] if t["status"] == "failed"} == {"affine_backward"}
    assert data["score"] == pytest.approx(10 - 1.67)  # 10 over 6 parts: affine_backward's share is 1.67


def test_thresholds_are_the_courses(tmp_path):
    assert (REL_TOL, DIFF_TOL) == (1e-7, 2e-7)
    (tmp_path / "float32.py").write_text(
        "import numpy as np\n"
        "def linear_backward(dZ, cache):\n"
        "    A_prev, W, b = (np.asarray(v, np.float32) for v in cache)\n"
        "    dZ = np.asarray(dZ, np.float32)\n"
        "    m = A_prev.shape[1]\n"
        "    return np.dot(W.T, dZ), np.dot(dZ, A_prev.T) / m, np.sum(dZ, axis=1, keepdims=True) / m\n"
        "def affine_forward(x, w, b):\n"
        "    x, w, b = (np.asarray(v, np.float32) for v in (x, w, b))\n"
        "    return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)\n"
    )
    module = load(tmp_path / "float32.py")
    for spec, passes in ((COURSE_FUNCTIONS["deeplearning-ai"][4], True), (COURSE_FUNCTIONS["cs231n"][0], False)):
        worst = 0.0  # independently: the course's own measure of the float32 result
        for case in cases_for(spec, 0):
            returned = student_returns(module, spec.name, case.request)
            for want, got in zip(independent(spec.name, case.request).values(), returned):
                got = np.asarray(got, np.float64)
                if spec.course == "cs231n":
                    worst = max(worst, float(np.max(np.abs(got - want) / np.maximum(1e-8, np.abs(got) + np.abs(want)))))
                else:
                    worst = max(worst, float(np.linalg.norm(got - want) / (np.linalg.norm(got) + np.linalg.norm(want))))
        assert (worst <= (DIFF_TOL if spec.course == "deeplearning-ai" else REL_TOL)) == passes, (spec.name, worst)
        (result,) = check_functions((spec,), in_process(module))
        assert result.passed == passes, result.summary()


def in_process(module):
    """An invoke that runs the worker's call here (for our own small modules)."""
    return lambda form, request: Outcome("ok", {"result": call_function(form, module, request)}, None, 0.0, "")


def test_the_backward_gets_the_students_forward_cache_or_the_documented_one(tmp_path):
    (tmp_path / "starter_forward.py").write_text(
        "import numpy as np\n"
        "def affine_forward(x, w, b):\n    out = None\n    cache = (x, w, b)\n    return out, cache\n"
        "def affine_backward(dout, cache):\n    x, w, b = cache\n"
        "    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)\n"
    )
    starter = load(tmp_path / "starter_forward.py")
    forward, backward = check_functions(COURSE_FUNCTIONS["cs231n"][:2], in_process(starter))
    assert forward.unfinished and backward.passed  # judged on its own with the documented cache

    (tmp_path / "flat_cache.py").write_text(
        "import numpy as np\n"
        "def affine_forward(x, w, b):\n    x = x.reshape(x.shape[0], -1)\n    return x @ w, (x, w, b)\n"
        "def affine_backward(dout, cache):\n    x, w, b = cache\n"
        "    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)\n"
    )
    flat = load(tmp_path / "flat_cache.py")
    verdicts = {}
    for spec in COURSE_FUNCTIONS["cs231n"][:2]:  # independently: the forward lacks b; the backward, on
        case = cases_for(spec, 0)[1]  # the 3-d x, returns dx in the flattened cache's shape
        returned = student_returns(flat, spec.name, case.request)
        verdicts[spec.name] = close(list(independent(spec.name, case.request).values())[0], returned[0])
    assert verdicts == {"affine_forward": False, "affine_backward": False}
    forward, backward = check_functions(COURSE_FUNCTIONS["cs231n"][:2], in_process(flat))
    assert not forward.passed and [c.passed for c in backward.cases] == [True, False]
    assert backward.cases[1].message == (
        "dx has shape (4, 6), but the course expects (4, 2, 3): the same number of values in another shape; keep "
        "the course's (keepdims=True, or .reshape) (its cache comes from your affine_forward, which fails too: "
        "fix affine_forward first)"
    )


def test_a_one_dimensional_db_and_an_unsqueezed_cost(tmp_path):
    (tmp_path / "squeezed.py").write_text(
        "import numpy as np\n"
        "def compute_cost(AL, Y):\n"
        "    m = Y.shape[1]\n"
        "    return -1 / m * (np.dot(Y, np.log(AL).T) + np.dot(1 - Y, np.log(1 - AL).T))  # (1, 1): no squeeze\n"
        "def linear_backward(dZ, cache):\n"
        "    A_prev, W, b = cache\n"
        "    m = A_prev.shape[1]\n"
        "    db = np.squeeze(np.sum(dZ, axis=1, keepdims=True)) / m\n"
        "    return np.dot(W.T, dZ), np.dot(dZ, A_prev.T) / m, db\n"
    )
    module = load(tmp_path / "squeezed.py")
    specs = {s.name: s for s in COURSE_FUNCTIONS["deeplearning-ai"]}
    cost, backward = check_functions((specs["compute_cost"], specs["linear_backward"]), in_process(module))
    assert cost.passed  # a (1, 1) cost holds the right value: any size-1 shape is a scalar
    case = cases_for(specs["linear_backward"], 0)[0]
    got = student_returns(module, "linear_backward", case.request)[2]
    assert got.shape == (3,) and independent("linear_backward", case.request)["db"].shape == (3, 1)
    assert [c.kind for c in backward.cases] == ["structure", "structure"]
    assert backward.cases[0].message == (
        "db has shape (3,), but the course expects (3, 1): the same number of values in another shape; keep the "
        "course's (keepdims=True, or .reshape)"
    )


def test_a_whole_network_alone_is_graded_as_before():
    from fnnjax.verify.grader._backprop_report import BackpropReport
    from fnnjax.verify.grader._conventions import CONVENTIONS
    from fnnjax.verify.grader._grading import failed_case

    conv = CONVENTIONS["deeplearning-ai"]
    cases = tuple(failed_case(c, "raised", "ValueError: boom") for c in conv.all_cases)
    report = BackpropReport(False, "dnn.py", 0, cases, 0.0, conv)
    results = gradescope_results(report, points=10)
    assert [t["number"] for t in results["tests"]] == [str(k) for k in range(1, len(cases) + 1)]
    assert [t["name"] for t in results["tests"]] == [conv.case_name(k, c) for k, c in enumerate(conv.all_cases, 1)]
    assert "functions" not in results["extra_data"] and "functions" not in report.to_dict()
    assert "per-function credit" not in report.render() and "functions you wrote" not in results["output"]
    scored = [not c.optional for c in conv.all_cases]
    assert [t["max_score"] > 0 for t in results["tests"]] == scored  # an optional case carries no points
    assert round(sum(t["max_score"] for t in results["tests"]) * 100) == 1000
