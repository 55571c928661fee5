"""Submissions as students hand them in: a file inside a course package (absolute and relative
imports), a Jupyter notebook and its nbconvert export (magics, ``%run``, Colab's ``drive.mount``,
helper imports, test calls that would crash), a folder or a ``.zip`` (junk ignored, unsafe archives
refused), Python 2 code, and the course's environment (a missing package or helper) said as such.

The submissions under ``tests/submissions/handins/`` are written here to reproduce the forms found in
real hand-ins. Every verdict asserted is established independently of the grader: the submission's
own gradient in float64 against central differences of the course's loss written in this file.
"""

import ast
import importlib.util
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from course_math import central_differences_by_name

from fnnjax.cli import main
from fnnjax.verify.grader import _handin
from fnnjax.verify.grader._environment import python2_construct
from fnnjax.verify.grader._handin import HandInError, find_parts, open_handin
from fnnjax.verify.grader._isolation import Worker
from fnnjax.verify.grader._submission import (
    LoadError,
    describe,
    import_target,
    load_notes,
    location,
    parse_target,
    submission_root,
)
from fnnjax.verify.grader._user_backprop import SubmissionError, check_user_backprop

HANDINS = Path(__file__).resolve().parent / "submissions" / "handins"
NOTEBOOK = "Building_your_Deep_Neural_Network_Step_by_Step.ipynb"
EXPORT = "building_your_deep_neural_network_step_by_step.py"
GRADER_PATHS = re.compile(r"verify/grader|site-packages|fnnjax_grader")


def copy(tmp_path, name, changes=(), edit=None):
    """A copy of a hand-in folder, with ``changes`` (old, new) made in the file ``edit``."""
    dest = tmp_path / name
    shutil.copytree(HANDINS / name, dest)
    if edit is not None:
        path = dest / edit
        text = path.read_text()
        for old, new in changes:
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        path.write_text(text)
    return dest


def load(path, entry=None):
    """The submission imported as the grader's worker imports it (in this process)."""
    spec = f"{path}:{entry}" if entry else str(path)
    return import_target(parse_target(spec))


# ----------------------------------------------------------------------------------------------
# Independent verdicts: the submission's gradient against central differences of the course's loss


def _agree(got, want):
    """Every array within 1e-6 of the central differences, relative to the array's largest entry."""
    return all(np.max(np.abs(got[k] - want[k])) <= 1e-6 * max(1e-8, np.max(np.abs(want[k]))) for k in want)


def cs231n_right(cls, reg=0.1, **kwargs):
    """cs231n's fully connected net: its (loss, grads) against softmax-mean + 0.5·reg·ΣW² by central differences."""
    rng = np.random.default_rng(0)
    np.random.seed(0)
    net = cls([6, 5], input_dim=4, num_classes=3, reg=reg, weight_scale=0.5, dtype=np.float64, **kwargs)
    for key in [k for k in net.params if k.startswith("b")]:  # no pre-activation exactly at ReLU's kink
        net.params[key] = rng.standard_normal(net.params[key].shape)
    X, y = rng.standard_normal((7, 4)), rng.integers(0, 3, 7)
    loss, grads = net.loss(X, y)
    n_layers = len(net.params) // 2

    def course_loss():
        a = X
        for i in range(1, n_layers + 1):
            a = a @ net.params[f"W{i}"] + net.params[f"b{i}"]
            if i < n_layers:
                a = np.maximum(a, 0)
        a = a - a.max(axis=1, keepdims=True)
        logp = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
        data = -logp[np.arange(len(y)), y].mean()
        return data + 0.5 * reg * sum(np.sum(net.params[f"W{i}"] ** 2) for i in range(1, n_layers + 1))

    return abs(loss - course_loss()) < 1e-8 and _agree(grads, central_differences_by_name(course_loss, net.params))


def a1_right(cls, reg=0.05):
    """cs231n assignment 1 (2017 on): softmax-mean + reg·ΣW² (no 0.5)."""
    rng = np.random.default_rng(1)
    net = cls(4, 6, 3, std=0.5)
    X, y = rng.standard_normal((7, 4)), rng.integers(0, 3, 7)
    loss, grads = net.loss(X, y, reg=reg)
    p = net.params

    def course_loss():
        s = np.maximum(X @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]
        s = s - s.max(axis=1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        return -logp[np.arange(7), y].mean() + reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))

    return abs(loss - course_loss()) < 1e-8 and _agree(grads, central_differences_by_name(course_loss, p))


def dlai_right(module):
    """deeplearning.ai: L_model_backward's dW, db against the cross-entropy cost (ReLU hidden, sigmoid out)."""
    rng = np.random.default_rng(2)
    dims = [4, 5, 3, 1]
    params = {}
    for i in range(1, len(dims)):
        params[f"W{i}"] = rng.standard_normal((dims[i], dims[i - 1]))
        params[f"b{i}"] = rng.standard_normal((dims[i], 1))
    X, Y = rng.standard_normal((4, 6)), rng.integers(0, 2, (1, 6)).astype(float)
    AL, caches = module.L_model_forward(X, params)
    grads = module.L_model_backward(AL, Y, caches)

    def cost():
        a = X
        for i in range(1, len(dims)):
            z = params[f"W{i}"] @ a + params[f"b{i}"]
            a = np.maximum(z, 0) if i < len(dims) - 1 else 1 / (1 + np.exp(-z))
        return -np.mean(Y * np.log(a) + (1 - Y) * np.log(1 - a))

    want = central_differences_by_name(cost, params)
    return _agree({k: grads["d" + k] for k in want}, want)


# ----------------------------------------------------------------------------------------------
# cs231n: a file inside the course package, imported the way the course's notebook imports it


@pytest.mark.parametrize(
    "folder, imports",
    [
        ("cs231n_2018", "from cs231n.layers import *"),  # 2016-2019: absolute imports
        ("cs231n_2021", "from ..layers import *"),  # 2020 on: relative, classifiers/ has no __init__.py
    ],
)
def test_a_course_package_file_imports_with_no_pythonpath(folder, imports, monkeypatch):
    monkeypatch.delenv("PYTHONPATH", raising=False)
    path = HANDINS / folder / "cs231n" / "classifiers" / "fc_net.py"
    assert imports in path.read_text()
    module = load(path)
    assert module.__name__ == "cs231n.classifiers.fc_net"
    assert submission_root(path) == HANDINS / folder
    found = describe(module)
    assert "FullyConnectedNet" in found["classes"]
    assert not set(found["functions"]) & {"affine_forward", "softmax_loss"}  # the course's layers are not graded
    assert cs231n_right(module.FullyConnectedNet)  # the verdict, independently of the grader
    if folder == "cs231n_2018" and importlib.util.find_spec("torch") is None:  # fast_layers.py imports torch
        assert any(
            re.match(r"the submission imports torch \(cs231n/fast_layers.py line 3\), which is not installed", n)
            for n in load_notes(module)
        ), load_notes(module)
    assert parse_target(str(path)).entry is None and parse_target(f"{path}:TwoLayerNet").entry == "TwoLayerNet"
    assert parse_target("cs231n.classifiers.fc_net") == (
        "cs231n.classifiers.fc_net",
        "cs231n.classifiers.fc_net",
        None,
        False,
    )


def test_a_wrong_package_submission_is_wrong_independently(tmp_path):
    folder = copy(
        tmp_path,
        "cs231n_2021",
        [('grads[f"W{i}"] += self.reg * self.params[f"W{i}"]', 'grads[f"W{i}"] += 0.0')],  # forgot reg·W
        "cs231n/classifiers/fc_net.py",
    )
    module = load(folder / "cs231n" / "classifiers" / "fc_net.py")
    assert not cs231n_right(module.FullyConnectedNet)
    assert cs231n_right(module.FullyConnectedNet, reg=0.0)  # right where reg = 0


def test_a_file_of_a_package_handed_in_without_its_helpers_says_which_file_is_missing(tmp_path):
    folder = copy(tmp_path, "cs231n_2021")
    (folder / "cs231n" / "layer_utils.py").unlink()
    with pytest.raises(
        LoadError,
        match=r"it imports cs231n.layer_utils \(.*fc_net.py line 6\), but the hand-in has no "
        r"cs231n/layer_utils.py: hand in the whole cs231n folder",
    ):
        load(folder / "cs231n" / "classifiers" / "fc_net.py")


def test_a_missing_course_package_is_the_autograders_setup_not_the_student(tmp_path):
    path = HANDINS / "cs231n_a1_2017" / "cs231n" / "classifiers" / "neural_net.py"
    with pytest.raises(LoadError) as info:
        load(path)
    message = str(info.value)
    assert re.search(
        r"the submission imports past \(.*neural_net.py line 7\), which is not installed where the grader runs: "
        r"add it to the autograder's setup \(pip install future\)$",
        message,
    ), message
    assert "fix the file" not in message and not GRADER_PATHS.search(message)
    # provided by the instructor beside the submission (as setup.sh does): it loads, and it is right
    folder = copy(tmp_path, "cs231n_a1_2017")
    (folder / "cs231n" / "classifiers" / "past").mkdir()
    (folder / "cs231n" / "classifiers" / "past" / "__init__.py").write_text("")
    (folder / "cs231n" / "classifiers" / "past" / "builtins.py").write_text("xrange = range\n")
    module = load(folder / "cs231n" / "classifiers" / "neural_net.py")
    assert a1_right(module.TwoLayerNet)


# ----------------------------------------------------------------------------------------------
# deeplearning.ai: notebooks and nbconvert's export


@pytest.mark.parametrize("folder, name", [("dlai_w4a1", NOTEBOOK), ("dlai_export", EXPORT)])
def test_a_notebook_keeps_its_definitions_and_says_what_it_skipped(folder, name):
    module = load(HANDINS / folder / name)
    found = describe(module)
    assert set(found["functions"]) == {
        "initialize_parameters_deep",
        "linear_forward",
        "linear_activation_forward",
        "L_model_forward",
        "compute_cost",
        "linear_backward",
        "linear_activation_backward",
        "L_model_backward",
        "update_parameters",
        "L_layer_model",
    }  # sigmoid, relu... come from the course's dnn_utils.py: not the student's
    assert module.L_layer_model.__defaults__[0] == [12288, 20, 7, 5, 1]  # a literal setting kept
    assert dlai_right(module)  # the second L_model_backward (the fix) is the one graded
    notes = "\n".join(load_notes(module))
    for skipped in (
        "matplotlib inline",  # magics, shell lines, Colab
        "drive.mount('/content/drive')",
        "cd",
        "helpers.py",
        "pip install h5py",
        "initialize_parameters_deep_test(initialize_parameters_deep)",  # test calls, experiments
        "train_x_orig, train_y, test_x_orig",
        "np.random.seed(1)",
        "time",
    ):
        assert f"{skipped}" in notes, skipped
    assert re.search(
        r"the submission imports h5py \(.* line \d+\), which is not installed where the grader runs; "
        r"the graded code does not use it",
        notes,
    )
    assert "statements skipped" in notes
    if name.endswith(".ipynb"):
        assert "skipped code cell 2 line 9: %matplotlib inline" in notes


def test_a_notebook_graded_as_it_was_last_defined_fails_when_the_last_definition_is_wrong(tmp_path):
    folder = copy(tmp_path, "dlai_w4a1")
    path = folder / NOTEBOOK
    data = json.loads(path.read_text())
    fixes = [k for k, c in enumerate(data["cells"]) if "dAL = - (np.divide" in "".join(c["source"])]
    assert len(fixes) == 1
    del data["cells"][fixes[0]]
    path.write_text(json.dumps(data))
    assert not dlai_right(load(path))


def test_the_course_helper_the_notebook_imports_but_the_hand_in_lacks_is_supplied_and_said(tmp_path):
    folder = copy(tmp_path, "dlai_w4a1")
    (folder / "dnn_utils.py").unlink()
    module = load(folder / NOTEBOOK)
    assert dlai_right(module)  # the student's functions, with the course's sigmoid, relu and their backwards
    assert any("imports dnn_utils, which the hand-in does not include" in n for n in load_notes(module))
    assert "dnn_utils" not in sys.modules  # the stand-in is the submission's alone


def test_a_helper_the_notebook_uses_but_nobody_installed_is_the_environment(tmp_path):
    folder = copy(tmp_path, "dlai_w4a1", [("from dnn_utils import", "from course_utils import")], NOTEBOOK)
    (folder / "dnn_utils.py").unlink()
    notes = load_notes(load(folder / NOTEBOOK))
    assert any("imports course_utils" in n and "fails if the grading calls it" in n for n in notes), notes
    with pytest.raises(SubmissionError) as info:  # the graded functions call it: the course's environment
        check_user_backprop(str(folder / NOTEBOOK), seed=0)
    message = str(info.value)
    assert re.search(
        r"cannot grade .*: ModuleNotFoundError: course_utils\.\w+ is used, but the submission imports course_utils, "
        r"which is not installed where the grader runs: add it to the autograder's setup \(put the course's "
        r"course_utils.py beside the submission",
        message,
    ), message
    assert "fix the" not in message


def test_a_package_a_notebook_uses_only_outside_the_graded_functions_stands_in(tmp_path):
    folder = copy(tmp_path, "dlai_w4a1")
    path = folder / NOTEBOOK
    data = json.loads(path.read_text())
    cell = "import torch_not_here\n\ndef supply_chain_graph(rows):\n    return torch_not_here.tensor(rows)\n"
    data["cells"].insert(0, {"cell_type": "code", "metadata": {}, "outputs": [], "source": cell})
    path.write_text(json.dumps(data))
    module = load(path)
    assert dlai_right(module)
    assert any("imports torch_not_here" in n for n in load_notes(module))


def test_a_notebook_whose_definition_is_python_2_says_so(tmp_path):
    cells = [
        {"cell_type": "code", "source": ["import numpy as np\n"]},
        {"cell_type": "code", "source": ["def L_model_backward(AL, Y, caches):\n", "    print 'backward'\n"]},
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    with pytest.raises(LoadError, match=r"this is Python 2 code \(a print statement, code cell 2 line 2\)"):
        load(path)


# ----------------------------------------------------------------------------------------------
# Python 2, and messages that never point into the grader


def test_python_2_code_gets_one_line_naming_the_construct_and_line(capsys):
    path = HANDINS / "nielsen_py2" / "network.py"
    with pytest.raises(LoadError) as info:
        load(path)
    assert str(info.value).endswith(
        f"this is Python 2 code (a print statement, {path} line 37): the grader runs Python 3; "
        "port it (e.g. with 2to3) and resubmit"
    )
    assert main(["verify", "--backprop", str(path)]) == 2
    err = capsys.readouterr().err
    assert "this is Python 2 code (a print statement" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "source, construct",
    [
        ("print 'epoch', j\n", "a print statement"),
        ("print 'loss %f' % loss\n", "a print statement"),
        ("try:\n    pass\nexcept ValueError, e:\n    pass\n", "except E, e"),
        ("x = `1`\n", "backticks"),
        ("if 1 <> 2:\n    pass\n", "the <> operator"),
        ("os.chmod(p, 0777)\n", "an octal literal like 0777"),
        ("n = 10L\n", "a long literal like 10L"),
        ("raise ValueError, 'bad'\n", "raise E, message"),
        ("exec 'x = 1'\n", "an exec statement"),
    ],
)
def test_python_2_constructs_are_named(source, construct):
    with pytest.raises(SyntaxError) as info:
        ast.parse(source, "student.py")
    assert python2_construct(info.value) == construct


def test_a_python_3_syntax_error_is_the_students_to_fix(tmp_path):
    path = tmp_path / "fc_net.py"
    path.write_text("def loss(self, X, y=None)\n    return 0\n")
    with pytest.raises(LoadError, match=r"SyntaxError: .* \(.*fc_net.py line 1\); fix the file and rerun"):
        load(path)


def test_no_message_points_into_the_graders_files(tmp_path):
    try:
        parse_target("")  # raised inside the grader: its frames are never named
    except LoadError as err:
        assert "test_grader_handins.py" in location(err) and not GRADER_PATHS.search(location(err))
    path = tmp_path / "net.py"
    path.write_text("import numpy as np\nnp.ones((2, 3)) @ np.ones((2, 3))\n")
    with pytest.raises(LoadError) as info:
        load(path)
    assert "net.py line 2" in str(info.value) and not GRADER_PATHS.search(str(info.value))


# ----------------------------------------------------------------------------------------------
# Folders and zips


def handin_folder(tmp_path):
    """A student's folder: a cs231n package and a notebook, with what editors and macOS leave behind."""
    root = tmp_path / "handin"
    shutil.copytree(HANDINS / "cs231n_2021", root / "assignment2")
    shutil.copytree(HANDINS / "dlai_w4a1", root / "week4")
    junk = root / "__MACOSX" / "assignment2" / "cs231n" / "classifiers"
    junk.mkdir(parents=True)
    (junk / "._fc_net.py").write_bytes(b"\x00\x05\x16\x07class FullyConnectedNet:\n")
    (root / "week4" / ".ipynb_checkpoints").mkdir()
    shutil.copy(root / "week4" / NOTEBOOK, root / "week4" / ".ipynb_checkpoints" / "nb-checkpoint.ipynb")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "week4" / "dnn_app_utils_v3.py").write_text("def L_model_backward(AL, Y, caches):\n    return {}\n")
    (root / "assignment2" / "debug_net.py").write_text("class TwoLayerNet:\n    def loss(self, X, y):\n        pass\n")
    return root


def test_a_folder_hand_in_has_one_part_per_gradable_file(tmp_path):
    parts, ignored = find_parts(handin_folder(tmp_path))
    assert [(p.name, p.course) for p in parts] == [
        ("assignment2/cs231n/classifiers/fc_net.py", "cs231n"),
        ("week4/" + NOTEBOOK, "deeplearning-ai"),
    ]  # not the course's dnn_app_utils_v3.py, a scratch script, the checkpoint, or macOS's ._ copies
    assert {".DS_Store", "__MACOSX", "week4/.ipynb_checkpoints"} <= set(ignored)


def write_zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, b"target")
            else:
                zf.writestr(name, data)
    return path


def link(name):
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o120777 << 16
    return info


@pytest.mark.parametrize(
    "entries, message",
    [
        ([("ok.py", "x = 1\n"), ("../evil.py", "x = 1\n")], r"holds '../evil.py', a path outside its folder: refused"),
        ([("/etc/evil.py", "x = 1\n")], r"holds '/etc/evil.py', a path outside its folder: refused"),
        ([("sub/link.py", link("sub/link.py"))], r"holds 'sub/link.py', a link: refused"),
        ([("/".join(["d"] * 25) + "/x.py", "x = 1\n")], r"26 folders deep \(at most 20\): refused"),
        ([("a.py", "x = 1\n"), ("b.py", "")], r"found nothing to grade in hw.zip: .* \(it holds a.py, b.py\)"),
    ],
)
def test_unsafe_or_empty_zips_are_refused_in_one_line(tmp_path, entries, message):
    archive = write_zip(tmp_path / "hw.zip", entries)
    with pytest.raises(HandInError, match=message):
        with open_handin(str(archive)):
            pass
    assert not (tmp_path / "evil.py").exists()


def test_an_oversized_or_crowded_zip_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(_handin, "MAX_BYTES", 2**20)
    archive = write_zip(tmp_path / "big.zip", [("data.bin", b"\0" * (2 * 2**20))])  # 2 MiB of zeros: a few KiB zipped
    assert archive.stat().st_size < 100_000
    with pytest.raises(HandInError, match=r"big.zip unpacks to 2 MiB, more than 1 MiB: leave the data sets out"):
        with open_handin(str(archive)):
            pass
    monkeypatch.setattr(_handin, "MAX_FILES", 3)
    archive = write_zip(tmp_path / "many.zip", [(f"f{k}.py", "") for k in range(5)])
    with pytest.raises(HandInError, match=r"many.zip holds 5 files, more than 3"):
        with open_handin(str(archive)):
            pass


@pytest.mark.slow
def test_a_zip_hand_in_is_graded_part_by_part_through_the_documented_command(tmp_path, capsys, monkeypatch):
    """The whole pipeline (a worker per part): the right notebook passes, the wrong package fails."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    root = handin_folder(tmp_path)
    wrong = root / "assignment2" / "cs231n" / "classifiers" / "fc_net.py"
    forgot = wrong.read_text().replace('grads[f"W{i}"] += self.reg * self.params[f"W{i}"]', 'grads[f"W{i}"] += 0.0')
    wrong.write_text(forgot)
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    results = tmp_path / "results.json"
    code = main(["verify", "--backprop", str(archive), "--gradescope", str(results), "--points", "10"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "== part assignment2/cs231n/classifiers/fc_net.py ==" in out and f"== part week4/{NOTEBOOK} ==" in out
    data = json.loads(results.read_text())
    by_part = {}
    for test in data["tests"]:
        part = test["name"].split(": ")[0]
        by_part.setdefault(part, []).append(test["status"])
    cs231n, notebook = by_part["assignment2/cs231n/classifiers/fc_net.py"], by_part[f"week4/{NOTEBOOK}"]
    assert set(cs231n) == {"passed", "failed"}  # reg·W forgotten: wrong where reg > 0 only (established above)
    assert set(notebook) == {"passed"}
    assert data["score"] <= 10 and "skipped" in data["output"] and "h5py" in data["output"]
    assert not GRADER_PATHS.search(out) and "fnnjax-handin-" not in json.dumps(data)


@pytest.mark.parametrize("folder", ["cs231n_2018", "cs231n_2021"])
def test_a_package_file_loads_in_the_graders_own_worker_as_documented(folder, monkeypatch):
    """What ``fnnjax verify --backprop cs231n/classifiers/fc_net.py`` runs, from the hand-in's folder, no
    PYTHONPATH: the worker (sandbox copy included) imports it; the grading itself is the zip test's."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.chdir(HANDINS / folder)
    with Worker(parse_target("cs231n/classifiers/fc_net.py"), timeout=10) as worker:
        loaded = worker.load()
    assert loaded.ok, loaded.message
    assert "FullyConnectedNet" in loaded.value["description"]["classes"]
    assert "affine_forward" not in loaded.value["description"]["functions"]


def test_a_refused_zip_is_one_line_on_the_command_line_and_a_failure_on_gradescope(tmp_path, capsys):
    archive = write_zip(tmp_path / "hw.zip", [("../evil.py", "class TwoLayerNet:\n    pass\n")])
    assert main(["verify", "--backprop", str(archive)]) == 2
    err = capsys.readouterr().err
    assert "hw.zip holds '../evil.py', a path outside its folder: refused" in err and "Traceback" not in err
    results = tmp_path / "results.json"
    assert main(["verify", "--backprop", str(archive), "--gradescope", str(results)]) == 1
    data = json.loads(results.read_text())
    assert data["score"] == 0 and "a path outside its folder: refused" in data["tests"][0]["output"]
    assert not (tmp_path.parent / "evil.py").exists()


def test_a_name_missing_from_an_installed_module_is_the_courses_version_not_the_student(tmp_path):
    path = tmp_path / "fc_net.py"
    path.write_text("import numpy as np\nfrom numpy import no_such_name_xyz\n")
    with pytest.raises(LoadError) as info:
        load(path)
    message = str(info.value)
    assert "cannot import name 'no_such_name_xyz' from 'numpy'" in message and "fc_net.py line 2" in message
    assert "the numpy installed where the grader runs is not the version the submission was written for" in message
    assert not GRADER_PATHS.search(message) and "fix the file" not in message
