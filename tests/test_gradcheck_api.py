"""The gradient checker's public building blocks: fnnjax.gradcheck and the verify modules behind
``--backprop`` (every docstring example runs), the flat layout is ravel_pytree's, float32 results
are judged with float32 tolerances, and verify uses no private name of fnnjax."""

import doctest
import importlib
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import fnnjax
from fnnjax import gradcheck as gc

ROOT = Path(__file__).resolve().parent.parent

MODULES = [
    "fnnjax.gradcheck",
    "fnnjax.gradcheck._tolerance",
    "fnnjax.gradcheck._rounding",
    "fnnjax.gradcheck._layout",
    "fnnjax.gradcheck._oracles",
    "fnnjax.gradcheck._stencil",
    "fnnjax.gradcheck._diagnose",
    "fnnjax.gradcheck._judge",
    "fnnjax.gradcheck._check",
    "fnnjax.verify.grader._wire",
    "fnnjax.verify.grader._submission",
    "fnnjax.verify.grader._gradescope",
    "fnnjax.verify.grader._detect",
    "fnnjax.verify.grader._isolation",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name files of the repository
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
    assert result.attempted > 0


def test_public_names_are_documented_with_args_and_an_example():
    assert fnnjax.check_gradients is gc.check_gradients
    assert fnnjax.GradCheckReport is gc.GradCheckReport and fnnjax.GradientCheckError is gc.GradientCheckError
    for name in gc.__all__:
        obj = getattr(gc, name)
        if callable(obj) and not isinstance(obj, type):
            doc = obj.__doc__ or ""
            assert "Args:" in doc and "Returns:" in doc and "Example:" in doc, name


def test_the_flat_layout_is_ravel_pytrees(x64):
    params = {"b": np.arange(3.0), "w": np.arange(6.0).reshape(2, 3), "z": [np.ones((2, 2))]}
    layout = gc.leaf_layout(params)
    flat, unravel = ravel_pytree(params)
    np.testing.assert_array_equal(layout.ravel(params), np.asarray(flat))
    for got, want in zip(layout.split(np.asarray(flat)), jax.tree_util.tree_leaves(unravel(flat))):
        np.testing.assert_array_equal(got, np.asarray(want))
    assert layout.paths == ("['b']", "['w']", "['z'][0]") and layout.size == 13 and layout.dtype == "float64"


def test_a_float32_gradient_is_judged_with_float32_tolerances(x64):
    params = {"w": np.linspace(-1.0, 1.0, 6)}
    layout = gc.leaf_layout(params)
    theta = layout.ravel(params)
    plan = gc.plan_oracles(theta, gc.fd_steps(theta), np.ones(6))
    values = gc.evaluate_oracles(lambda t: jnp.sum(jnp.sin(t) * t), plan)
    exact = np.sin(theta) + theta * np.cos(theta)
    rounded = [exact.astype(np.float32)]
    assert not gc.analyze_full(values, plan, rounded, layout).passed  # float64 tolerances: rounding is an error
    report = gc.analyze_full(values, plan, rounded, layout, gradient_dtype="float32")
    assert report.passed, report.render()
    wrong = [(exact * (1 + 1e-4)).astype(np.float32)]  # far above float32 rounding
    assert not gc.analyze_full(values, plan, wrong, layout, gradient_dtype="float32").passed


def test_verify_uses_no_private_name_of_fnnjax_and_imports_without_a_cycle():
    files = sorted((ROOT / "verify").rglob("*.py"))
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        assert not re.search(r"fnnjax\._(?!_)|from fnnjax import _", text), path
    for first in ("fnnjax.gradcheck._check", "fnnjax.verify.grader._user_backprop"):  # either side first: no cycle
        proc = subprocess.run(
            [sys.executable, "-c", f"import {first}; import fnnjax.cli, fnnjax.verify.cli, fnnjax.verify"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr


def test_the_worker_modules_import_no_jax():
    from fnnjax.verify.grader._worker import BOOTSTRAP

    code = BOOTSTRAP.replace("from fnnjax_grader._worker import serve\n", "").replace("serve(", "print(")
    code += (
        "import fnnjax_grader._worker, fnnjax_grader._calls, fnnjax_grader._wire, fnnjax_grader._submission\n"
        "assert 'jax' not in sys.modules and 'fnnjax' not in sys.modules, sorted(sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "verify" / "grader"), "0", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
