"""The verification suite's machinery: registry and discovery, selection, the runner (float64
scope, errors as failures), the reports (table, JSON, markdown) and the ``fnnjax verify`` command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import pytest

from fnnjax import verify
from fnnjax.cli import main
from fnnjax.verify import Check, Outcome, all_checks, check, checks_in, get_check, run_check, select_checks
from fnnjax.verify.formulas import _registry


def test_every_formula_f1_to_f27_has_a_check_and_ids_are_unique():
    checks = all_checks()
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids))
    assert {c.formula for c in checks} >= {f"F{i}" for i in range(1, 28)}
    assert [c.number for c in checks] == sorted(c.number for c in checks)  # ordered by formula number
    for c in checks:
        assert re.fullmatch(r"F\d+(-[a-z0-9]+)*", c.id) and c.claim and c.method
        assert "\n" not in c.claim and "\n" not in c.method


def test_several_checks_per_claim_where_the_claim_has_parts():
    ids = {c.id for c in all_checks()}
    assert {"F10-softmax-ce", "F10-sigmoid-bce", "F10-sigmoid-mse"} <= ids


def test_select_by_prefix_at_a_hyphen():
    checks = all_checks()
    f10 = [c.id for c in select_checks(checks, "F10")]
    assert f10 and all(i.startswith("F10-") for i in f10)
    assert not any(c.id.startswith("F10") for c in select_checks(checks, "F1"))  # F1 does not select F10
    assert [c.id for c in select_checks(checks, ["F3", " F10-sigmoid "])] == [
        "F3-linear-collapse",
        "F10-sigmoid-bce",
        "F10-sigmoid-mse",
    ]
    assert select_checks(checks, None) == checks


def test_select_rejects_unknown_ids_and_empty_selections():
    with pytest.raises(ValueError, match=r"unknown check ID 'F99'; valid IDs are F1, F2, .*--list"):
        select_checks(all_checks(), "F3,F99")
    with pytest.raises(ValueError, match="got no check IDs"):
        select_checks(all_checks(), " , ")


def test_get_check_names_the_valid_ids():
    assert get_check("F3-linear-collapse").formula == "F3"
    with pytest.raises(KeyError, match="no check has ID 'F3'; valid IDs are F1-composition"):
        get_check("F3")


@pytest.mark.parametrize("bad_id", ["f3", "F3_x", "F3-", "F-3", "F3-Upper", "G3"])
def test_check_decorator_rejects_malformed_ids(bad_id):
    with pytest.raises(ValueError, match=f"check ID {re.escape(repr(bad_id))} is malformed"):
        check(bad_id, claim="c", method="m")


def test_check_decorator_rejects_multiline_claims():
    with pytest.raises(ValueError, match="F3-x: claim must be one non-empty line"):
        check("F3-x", claim="two\nlines", method="m")


def test_a_check_module_is_found_by_its_name(monkeypatch):
    """Adding a check is one file: a verify/_checks_*.py module with @check functions."""
    module = types.ModuleType("verify._checks_zz_example")

    @check("F99-example", claim="1 + 1 = 2", method="integer arithmetic")
    def one_plus_one(*, seed=0, quick=False, add=lambda a, b: a + b):
        return Outcome({"1 + 1": add(1, 1)}, "== 2", add(1, 1) == 2)

    module.one_plus_one = one_plus_one
    assert checks_in(module) == [one_plus_one]
    monkeypatch.setitem(sys.modules, "verify._checks_zz_example", module)
    forward = "fnnjax.verify.formulas._checks_forward"
    monkeypatch.setattr(_registry, "_check_modules", lambda: [forward, "verify._checks_zz_example"])
    found = all_checks()
    assert found[-1].id == "F99-example" and found[0].id == "F1-composition"
    assert run_check(found[-1]).passed
    assert not run_check(found[-1], add=lambda a, b: a * b).passed


def test_duplicate_ids_are_an_error(monkeypatch):
    forward = "fnnjax.verify.formulas._checks_forward"
    monkeypatch.setattr(_registry, "_check_modules", lambda: [forward, forward])
    with pytest.raises(ValueError, match="check ID F1-composition is defined twice"):
        all_checks()


def test_run_check_scopes_float64_and_records_a_crash_as_a_failure():
    seen = {}

    @check("F98-probe", claim="probe", method="probe")
    def probe(*, seed=0, quick=False):
        seen["dtype"] = jnp.asarray(1.0).dtype
        raise RuntimeError("boom\nsecond line")

    result = run_check(probe)
    assert seen["dtype"] == jnp.float64
    assert jnp.asarray(1.0).dtype == jnp.float32  # scoped: off again afterwards
    assert result.status == "fail" and result.measured == {"error": "RuntimeError: boom"}


def test_run_check_rejects_a_non_outcome_and_debug_mode_reraises(monkeypatch):
    not_outcome = Check("F98-bad", "c", "m", lambda *, seed, quick: {"passed": True})
    assert run_check(not_outcome).measured["error"].startswith("TypeError: check F98-bad returned dict")
    monkeypatch.setenv("FNNJAX_DEBUG", "1")
    with pytest.raises(TypeError, match="not an Outcome"):
        run_check(not_outcome)


def _small_result(seed=0):
    return verify.run_suite(select_checks(all_checks(), "F3,F4-xor"), seed=seed, quick=True, progress=False)


def test_reports_table_json_markdown():
    result = _small_result()
    assert result.passed and [r.id for r in result.results] == [
        "F3-linear-collapse",
        "F4-xor-not-separable",
        "F4-xor-hidden-layer",
    ]
    table = verify.render_table(result, width=120)
    assert "F4-xor-not-separable" in table and "PASS" in table and "3 passed, 0 failed" in table
    data = json.loads(verify.to_json(result))
    assert set(data) >= {"checks", "versions", "device", "total_seconds", "seed", "passed", "failed"}
    assert set(data["checks"][0]) >= {"id", "claim", "method", "measured", "tolerance", "status"}
    assert [(c["formula_page"], c["check_page"]) for c in data["checks"]] == [
        (check.formula_page, check.docs_page) for check in select_checks(all_checks(), "F3,F4-xor")
    ]
    assert list(data["checks"][0])[:3] == ["id", "formula_page", "check_page"]
    assert data["checks"][1]["check_page"] == "docs/checks.md#f4-xor-not-separable"  # as --list names it
    assert data["checks"][1]["measured"]["XOR certificate y"] == "1/4, 1/4, 1/4, 1/4"
    assert data["versions"]["jax"] == jax.__version__ and data["failed"] == 0
    md = verify.render_markdown(result)
    assert md.startswith("# fnnjax verification report") and "| F3-linear-collapse |" in md
    assert "max \\|y - (3 x1 + 7 x2)\\|" in md  # pipes escaped inside table cells


def test_the_table_lists_failures_with_claim_and_method():
    failing = Check("F97-fail", "a claim", "a method", lambda *, seed, quick: Outcome({"x": 1.5}, "x == 1", False))
    result = verify.run_suite([failing], progress=False)
    table = verify.render_table(result)
    assert not result.passed and "FAIL" in table and "F97-fail: a claim" in table and "evidence: a method" in table
    assert "0 passed, 1 failed" in table


# ----------------------------------------------------------------------------------------------
# The command line


def test_cli_runs_selected_checks_and_writes_json_and_markdown(tmp_path, capsys):
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    status = main(
        [
            "verify",
            "--only",
            "F3,F4-xor",
            "--quick",
            "--no-progress",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    assert status == 0
    text = capsys.readouterr().out
    assert "F3-linear-collapse" in text and "3 passed, 0 failed" in text
    data = json.loads(out_json.read_text())
    assert [c["status"] for c in data["checks"]] == ["pass"] * 3 and data["quick"] is True
    assert "Result: 3 of 3 checks passed" in out_md.read_text()


def test_cli_list(capsys):
    assert main(["verify", "--list", "--only", "F10"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("F10-softmax-ce") and all(line.startswith("F10-") for line in lines)


def test_cli_unknown_id_is_one_line_exit_2(capsys):
    assert main(["verify", "--only", "F99"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("fnnjax verify: error: unknown check ID 'F99'; valid IDs are F1, F2")


def test_cli_bad_output_path_is_exit_2_before_running(tmp_path, capsys):
    assert main(["verify", "--only", "F3", "--json", str(tmp_path / "missing" / "r.json")]) == 2
    assert "does not exist; create it" in capsys.readouterr().err
    assert main(["verify", "--only", "F3", "--markdown", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_cli_exit_1_when_a_check_fails(monkeypatch, capsys):
    failing = Check("F97-fail", "a claim", "a method", lambda *, seed, quick: Outcome({"x": 2}, "x == 1", False))
    monkeypatch.setattr(_registry, "all_checks", lambda: [failing])
    assert main(["verify", "--no-progress"]) == 1
    assert "0 passed, 1 failed" in capsys.readouterr().out


def test_python_dash_m_verify():
    proc = subprocess.run([sys.executable, "-m", "verify", "--list"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "F27-weight-count" in proc.stdout


def test_cli_backprop_with_a_correct_function(tmp_path, capsys):
    out = tmp_path / "bp.json"
    assert main(["verify", "--backprop", "fnnjax:backprop", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["backprop"]["status"] == "pass" and "jax" in data["versions"] and data["device"]
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"wrote {tmp_path.resolve()}{os.sep}: bp.json"


def test_cli_backprop_rejects_suite_options(capsys):
    assert main(["verify", "--backprop", "fnnjax:backprop", "--only", "F11"]) == 2
    assert "--only applies to the formula suite, not to --backprop" in capsys.readouterr().err


def test_cli_backprop_unimportable_module_is_exit_2(capsys):
    assert main(["verify", "--backprop", "no_such_module_xyz:fn"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no_such_module_xyz" in err
