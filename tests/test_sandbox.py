"""The grader's side of the sandbox: a reply cannot crash it (generated malformed frames), a
coarser dtype than float32 fails in one line, a fresh seed per Gradescope run recorded in
results.json, and a provisional results.json written before the submission first runs."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fnnjax.cli import main
from fnnjax.verify.grader._wire import MAX_DEPTH, FrameReader, Opaque, WireError, decode, encode, frame, too_coarse

ROOT = Path(__file__).resolve().parent.parent


def raw(header: bytes, body: bytes = b"") -> bytes:
    return struct.pack(">Q", len(header)) + header + body


def test_a_header_nested_200000_deep_fails_in_one_line():
    for header in (b"[" * 200_000, b'{"a":' * 200_000, json.dumps({"message": {"ok": True}, "arrays": []}).encode()):
        reader = FrameReader()
        reader.feed(raw(header))
        if header.startswith(b'{"message"'):
            assert reader.next() == ({"ok": True}, [])
        else:
            with pytest.raises(WireError, match=f"nested more than {MAX_DEPTH} deep"):
                reader.next()


@pytest.mark.parametrize(
    "header, words",
    [
        ({"message": {}, "arrays": [{"dtype": "<f8", "shape": [-1]}]}, "malformed array shape"),
        ({"message": {}, "arrays": [{"dtype": "<f8", "shape": [2**40, 2**40]}]}, "more than"),
        ({"message": {}, "arrays": [{"dtype": "O", "shape": [1]}]}, "non-numeric"),
        ({"message": {}, "arrays": [{"dtype": "nonsense", "shape": [1]}]}, "unknown array dtype"),
        ({"message": {}, "arrays": [{"dtype": 8, "shape": [1]}]}, "malformed array spec"),
        ({"message": [], "arrays": []}, "without a message"),
        ({"arrays": []}, "without a message"),
        ([1, 2], "without a message"),
    ],
)
def test_malformed_headers_fail_in_one_line(header, words):
    reader = FrameReader()
    reader.feed(raw(json.dumps(header).encode()))
    with pytest.raises(WireError, match=words):
        reader.next()


@pytest.mark.parametrize(
    "tree",
    [
        ["a"],
        ["a", True],
        ["l", 5],
        ["d", [[1]]],
        ["nt", "X", ["a"], []],
        ["nt", "class", ["a"], [["n"]]],
        ["b", {}],
        ["i", "3"],
        ["s", 3],
        ["q"],
        [],
        "x",
        ["l", [["l", []]] * 3],
    ],
)
def test_short_malformed_trees_raise_wire_errors_only(tree):
    try:
        decode(tree, [])
    except WireError:
        pass


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_reader(data):
    reader = FrameReader()
    reader.feed(data)
    try:
        reader.next()
    except WireError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _json,
    st.lists(
        st.tuples(st.sampled_from(["<f8", "<f4", "|u1", "<i8", "V3", "x"]), st.lists(st.integers(-3, 5), max_size=3)),
        max_size=3,
    ),
    st.binary(max_size=100),
)
def test_generated_headers_and_trees_never_crash_the_grader(tree, specs, body):
    header = {"message": {"ok": True, "result": tree}, "arrays": [{"dtype": d, "shape": s} for d, s in specs]}
    reader = FrameReader()
    reader.feed(raw(json.dumps(header).encode(), body))
    try:
        got = reader.next()
        if got is not None:
            decode(got[0]["result"], got[1])
    except WireError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(0, 200))
def test_a_corrupted_real_frame_never_crashes_the_reader(junk, at):
    good = bytearray(frame({"ok": True, "result": encode({"W": np.arange(6.0).reshape(2, 3)})[0]}, [np.arange(6.0)]))
    at = min(at, len(good))
    bad = bytes(good[:at]) + junk + bytes(good[at + len(junk) :])
    reader = FrameReader()
    reader.feed(bad)
    try:
        got = reader.next()
        if got is not None and "result" in got[0]:
            decode(got[0]["result"], got[1])
    except WireError:
        pass


def test_float16_and_bfloat16_are_too_coarse_float32_is_not():
    assert too_coarse({"W1": np.zeros(2, np.float16), "b1": np.zeros(2)}) == "float16"
    assert too_coarse([Opaque("bfloat16 array", "...")]) == "bfloat16"
    assert too_coarse({"W1": np.zeros(2, np.float32), "b1": np.zeros(2)}) is None
    assert too_coarse((1.0, {"W1": np.zeros(2)})) is None


def test_a_float16_gradient_fails_its_case_in_one_line():
    from fnnjax.verify.grader._user_backprop import _too_coarse

    message = _too_coarse({"returned": (np.float64(1.0), {"W1": np.zeros((2, 2), np.float16)})})
    assert message == (
        "returned float16 arrays: the case hands out float64 arrays and a gradient in float16 is too coarse "
        "to judge; return float64 (the inputs' dtype), or float32 at the least"
    )


# ----------------------------------------------------------------------------------------------
# The seed and the provisional results.json (the check itself stubbed: what the CLI does around it)


@pytest.fixture
def stub(monkeypatch):
    import fnnjax.verify.grader._user_backprop as ub

    seen = {}

    def check(spec, *, seed, **kwargs):
        seen["seed"] = seed
        if seen.get("results") is not None:
            seen["provisional"] = json.loads(Path(seen["results"]).read_text())
        raise ub.SubmissionError("importing x.py failed: stubbed")

    monkeypatch.setattr(ub, "check_user_backprop", check)
    return seen


def test_gradescope_draws_a_fresh_seed_and_records_it(tmp_path, stub, capsys):
    seeds = []
    for k in range(2):
        out = tmp_path / f"results{k}.json"
        stub["results"] = str(out)
        assert main(["verify", "--backprop", "x.py", "--gradescope", str(out)]) == 1
        seeds.append(stub["seed"])
        data = json.loads(out.read_text())
        assert data["extra_data"]["seed"] == stub["seed"]
        assert "not graded yet" in stub["provisional"]["tests"][0]["output"]
        assert stub["provisional"]["score"] == 0
    assert seeds[0] != seeds[1]
    out = tmp_path / "again.json"
    assert main(["verify", "--backprop", "x.py", "--gradescope", str(out), "--seed", str(seeds[0])]) == 1
    assert stub["seed"] == seeds[0] and json.loads(out.read_text())["extra_data"]["seed"] == seeds[0]
    stub["results"] = None
    assert main(["verify", "--backprop", "x.py"]) == 2  # without --gradescope: the documented seed 0
    assert stub["seed"] == 0
    capsys.readouterr()


def test_the_memory_option_is_checked(capsys):
    assert main(["verify", "--backprop", "x.py", "--memory", "10"]) == 2
    assert "--memory 10 must be at least 256 MiB" in capsys.readouterr().err


def test_the_sandbox_modules_docstring_examples_run():
    import doctest

    from fnnjax.verify.grader import _sandbox

    result = doctest.testmod(_sandbox)
    assert result.failed == 0 and result.attempted >= 3


def test_the_command_line_options_build_the_sandbox():
    import argparse

    from fnnjax.verify.grader._sandbox import Limits, Sandbox

    args = argparse.Namespace(memory=1024.0, no_namespaces=True, allow_autodiff=True)
    sandbox = Sandbox.from_options(args)
    assert sandbox.limits == Limits(memory=2**30) and sandbox.want_namespaces is False and sandbox.allow_autodiff
    assert Sandbox.from_options(argparse.Namespace()).want_namespaces is None


def test_a_missing_layer_is_one_line_and_the_worker_still_runs(tmp_path, capsys):
    from fnnjax.verify.grader._isolation import Worker
    from fnnjax.verify.grader._sandbox import Sandbox
    from fnnjax.verify.grader._submission import parse_target

    path = tmp_path / "sub.py"
    path.write_text("def loss(params, X, y, reg):\n    return 1.0, {}\n")
    sandbox = Sandbox(namespaces=False)
    with Worker(parse_target(f"{path}:loss"), timeout=5, sandbox=sandbox) as worker:
        assert worker.load().ok
    err = capsys.readouterr().err
    assert "fnnjax sandbox: not available: namespaces (turned off)" in err
    assert "not available: namespaces (turned off)" in sandbox.summary()
    assert len(err.splitlines()) == 1
