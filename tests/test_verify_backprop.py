"""``fnnjax verify --backprop``: loading a user's function (every error message), a right backprop
passes, every classic mistake fails with the right diagnosis, and bad return values are usage errors."""

import json
import re
import textwrap
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import fnnjax
from fnnjax.cli import UsageError
from fnnjax.verify.grader._user_backprop import BATCH_SIZE, CASES, check_user_backprop, load_user_function

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RIGHT = f"{EXAMPLES}/student_backprop.py:backprop"
WRONG = f"{EXAMPLES}/student_backprop_wrong.py"

_reports = {}


def report_for(spec_or_fn, **kwargs):
    """check_user_backprop, eagerly (the tests check many functions: eager ops are shared), memoised."""
    key = (spec_or_fn, tuple(sorted(kwargs.items())))
    if key not in _reports:
        fn = load_user_function(spec_or_fn) if isinstance(spec_or_fn, str) else spec_or_fn
        _reports[key] = check_user_backprop(fn, jit=False, **kwargs)
    return _reports[key]


# ----------------------------------------------------------------------------------------------
# Loading


def test_load_by_path_and_by_module(monkeypatch):
    assert load_user_function(RIGHT).__name__ == "backprop"
    assert load_user_function("fnnjax:backprop") is fnnjax.backprop
    monkeypatch.chdir(EXAMPLES.parent)  # module form: the current directory is on the path
    assert load_user_function("examples.student_backprop:backprop").__name__ == "backprop"


def write(tmp_path, name, source):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("student_backprop", r"--backprop expects MODULE:FUNCTION or path/to/file.py:FUNCTION, got 'student_backprop'"),
        ("examples/student_backprop.py:", r"'' is not a function name"),
        ("no/such/file.py:backprop", r"cannot load 'no/such/file.py': no such file"),
        (
            "no_such_module_xyz:backprop",
            r"cannot import module 'no_such_module_xyz': no module named 'no_such_module_xyz'",
        ),
        ("not-a-module:backprop", r"'not-a-module' is neither a module name"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(UsageError, match=message):
        load_user_function(spec)


def test_import_errors_are_one_line_with_file_and_line(tmp_path):
    bad = write(tmp_path, "syntax.py", "def backprop(mlp, params, x, y, loss='mse', l2=0.0)\n    return 1\n")
    with pytest.raises(UsageError, match=r"importing .*syntax.py failed: SyntaxError: .* \(.*syntax.py line 1\)"):
        load_user_function(f"{bad}:backprop")
    missing = write(
        tmp_path,
        "deps.py",
        "import numpy\nimport no_such_dependency_xyz\ndef backprop():\n    no_such_dependency_xyz.f()\n",
    )
    with pytest.raises(
        UsageError,
        match=r"the submission imports no_such_dependency_xyz \(.*deps.py line 2\), which is not installed where "
        r"the grader runs: add it to the autograder's setup",
    ):
        load_user_function(f"{missing}:backprop")
    raising = write(tmp_path, "raises.py", "x = 1\nraise RuntimeError('setup failed')\n")
    with pytest.raises(UsageError, match=r"RuntimeError: setup failed \(.*raises.py line 2\)"):
        load_user_function(f"{raising}:backprop")
    text = write(tmp_path, "grads.txt", "")
    with pytest.raises(UsageError, match=r"not a .py file"):
        load_user_function(f"{text}:backprop")


def test_missing_uncallable_and_wrong_signature(tmp_path):
    module = write(
        tmp_path,
        "student.py",
        """
        SCALE = 2

        def helper(z):
            return z

        def backprop(mlp, params, x):
            return params

        def grads(mlp, params, x, y, *, loss="mse"):
            return params
    """,
    )
    with pytest.raises(UsageError, match=r"has no function 'backprp' \(it defines backprop, grads, helper\)"):
        load_user_function(f"{module}:backprp")
    with pytest.raises(UsageError, match=r"student.py:SCALE is a int, not a function"):
        load_user_function(f"{module}:SCALE")
    with pytest.raises(
        UsageError,
        match=r"has the signature \(mlp, params, x\), which cannot be called as "
        r"fn\(mlp, params, x, y, loss=..., l2=...\)",
    ):
        load_user_function(f"{module}:backprop")
    with pytest.raises(UsageError, match=r"got an unexpected keyword argument 'l2'"):
        load_user_function(f"{module}:grads")


# ----------------------------------------------------------------------------------------------
# Right functions pass


def test_right_backprop_passes_every_case():
    report = check_user_backprop(load_user_function(RIGHT))  # traced: one program for every case
    assert report.passed and report.first_failure is None
    assert len(report.cases) == len(CASES) and all(c.passed for c in report.cases)
    text = report.render()
    assert f"PASS: all {len(CASES)} cases agree with jax.grad and central differences" in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["status"] == "pass" and len(d["cases"]) == len(CASES)
    assert {c["check"]["dtype"] for c in d["cases"]} == {"float64"}


def test_cases_cover_depths_activations_losses_and_l2():
    assert {len(c.sizes) - 1 for c in CASES} == {1, 2, 3, 4}
    assert {a for c in CASES for a in c.hidden} == set(fnnjax.HIDDEN_ACTIVATIONS)
    assert {(c.output, c.loss) for c in CASES} >= {
        ("softmax", "cross_entropy"),
        ("sigmoid", "cross_entropy"),
        ("identity", "mse"),
        ("tanh", "mse"),
        ("sigmoid", "squared_error"),
    }
    assert {c.l2 > 0 for c in CASES} == {True, False}
    assert any(m != n for c in CASES for n, m in zip(c.sizes, c.sizes[1:]))  # transposes change shape
    assert BATCH_SIZE > 1 and BATCH_SIZE not in {m for c in CASES for m in c.sizes}


def test_fnnjax_backprop_and_an_untraceable_function_pass():
    assert report_for(fnnjax.backprop).passed

    def numpy_backprop(mlp, params, x, y, loss="cross_entropy", l2=0.0):
        if float(np.asarray(x)[0, 0]) == 12345.0:  # a Python branch on a value: cannot be traced
            raise AssertionError
        return fnnjax.backprop(mlp, params, x, y, loss=loss, l2=l2)

    assert check_user_backprop(numpy_backprop).passed  # jit fails, the eager fallback runs


# ----------------------------------------------------------------------------------------------
# Classic mistakes: the first failing case, the parameter, and the diagnosis


@pytest.mark.parametrize(
    "function, first, failing, diagnosis",
    [
        (
            "backprop",
            1,
            ("W^(1)", "b^(1)"),
            r"(?s)missing f'\(z\^\(l\)\) in the hidden error terms.*"
            r"wrong only in layer 1",
        ),
        ("backprop_transposed", 1, ("W^(1)", "W^(2)"), r"transposed: got has shape \(4, 6\) and equals expected.T"),
        ("backprop_factor_two", 4, ("W^(1)",), r"off by a constant factor 2 \(the data term is doubled"),
        ("backprop_sum", 1, ("W^(1)", "b^(1)"), r"a sum over the batch where the mean belongs .*N = 7 times"),
        ("backprop_sign", 1, ("W^(1)", "b^(1)"), r"sign flipped"),
        ("backprop_no_l2", 1, ("W^(1)", "W^(2)"), r"missing the L2 term l2 W\^\(1\)"),
        ("backprop_bias_decay", 1, ("b^(1)", "b^(2)"), r"bias decayed: db\^\(1\) includes l2 b\^\(1\)"),
        (
            "backprop_first_layer",
            1,
            ("W^(1)",),
            r"(?s)W\^\(1\): a sum over the batch.*N = 7 times too big.*"
            r"wrong only in layer 1: every other layer is right",
        ),
    ],
)
def test_classic_mistake_is_caught_and_diagnosed(function, first, failing, diagnosis):
    report = report_for(f"{WRONG}:{function}")
    assert not report.passed
    result = report.first_failure
    assert report.cases.index(result) + 1 == first
    assert set(failing) <= set(result.failing)
    text = report.render()
    assert f"First failing case: #{first}" in text
    assert re.search(diagnosis, "\n".join(result.diagnosis)), result.diagnosis
    assert "diagnosis" in text and "expected" in text and "got" in text


def test_mistakes_that_only_show_with_l2_pass_the_l2_free_cases():
    report = report_for(f"{WRONG}:backprop_no_l2")
    assert [c.passed for c in report.cases] == [c.l2 == 0 for c in CASES]


def test_failure_render_names_case_parameter_element_and_errors():
    report = report_for(f"{WRONG}:backprop")
    text = report.render()
    assert "FAIL: 5 of 6 cases fail. First failing case: #1" in text
    assert "case         4-6-3 (N = 7), activations relu, softmax, loss cross_entropy, l2 = 0.1" in text
    assert "parameter    " in text and "worst element" in text
    assert "(jax.grad; central differences give" in text and "rel " in text and "tolerance" in text
    assert "taylor test  remainder rate 1.00" in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["status"] == "fail" and d["first_failure"] == 1
    assert d["cases"][0]["diagnosis"][0].startswith("W^(1), b^(1): missing f'")


# ----------------------------------------------------------------------------------------------
# Functions that raise or return the wrong thing


def test_a_function_that_raises_is_reported_with_its_case():
    def deep_fails(mlp, params, x, y, loss="cross_entropy", l2=0.0):
        if mlp.num_layers >= 3:
            raise IndexError("only two layers supported")
        return fnnjax.backprop(mlp, params, x, y, loss=loss, l2=l2)

    report = report_for(deep_fails)
    assert [c.passed for c in report.cases[:2]] == [True, True]  # depth 2 and 1
    first = report.first_failure
    assert report.cases.index(first) == 2 and first.error.startswith("IndexError: only two layers supported")
    assert "error        your function raised IndexError: only two layers supported" in report.render()


def test_wrong_structure_shape_and_dtype_are_usage_errors():
    def as_list(mlp, params, x, y, loss="cross_entropy", l2=0.0):
        return list(fnnjax.backprop(mlp, params, x, y, loss=loss, l2=l2))

    def as_tuples(mlp, params, x, y, loss="cross_entropy", l2=0.0):
        return tuple((g.W, g.b) for g in fnnjax.backprop(mlp, params, x, y, loss=loss, l2=l2))

    def bad_shape(mlp, params, x, y, loss="cross_entropy", l2=0.0):
        g = fnnjax.backprop(mlp, params, x, y, loss=loss, l2=l2)
        return (fnnjax.Layer(g[0].W, g[0].b[:1]),) + g[1:]

    def single(mlp, params, x, y, loss="cross_entropy", l2=0.0):
        g = fnnjax.backprop(mlp, params, x, y, loss=loss, l2=l2)
        return tuple(fnnjax.Layer(l.W.astype(jnp.float32), l.b.astype(jnp.float32)) for l in g)

    with pytest.raises(
        UsageError,
        match=r"returned a list of 2 Layers in case 1 .* \(expected treedef "
        r"PyTreeDef\(\(CustomNode\(namedtuple\[Layer\].*; got treedef "
        r"PyTreeDef\(\[CustomNode\(namedtuple\[Layer\]",
    ):
        check_user_backprop(as_list, jit=False)
    with pytest.raises(UsageError, match=r"returned a tuple of 2 tuples in case 1 .*return tuple\(fnnjax.Layer"):
        check_user_backprop(as_tuples, jit=False)
    with pytest.raises(UsageError, match=r"returned shape \(1,\) for db\^\(1\) in case 1 .* b\^\(1\) has shape \(6,\)"):
        check_user_backprop(bad_shape, jit=False)
    with pytest.raises(UsageError, match=r"returned float32 for dW\^\(1\) in case 1 .* params are float64"):
        check_user_backprop(single, jit=False)
