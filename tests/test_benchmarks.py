"""Tests of benchmarks/: the slope and crossover fitting on synthetic curves with known answers, the
harness helpers, that the timed functions compute what they claim, the analyses on synthetic
records, and one smoke test running every ``--quick`` benchmark through ``fnnjax bench``.

No test here asserts a timing: the benchmarks' numbers are results, not pass/fail criteria.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnnjax
from fnnjax import cli
from fnnjax.benchmarks import _fit, _harness, gradients, modes

POW2 = [2.0**k for k in range(11)]  # 1 .. 1024


# ----------------------------------------------------------------------------------------------
# Slope fitting


def test_loglog_fit_recovers_exponent_and_constant():
    fit = _fit.loglog_fit(POW2, [3.0 * x**1.5 for x in POW2])
    assert fit.slope == pytest.approx(1.5, abs=1e-12)
    assert math.exp(fit.intercept) == pytest.approx(3.0, rel=1e-12)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert (fit.points, fit.x_min, fit.x_max) == (11, 1.0, 1024.0)
    np.testing.assert_allclose(fit.predict([4.0]), [3.0 * 8.0], rtol=1e-12)


def test_loglog_fit_drops_missing_points():
    fit = _fit.loglog_fit([1, 2, 4, 8], [1, None, 16, 64])  # y = x^2 where measured
    assert fit.slope == pytest.approx(2.0, abs=1e-12)
    assert fit.points == 3


def test_loglog_fit_rejects_too_few_points():
    with pytest.raises(ValueError, match="at least 2 distinct positive sizes, got 1 usable"):
        _fit.loglog_fit([1, 2], [5.0, None])
    with pytest.raises(ValueError, match="x has 3 points but a y has 2"):
        _fit.loglog_fit([1, 2, 3], [1, 2])


def test_fit_from_finds_where_the_power_law_starts():
    # flat (overhead) up to x = 8, then exactly (x/8)^2: the slope-2 tail starts at 8
    y = [max(1.0, (x / 8.0) ** 2) for x in POW2]
    fit = _fit.fit_from(POW2, y, expected=2.0, tol=0.05)
    assert fit.x_min == 8.0
    assert fit.slope == pytest.approx(2.0, abs=1e-12)
    assert fit.points == 8


def test_fit_from_returns_none_when_the_slope_never_holds():
    assert _fit.fit_from(POW2, [5.0] * len(POW2), expected=1.0, tol=0.15) is None  # slope 0, not 1
    with pytest.raises(ValueError, match="min_points must be >= 2"):
        _fit.fit_from(POW2, POW2, 1.0, 0.1, min_points=1)


def test_fit_from_stops_at_the_first_window_that_fails():
    # slope 1 on the last 3 points only; the 4-point window fails (slope ~0.7), so x0 = the 3rd-last size
    x = [1.0, 2.0, 4.0, 8.0, 16.0]
    y = [1.0, 1.0, 1.0, 2.0, 4.0]
    fit = _fit.fit_from(x, y, expected=1.0, tol=0.1)
    assert (fit.x_min, fit.points) == (4.0, 3)
    assert fit.slope == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("m", [1.0, 10.0, 100.0])
def test_crossover_of_n_passes_against_m_passes_is_m(m):
    ns = [4.0**k for k in range(8)]
    c = _fit.crossover(ns, first=ns, second=[m] * len(ns))  # forward: n passes; reverse: m
    assert c.status == "crossed"
    assert c.x == pytest.approx(m, rel=1e-12)


def test_crossover_of_two_power_laws_is_exact():
    x = [1.0, 4.0, 16.0, 64.0]
    c = _fit.crossover(x, first=x, second=[3.0 * v**0.5 for v in x])  # x = 3 sqrt(x) at x = 9
    assert c.x == pytest.approx(9.0, rel=1e-12)


def test_crossover_statuses_and_last_sign_change():
    x = [1.0, 2.0, 4.0, 8.0]
    assert _fit.crossover(x, [1, 1, 1, 1], [2, 2, 2, 2]) == _fit.Crossover(None, "never")
    assert _fit.crossover(x, [2, 2, 2, 2], [1, 1, 1, 1]) == _fit.Crossover(None, "second_always_faster")
    # second faster at x = 2, slower at 4, faster again from 8: the crossover is between 4 and 8
    c = _fit.crossover(x, [1, 2, 1, 4], [1, 1, 2, 1])
    assert 4.0 < c.x < 8.0 and c.status == "crossed"
    with pytest.raises(ValueError, match="no size has both curves measured"):
        _fit.crossover(x, [None] * 4, [1, 1, 1, 1])


# ----------------------------------------------------------------------------------------------
# Harness helpers


def test_paired_ratio_is_the_median_of_per_round_ratios():
    assert _harness.paired_ratio([1.0, 4.0, 9.0], [1.0, 2.0, 3.0]) == 2.0  # ratios 1, 2, 3
    with pytest.raises(ValueError, match="equal, non-zero lengths, got 2 and 1"):
        _harness.paired_ratio([1.0, 2.0], [1.0])


def test_time_interleaved_alternates_and_keeps_rounds():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    out = _harness.time_interleaved(fns, repeats=4, warmup=0)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert len(out["a"]["times_s"]) == 4 and out["b"]["repeats"] == 4
    assert out["a"]["min_s"] <= out["a"]["median_s"] <= out["a"]["max_s"]


def test_memory_and_flops_of_a_matmul():
    compiled, seconds = _harness.compile_timed(lambda a, b: a @ b, jnp.ones((64, 32)), jnp.ones((32, 16)))
    assert seconds > 0
    assert _harness.flop_count(compiled) == 2 * 64 * 32 * 16
    mem = _harness.memory_stats(compiled)
    assert (mem["argument_bytes"], mem["output_bytes"]) == (4 * (64 * 32 + 32 * 16), 4 * 64 * 16)
    assert mem["peak_bytes"] >= mem["argument_bytes"] + mem["output_bytes"]


def test_int_list_parses_and_rejects():
    assert _harness.int_list("1,4,16") == (1, 4, 16)
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="integer >= 1, got '0,2'"):
        _harness.int_list("0,2")
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated integers"):
        _harness.int_list("1;2")


# ----------------------------------------------------------------------------------------------
# The timed functions compute what their names say (against jax.jacobian / jax.hessian)


def test_mode_functions_agree_with_jax_jacobian():
    mlp, params = modes.network(5, 3, 4, 2, key=jax.random.key(0))
    fns = {k: fn for k, (fn, _) in modes.jacobian_functions(mlp).items()}
    x, v, u = jnp.linspace(-1.0, 1.0, 5), jnp.arange(5.0), jnp.array([1.0, -2.0, 0.5])

    @jax.jit  # one compilation for all of them
    def everything(params, x, v, u):
        J = jax.jacobian(lambda x: fnnjax.forward(mlp, params, x))(x)
        batched = jax.vmap(fns["jacfwd"], in_axes=(None, 0))(params, jnp.stack([x, 2 * x]))
        return (
            J,
            fns["jacfwd"](params, x),
            fns["jacrev"](params, x),
            fns["jvp"](params, x, v)[1],
            fns["vjp"](params, x, u)[1],
            batched[0],
        )

    J, fwd, rev, jv, uj, batched0 = everything(params, x, v, u)
    np.testing.assert_allclose(fwd, J, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rev, J, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jv, J @ v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(uj, u @ J, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched0, J, rtol=1e-5, atol=1e-6)


def test_hessian_compositions_agree_with_jax_hessian():
    mlp, params = modes.network(4, 1, 6, 2, key=jax.random.key(1))
    x = jnp.array([0.3, -0.2, 0.5, 0.1])
    names = ("fwd_over_rev", "rev_over_rev", "rev_over_fwd")
    fns = modes.hessian_functions(mlp)

    @jax.jit  # one compilation for all of them
    def everything(params, x):
        H = jax.hessian(lambda x: fnnjax.forward(mlp, params, x)[0])(x)
        return H, [fns[k][0](params, x) for k in names]

    H, got = everything(params, x)
    assert float(jnp.max(jnp.abs(H))) > 1e-3  # tanh: a Hessian that is not zero
    for name, value in zip(names, got):
        np.testing.assert_allclose(value, H, rtol=1e-4, atol=1e-6, err_msg=name)


# ----------------------------------------------------------------------------------------------
# The analyses on synthetic records with known answers


def _modes_records(ns, ms, fwd_slope=1.0):
    recs = []
    for mode in ("single", "batched"):
        for m in ms:
            for n in ns:
                passes = {"f": 1.0, "jvp": 2.0, "vjp": 3.0, "jacfwd": n**fwd_slope, "jacrev": float(m)}
                for method, p in passes.items():
                    recs.append(
                        dict(
                            kind="jacobian",
                            mode=mode,
                            m=m,
                            n=n,
                            method=method,
                            median_s=1e-3 * n * p,
                            passes=p,
                            flops=1e3 * n * p,
                            peak_bytes=100,
                            skipped=None,
                        )
                    )
    return recs


def test_modes_analysis_recovers_slopes_and_crossovers():
    ns, ms = [4**k for k in range(8)], [1, 10, 100]
    summary = modes.analyse(_modes_records(ns, ms), tol=0.05)
    by = {(s["mode"], s["m"], s["method"]): s for s in summary["slopes"]}
    for mode in ("single", "batched"):
        for m in ms:
            assert by[(mode, m, "jacfwd")]["passes_slope"] == pytest.approx(1.0, abs=1e-9)
            assert by[(mode, m, "jacrev")]["passes_slope"] == pytest.approx(0.0, abs=1e-9)
            assert by[(mode, m, "jacfwd")]["time_slope"] == pytest.approx(2.0, abs=1e-9)  # f itself ~ n
            assert by[(mode, m, "jacfwd")]["flops_ratio_slope"] == pytest.approx(1.0, abs=1e-9)
            assert by[(mode, m, "jacfwd")]["holds"] and by[(mode, m, "jacfwd")]["from_n"] == 1
    stars = {(c["mode"], c["m"]): c for c in summary["crossovers"]}
    assert stars[("single", 1)]["n_star"] == pytest.approx(1.0)  # tie at n = 1, jacrev faster after
    assert stars[("single", 10)]["n_star"] == pytest.approx(10.0, rel=1e-9)
    assert stars[("batched", 100)]["n_star_over_m"] == pytest.approx(1.0, rel=1e-9)
    assert summary["n_star_slope_vs_m"]["single"] == pytest.approx(1.0, abs=1e-9)


def test_modes_analysis_flags_a_wrong_slope():
    summary = modes.analyse(_modes_records([4**k for k in range(6)], [10], fwd_slope=0.5), tol=0.15)
    row = [s for s in summary["slopes"] if s["method"] == "jacfwd"][0]
    assert row["holds"] is False
    assert row["passes_slope"] == pytest.approx(0.5, abs=1e-9)


def test_gradients_analysis_recovers_slopes_and_ratios():
    recs = []
    for sweep, Ps in (("width", [100, 1000, 10000]), ("depth", [200, 2000, 20000]), ("notes", [203530])):
        for P in Ps:
            t_loss = 1e-8 * P
            passes = {
                "loss": 1.0,
                "backprop": 1.8,
                "grad": 2.0,
                "jacrev": 2.1,
                "jacfwd": 0.5 * P,
                "jvp": 1.0 * P,
                "fd_forward": 1.0 * P,
                "fd_central": 2.0 * P,
            }
            for method, p in passes.items():
                r = dict(sweep=sweep, sizes=[P, 10], P=P, method=method, median_s=t_loss * p, passes=p)
                if method == "backprop":
                    r["vs_grad"] = 0.9
                recs.append(r)
            # R in the loop costs a tenth of a call of R (no dispatch), growing like P^0.5 here
            recs.append(
                dict(
                    sweep=sweep,
                    sizes=[P, 10],
                    P=P,
                    method=gradients.LOOP,
                    median_s=1.0,
                    per_evaluation_s=1e-6 * P**0.5,
                    passes=None,
                )
            )
    s = gradients.analyse(recs, tol=0.05)
    by = {(r["sweep"], r["method"]): r for r in s["slopes"]}
    assert by[("width", "jvp")]["passes_slope"] == pytest.approx(1.0, abs=1e-9)
    assert by[("width", "jvp")]["time_slope"] == pytest.approx(2.0, abs=1e-9)  # O(P^2) in total
    assert by[("width", "jvp")]["unit_slope"] == pytest.approx(0.5, abs=1e-9)  # the loop's slope
    assert by[("width", "grad")]["unit_slope"] == pytest.approx(1.0, abs=1e-9)  # the loss call's
    assert by[("width", "grad")]["passes_slope"] == pytest.approx(0.0, abs=1e-9)
    assert by[("depth", "fd_central")]["holds"]
    assert s["cheap_gradient_ratio_notes"] == pytest.approx(2.0)
    assert s["cheap_gradient_target_met"] and s["backprop_target_met_everywhere"]
    recs[[i for i, r in enumerate(recs) if r["method"] == "backprop"][0]]["vs_grad"] = 1.2
    assert gradients.analyse(recs, tol=0.05)["sizes_where_backprop_slower"] == ["100-10"]


# ----------------------------------------------------------------------------------------------
# The command line and one smoke test of every quick benchmark


def test_bench_rejects_unknown_names_and_too_few_repeats(capsys):
    assert cli.main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'; valid names are modes, gradients, backprop" in capsys.readouterr().err
    assert cli.main(["bench", "backprop", "--repeats", "5"]) == 2
    assert "--repeats 5 is below 20" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_benchmarks_write_their_results(tmp_path, capsys, monkeypatch):
    """Without --out, under ./benchmarks/results of the current directory; the last line says where."""
    monkeypatch.chdir(tmp_path)
    for name in ("backprop", "gradients", "modes"):
        capsys.readouterr()
        assert cli.main(["bench", name, "--quick"]) == 0
        last = capsys.readouterr().out.rstrip("\n").splitlines()[-1]
        assert last.startswith(
            f"wrote {tmp_path.resolve() / 'benchmarks' / 'results'}{os.sep}: {name}_cpu_quick.json, "
        )
    assert [p.name for p in tmp_path.iterdir()] == ["benchmarks"]
    tmp_path = tmp_path / "benchmarks" / "results"
    files = {p.name for p in tmp_path.iterdir()}
    for name in ("backprop", "gradients", "modes"):
        assert {f"{name}_cpu_quick.json", f"{name}_cpu_quick.md", f"{name}_cpu_quick.png"} <= files
        assert (tmp_path / f"{name}_cpu_quick.png").stat().st_size > 10_000
    assert {"modes_cpu_quick_passes.png", "modes_cpu_quick_hessian_memory.png"} <= files

    bp = json.loads((tmp_path / "backprop_cpu_quick.json").read_text())
    assert bp["environment"]["jax"] == jax.__version__
    assert set(bp["timings"]) == {"backprop", "grad", "loss"}
    assert bp["timings"]["grad"]["repeats"] >= 20 and bp["timings"]["grad"]["compile_s"] > 0
    assert bp["ratio"]["paired_median"] > 0 and bp["max_abs_difference"] < 1e-5
    assert bp["programs"][0]["hlo"]["dot"] >= 4  # 2 forward, 1 delta, 2 weight gradients (one may fuse)

    gr = json.loads((tmp_path / "gradients_cpu_quick.json").read_text())
    methods = {r["method"] for r in gr["records"]}
    assert methods == set(gradients.METHODS)
    notes = [r for r in gr["records"] if r["sweep"] == "notes"]
    assert {r["method"] for r in notes if r["skipped"]} == set(gradients.O_P)  # P = 203530: O(P^2)
    assert "cheap_gradient_ratio_notes" in gr["summary"] and gr["summary"]["ratios"]

    md = json.loads((tmp_path / "modes_cpu_quick.json").read_text())
    kinds = {r["kind"] for r in md["records"]}
    assert kinds == {"jacobian", "hessian", "memory_depth"}
    timed = [r for r in md["records"] if r["kind"] == "jacobian" and r["median_s"] is not None]
    assert all(r["min_s"] <= r["median_s"] <= r["max_s"] and r["peak_bytes"] > 0 for r in timed)
    assert {c["mode"] for c in md["summary"]["crossovers"]} == {"single", "batched"}
    text = (tmp_path / "modes_cpu_quick.md").read_text()
    assert "### Slopes against n" in text and "### Crossover n*" in text and "| jacfwd |" in text
    assert "t(backprop) / t(grad)" in (tmp_path / "backprop_cpu_quick.md").read_text()


def test_plots_put_at_most_two_panels_side_by_side():
    """Two panels across stay legible at the docs' column width; more go on more rows."""
    from fnnjax.benchmarks._plot import MAX_COLUMNS, new_figure, new_panels

    with pytest.raises(ValueError, match="at most 2"):
        new_figure(1, 3)
    fig, axes = new_panels(3)
    assert MAX_COLUMNS == 2 and len(axes) == len(fig.axes) == 3
    assert [ax.get_subplotspec().get_geometry()[:2] for ax in axes] == [(2, 2)] * 3
    for png in Path(__file__).parents[1].joinpath("benchmarks", "results").rglob("*.png"):
        width = int.from_bytes(png.read_bytes()[16:20], "big")
        assert width <= MAX_COLUMNS * 6.0 * 110, (png.name, width)  # at most two panels of 6 inches at 110 dpi
