"""check_backprop: the student's live functions checked in the notebook, in the course's conventions.

The verdicts on our course submissions (tests/submissions/) are established independently in
tests/test_grader_functions.py and tests/test_grader_courses.py; here the same files are checked
through the live objects a notebook holds (functions, classes, bound methods), in this process and
in a real Jupyter kernel, and nothing of the student's may change.
"""

from __future__ import annotations

import random
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import fnnjax
from fnnjax.errors import UsageError
from fnnjax.verify.grader import BackpropCheck, check_backprop
from fnnjax.verify.grader._submission import import_target, parse_target

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "tests" / "submissions" / "functions"


def load(folder: str, file: str):
    return import_target(parse_target(str(FUNCTIONS / folder / file)))


# ----------------------------------------------------------------------------------------------
# One course function: NumPy only, quick


def test_course_functions_pass_and_fail_with_the_course_diagnosis():
    right = check_backprop(load("cs231n_right", "layers.py").affine_backward)
    assert isinstance(right, BackpropCheck) and right.passed and bool(right)
    assert [f.name for f in right.functions] == ["affine_backward"] and not right.cases
    wrong = check_backprop(load("cs231n_wrong_affine_backward", "layers.py").affine_backward)
    assert not wrong.passed and not bool(wrong)
    assert wrong.first_wrong_function is not None and wrong.first_wrong_function.name == "affine_backward"
    dlai = check_backprop(load("dlai_wrong_linear_backward", "dnn.py").linear_backward)
    assert not dlai.passed
    message = dlai.functions[0].cases[0].message
    assert "a sum where the mean belongs (divide by m)" in message, message
    assert "FAIL" in str(dlai) and str(dlai) == repr(dlai) == dlai.render()
    assert check_backprop(load("dlai_right", "dnn.py").linear_backward).passed


def test_the_html_table_escapes_what_the_student_wrote():
    def affine_backward(dout, cache):
        raise ValueError("<script>alert('x')</script> & <b>")

    page = check_backprop(affine_backward)._repr_html_()
    assert "<script>" not in page and "</script>" not in page and " & " not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;" in page
    assert page.startswith('<div class="fnnjax-check"><style>') and "http" not in page
    assert '<span class="fail">FAIL</span>' in page and "ValueError" in page


# ----------------------------------------------------------------------------------------------
# Whole networks: Nielsen's (one set of compiled references shared by every check below)


class _Seen:
    platform = None


@pytest.fixture(scope="module")
def nielsen():
    right = load("nielsen_right", "network.py").Network
    wrong = load("nielsen_wrong_cost_derivative", "network.py").Network

    class Recording(right):
        def backprop(self, x, y):
            _Seen.platform = next(iter(jax.numpy.zeros(()).devices())).platform  # where a new array lands
            return super().backprop(x, y)

    np.random.seed(5)
    random.seed(5)
    net = right([2, 3, 1])
    weights = [w.copy() for w in net.weights]
    before = (np.random.get_state(), random.getstate(), net.weights, net.biases, weights)
    start = time.perf_counter()
    checks = {
        "class": check_backprop(right),
        "method": check_backprop(net.backprop),
        "wrong": check_backprop(wrong),
        "recording": check_backprop(Recording),
    }
    after = (np.random.get_state(), random.getstate(), net)
    return checks, before, after, time.perf_counter() - start


def test_a_right_network_class_passes_with_its_methods(nielsen):
    checks, *_ = nielsen
    check = checks["class"]
    assert check.passed and check.conv.name == "nielsen" and len(check.cases) >= 4
    assert [f.name for f in check.functions] == ["Network.feedforward", "Network.cost_derivative"]
    assert all(f.passed for f in check.functions)
    assert "PASS" in check._repr_html_() and '<span class="fail">' not in check._repr_html_()


def test_a_bound_method_checks_its_class_and_changes_nothing(nielsen):
    checks, before, after, _ = nielsen
    check = checks["method"]
    assert check.passed and check.function == "Network"
    numpy_before, python_before, weights_list, biases_list, weights = before
    numpy_after, python_after, net = after
    assert numpy_before[0] == numpy_after[0] and np.array_equal(numpy_before[1], numpy_after[1])
    assert numpy_before[2:] == numpy_after[2:]
    assert python_before == python_after
    assert net.weights is weights_list and net.biases is biases_list
    assert [w.shape for w in net.weights] == [(3, 2), (1, 3)]
    assert all(np.array_equal(a, b) for a, b in zip(net.weights, weights))


def test_a_wrong_network_fails_with_the_diagnosis_and_the_wrong_function(nielsen):
    checks, *_ = nielsen
    check = checks["wrong"]
    assert not check.passed and not bool(check)
    first = check.first_failure
    assert first is not None and first.failing
    assert check.first_wrong_function is not None and check.first_wrong_function.name == "Network.cost_derivative"
    assert "the sign is flipped" in check.first_wrong_function.cases[0].message
    page = check._repr_html_()
    diagnosis = first.diagnosis[0]
    import html

    assert html.escape(diagnosis) in page, (diagnosis, page[:2000])
    assert '<span class="fail">FAIL</span>' in page and "Taylor rate" in page
    assert f"<td>{html.escape(first.failing[0])}</td>" in page  # a row per parameter, in the course's names
    assert "the first wrong function is <b>Network.cost_derivative</b>" in page


def test_jax_runs_on_the_cpu(nielsen):
    checks, *_ = nielsen
    assert checks["recording"].passed
    assert _Seen.platform == "cpu"


# ----------------------------------------------------------------------------------------------
# Whole networks: deeplearning.ai's L_model_backward, found with its L_model_forward


@pytest.mark.slow
def test_l_model_backward_finds_l_model_forward_where_it_was_defined():
    right = check_backprop(load("dlai_right", "dnn.py").L_model_backward)
    assert right.passed and right.conv.name == "deeplearning-ai" and right.cases
    assert len(right.functions) == 8 and all(f.passed for f in right.functions)
    wrong = check_backprop(load("dlai_wrong_linear_backward", "dnn.py").L_model_backward)
    assert not wrong.passed and "a sum over the m" in wrong.first_failure.diagnosis[0]  # type: ignore[union-attr]
    assert wrong.first_wrong_function is not None and wrong.first_wrong_function.name == "linear_backward"
    # float32 with log(AL + 1e-8): outside fnnjax's float64 tolerances, within the course's standard
    eps = import_target(parse_target(str(ROOT / "tests" / "submissions" / "courses" / "dnn_float32_eps.py")))
    lenient = check_backprop(eps.L_model_backward)
    assert lenient.passed and '<span class="fail">' not in lenient._repr_html_()
    assert not check_backprop(eps.L_model_backward, strict=True).passed


# ----------------------------------------------------------------------------------------------
# What it refuses, in one line


def L_model_backward(AL, Y, caches):  # no L_model_forward in this module
    return {}


class _NotANetwork:
    def fit(self):
        pass


@pytest.mark.parametrize(
    "given, message",
    [
        (42, r"was given int 42: that is no function, class or method; it takes a whole network .* pass the function"),
        ("dnn.py", r"was given str 'dnn.py': a file .* check_user_backprop\('dnn.py'\)"),
        (lambda x: x, r"function .*<lambda>: <lambda>\(x\) fits no convention and is no course function"),
        (_NotANetwork, r"class _NotANetwork: _NotANetwork has no loss\(X, y\) .* pass the class that defines loss"),
        (_NotANetwork().fit, r"method _NotANetwork.fit: _NotANetwork.fit is neither"),
        (L_model_backward, r"runs the network with L_model_forward, which is not defined where L_model_backward"),
    ],
    ids=["int", "path", "lambda", "class", "method", "no-forward"],
)
def test_what_it_cannot_check_is_one_line_with_the_fix(given, message):
    with pytest.raises(UsageError, match=message) as err:
        check_backprop(given)
    assert "\n" not in str(err.value)


def test_an_unknown_or_mismatched_convention_is_refused():
    with pytest.raises(UsageError, match=r"unknown convention 'keras'; valid names are fnnjax, cs231n"):
        check_backprop(fnnjax.backprop, convention="keras")
    affine_backward = load("cs231n_right", "layers.py").affine_backward
    with pytest.raises(UsageError, match=r"affine_backward\(dout, cache\) is no nielsen function"):
        check_backprop(affine_backward, convention="nielsen")


def test_top_level_name_is_the_grader_s():
    assert fnnjax.check_backprop is check_backprop and "check_backprop" in fnnjax.__all__
    # that `import fnnjax` does not import the grader is asserted in the notebook's kernel, below


# ----------------------------------------------------------------------------------------------
# In a real notebook, in a real kernel


NOTEBOOK_CELLS = [
    """
    import sys
    import fnnjax
    print("grader imported with fnnjax:", "fnnjax.verify.grader" in sys.modules)
    import numpy as np
    from fnnjax import check_backprop
    np.random.seed(1)
    """,
    '''
    def linear_forward(A, W, b):
        Z = np.dot(W, A) + b
        return Z, (A, W, b)

    def linear_backward(dZ, cache):
        """The planted mistake: no 1/m."""
        A_prev, W, b = cache
        dW = np.dot(dZ, A_prev.T)
        db = np.sum(dZ, axis=1, keepdims=True)
        return np.dot(W.T, dZ), dW, db
    ''',
    "check_backprop(linear_forward)",
    "check_backprop(linear_backward)",
    "print(np.random.rand())",
]


def test_in_a_real_notebook_the_result_is_a_table():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in NOTEBOOK_CELLS]
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [cell.outputs for cell in nb.cells]
    assert outputs[0][0]["text"] == "grader imported with fnnjax: False\n"  # fnnjax.check_backprop is lazy
    passed, failed = (outputs[k][0]["data"] for k in (2, 3))
    assert "text/html" in passed and "text/plain" in passed
    assert '<span class="pass">PASS</span> <b>linear_forward</b>' in passed["text/html"]
    assert "<td>linear_forward</td>" in passed["text/html"] or ">linear_forward</td>" in passed["text/html"]
    page = failed["text/html"]
    assert '<span class="fail">FAIL</span> <b>linear_backward</b>' in page
    assert "a sum where the mean belongs (divide by m)" in page and "dW" in page
    assert "FAIL 2 of 2 cases" in failed["text/plain"]
    np.random.seed(1)
    assert outputs[4][0]["text"].strip() == str(np.random.rand())  # the notebook's random state is untouched


# ----------------------------------------------------------------------------------------------
# The tutorial's table is a real run's


def test_the_tutorial_shows_the_table_a_run_shows_now():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    sys.modules["docs_generate"] = generate  # dataclasses look their module up
    spec.loader.exec_module(generate)
    shown = (ROOT / "docs" / "snippets" / generate.NOTEBOOK_TABLE).read_text()
    assert generate.notebook_table() == shown, "re-run: python docs/generate.py check-in-notebook.html"
    assert f'--8<-- "snippets/{generate.NOTEBOOK_TABLE}"' in (ROOT / generate.NOTEBOOK_PAGE).read_text()
    assert "a sum where the mean belongs (divide by m)" in shown
