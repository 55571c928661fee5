"""Checkpoints lose nothing.

An interrupted run resumed from its checkpoint ends with the same bits as an uninterrupted one; a
crash in the middle of a save leaves the previous checkpoint usable; checkpoints of another
architecture or optimizer give one clear line; a non-finite loss keeps the last good checkpoint;
the library API (fallback, ``Restored``, retention, params files) behaves as documented. Damage of
every kind, signals, locks and full disks: tests/test_checkpoint_faults.py.
"""

import gc
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnjax
from fnnjax import _checkpoint

MLP = fnnjax.MLP((6, 5, 4), hidden="relu", output="softmax")
MOMENTUM = optax.sgd(0.2, momentum=0.9)  # a non-empty optimizer state that must be restored too


def make_data(seed, n):
    """Inputs N(0, 1), labels from a random linear rule (numpy: no compilation at import)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    return x, np.argmax(x @ rng.standard_normal((6, 4)), axis=1).astype(np.int32)


TRAIN = make_data(0, 40)
P0 = tuple(
    fnnjax.Layer(
        jnp.asarray(np.random.default_rng(1).normal(0, 0.3, (m, n)), jnp.float32), jnp.zeros((m,), jnp.float32)
    )
    for n, m in zip(MLP.sizes[:-1], MLP.sizes[1:])
)


def train(epochs, params=P0, **kw):
    options = dict(optimizer=MOMENTUM, batch_size=16, key=jax.random.key(2), dropout=0.25)
    options.update(kw)
    return fnnjax.fit(MLP, params, TRAIN, epochs=epochs, **options)


def leaves_equal(a, b):
    return all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


class Interrupt(Exception):
    pass


def test_resume_after_interruption_is_bit_identical(tmp_path):
    full, full_hist = train(4)

    def crash_after_two(record, state):
        if state.epoch == 2:
            raise Interrupt

    ckpt = fnnjax.Checkpointer(tmp_path, mlp=MLP, every=1)
    with pytest.raises(Interrupt):
        train(4, callbacks=[ckpt, crash_after_two])
    assert fnnjax.latest_checkpoint(tmp_path) == 2
    restored = fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=MOMENTUM)
    params, opt_state, key, epoch = restored.state
    assert epoch == 2 and [r["epoch"] for r in restored.history] == [1, 2]
    resumed, hist = train(4, params=params, key=key, opt_state=opt_state, initial_epoch=epoch)
    assert [r["epoch"] for r in hist.epochs] == [3, 4]
    assert leaves_equal(resumed, full)
    assert list(hist["train_loss"]) == list(full_hist["train_loss"][2:])
    # a resume that loses the key or the optimizer state is not exact: the test can fail
    wrong_key, _ = train(4, params=params, opt_state=opt_state, initial_epoch=2)
    wrong_state, _ = train(4, params=params, key=key, initial_epoch=2)
    assert not leaves_equal(wrong_key, full) and not leaves_equal(wrong_state, full)


def test_checkpointer_saves_every_n_and_the_final_epoch(tmp_path):
    ckpt = fnnjax.Checkpointer(tmp_path, mlp=MLP, every=2, final_epoch=3, max_to_keep=None)
    train(3, callbacks=[ckpt])
    assert sorted(int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()) == [2, 3]
    with pytest.raises(ValueError, match="every = 0 but it must be a positive integer"):
        fnnjax.Checkpointer(tmp_path, mlp=MLP, every=0)


def test_checkpointer_with_seconds_saves_when_that_long_has_passed_and_the_final_epoch(tmp_path, monkeypatch):
    """A fake clock that advances 10 s per epoch: with seconds=25 the saves fall after epoch 3
    (30 s after the start) and after the final epoch 5 (only 20 s after that save)."""
    now = [0.0]
    monkeypatch.setattr(fnnjax._checkpoint, "_clock", lambda: now[0])
    ckpt = fnnjax.Checkpointer(tmp_path, mlp=MLP, seconds=25, final_epoch=5, max_to_keep=None)
    saved = []
    for epoch in range(1, 6):
        now[0] += 10.0
        before = ckpt.last_saved
        ckpt({"epoch": epoch}, _state(epoch))
        if ckpt.last_saved != before:
            saved.append(epoch)
    assert saved == [3, 5]
    assert sorted(int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()) == [3, 5]
    restored = fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=MOMENTUM)
    assert [r["epoch"] for r in restored.history] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"every": 2, "seconds": 30}, r"every = 2 and seconds = 30: pass one of them"),
        ({"seconds": 0}, r"seconds = 0 but it must be a positive number"),
        ({"seconds": float("inf")}, r"seconds = inf but it must be a positive number"),
        ({"seconds": True}, r"seconds = True but it must be a positive number"),
        ({"every": 1.5}, r"every = 1.5 but it must be a positive integer"),
    ],
)
def test_checkpointer_refuses_a_bad_policy(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fnnjax.Checkpointer(tmp_path, mlp=MLP, **kwargs)


def _state(epoch, scale=1.0):
    params = jax.tree.map(lambda a: a * scale, P0)
    return fnnjax.TrainState(params, MOMENTUM.init(params), jax.random.key(epoch), epoch)


CRASH_DURING_SAVE = textwrap.dedent("""
    import os, sys
    import fnnjax
    sys.path.insert(0, {tests!r})
    from test_checkpoint import MLP, _state
    rename = os.rename
    def crash(src, dst, *args, **kwargs):  # the process dies at the rename that commits the step
        if os.path.basename(str(dst)).isdigit():
            os._exit(17)
        return rename(src, dst, *args, **kwargs)
    os.rename = crash
    fnnjax.save_checkpoint({directory!r}, _state(2, 3.0), mlp=MLP)
""")


def test_a_crash_during_a_save_leaves_the_previous_checkpoint(tmp_path):
    fnnjax.save_checkpoint(tmp_path, _state(1), mlp=MLP)
    script = CRASH_DURING_SAVE.format(tests=str(Path(__file__).parent), directory=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert proc.returncode == 17, proc.stderr[-2000:]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("1",)]
    assert leftovers == ["2.fnnjax-tmp"]  # the finished but uncommitted save
    assert fnnjax.latest_checkpoint(tmp_path) == 1
    restored = fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=MOMENTUM)
    assert restored.state.epoch == 1 and leaves_equal(restored.state.params, P0)
    fnnjax.save_checkpoint(tmp_path, _state(2, 3.0), mlp=MLP)  # the run goes on
    again = fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=MOMENTUM)
    assert again.state.epoch == 2 and leaves_equal(again.state.params, _state(2, 3.0).params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]  # the leftover is gone


def test_state_key_and_history_round_trip(tmp_path):
    state = _state(5, 2.0)
    fnnjax.save_checkpoint(tmp_path, state, mlp=MLP, history=[{"epoch": 5, "train_loss": 0.5}], config={"lr": 0.2})
    restored = fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=MOMENTUM)
    assert leaves_equal(restored.state.params, state.params)
    assert leaves_equal(restored.state.opt_state, state.opt_state)
    assert jax.tree.structure(restored.state.opt_state) == jax.tree.structure(state.opt_state)
    assert np.array_equal(jax.random.key_data(restored.state.key), jax.random.key_data(state.key))
    assert restored.history == [{"epoch": 5, "train_loss": 0.5}] and restored.config == {"lr": 0.2}


def test_mismatched_architecture_is_one_clear_line(tmp_path):
    fnnjax.save_checkpoint(tmp_path, _state(1), mlp=MLP)
    other = fnnjax.MLP((6, 7, 4), output="softmax")
    with pytest.raises(
        fnnjax.CheckpointError,
        match=r"was written for sizes 6,5,4 \(hidden relu, output softmax\) but this "
        r"run uses sizes 6,7,4 .*use the matching architecture",
    ) as info:
        fnnjax.restore_checkpoint(tmp_path, mlp=other, optimizer=MOMENTUM)
    assert "\n" not in str(info.value)


def test_mismatched_optimizer_is_reported_with_both_treedefs(tmp_path):
    fnnjax.save_checkpoint(tmp_path, _state(1), mlp=MLP)
    with pytest.raises(
        fnnjax.CheckpointError,
        match="holds an optimizer state of another structure than "
        r"this optimizer's \(another optimizer\?\)",
    ) as info:
        fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=optax.adam(0.1))
    first, expected, saved = str(info.value).splitlines()
    assert "use the optimizer it was written with" in first
    assert expected.startswith("  expected treedef: PyTreeDef(") and "ScaleByAdamState" in expected
    assert saved.startswith("  saved treedef:    PyTreeDef(") and "TraceState" in saved
    assert not isinstance(info.value, fnnjax.DamagedCheckpointError)


def test_no_checkpoint_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint in .*train without resuming first"):
        fnnjax.restore_checkpoint(tmp_path / "missing", mlp=MLP, optimizer=MOMENTUM)


def test_non_finite_loss_keeps_the_last_good_checkpoint(tmp_path):
    """The 1-1 linear net of test_train: epoch 1 is finite, epoch 2 overflows at its first step."""
    mlp = fnnjax.MLP((1, 1))
    params = (fnnjax.Layer(jnp.ones((1, 1)), jnp.zeros((1,))),)
    data = (np.ones((2, 1), np.float32), np.zeros((2, 1), np.float32))
    opt = optax.sgd(5e9)
    with pytest.raises(fnnjax.NonFiniteLossError, match="epoch 2, step 1"):
        fnnjax.fit(
            mlp,
            params,
            data,
            optimizer=opt,
            loss="mse",
            epochs=5,
            batch_size=1,
            key=jax.random.key(0),
            callbacks=[fnnjax.Checkpointer(tmp_path, mlp=mlp)],
        )
    assert fnnjax.latest_checkpoint(tmp_path) == 1
    good = fnnjax.restore_checkpoint(tmp_path, mlp=mlp, optimizer=opt).state.params
    s = float(good[0].W[0, 0] + good[0].b[0])  # s = w + b after two steps: (1 - 1e10)^2
    assert np.isfinite(s) and s == pytest.approx(1e20, rel=1e-3)


def test_params_file_round_trip_and_errors(tmp_path):
    path = fnnjax.save_params(tmp_path / "p", MLP, P0)
    assert path.name == "p.npz" and not list(tmp_path.glob(".*"))  # no temporary file left
    mlp, params = fnnjax.load_params(path)
    assert mlp == MLP and leaves_equal(params, P0)
    with np.load(path) as f:  # readable without fnnjax
        assert sorted(f.files) == ["W1", "W2", "b1", "b2", "checksums", "mlp"]
        assert f["W1"].shape == (5, 6) and f["b2"].shape == (4,)
        checksums = json.loads(str(f["checksums"]))
        assert checksums["format"] == "fnnjax-params/2"
        assert (
            checksums["arrays"]["W1"]
            == hashlib.sha256(b"<f4(5, 6)" + np.ascontiguousarray(f["W1"]).tobytes()).hexdigest()
        )
    with pytest.raises(FileNotFoundError, match="params file .*nope.npz does not exist"):
        fnnjax.load_params(tmp_path / "nope.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(
        ValueError,
        match=r"other.npz is not an fnnjax params file \(it has no 'mlp' "
        r"entry, only a\); write it with fnnjax.save_params",
    ):
        fnnjax.load_params(tmp_path / "other.npz")


def test_restored_is_still_a_three_tuple_with_skipped_and_verified(tmp_path):
    fnnjax.save_checkpoint(tmp_path, _state(1), mlp=MLP, history=[{"epoch": 1}])
    fnnjax.save_checkpoint(tmp_path, _state(2, 2.0), mlp=MLP, history=[{"epoch": 1}, {"epoch": 2}])
    restored = fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=MOMENTUM)
    state, history, config = restored  # the shape it always had
    assert state.epoch == 2 and len(history) == 2 and config == {}
    assert restored.skipped == () and restored.verified is True
    assert restored._replace(config={"a": 1}).skipped == ()  # _replace keeps working
    older = fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=MOMENTUM, epoch=1)
    assert older.state.epoch == 1 and leaves_equal(older.state.params, P0)


def test_fallback_skips_a_damaged_newest_and_strict_does_not(tmp_path):
    for epoch in (1, 2, 3):
        fnnjax.save_checkpoint(tmp_path, _state(epoch, float(epoch)), mlp=MLP, max_to_keep=None)
    meta = tmp_path / "3" / "meta" / "metadata"
    meta.write_bytes(meta.read_bytes().replace(b'"epoch": 3', b'"epoch": 4'))
    with pytest.raises(
        fnnjax.DamagedCheckpointError,
        match=r"^checkpoint 3 is damaged: file "
        r"meta/metadata does not match its checksum \(in .+\); restore with "
        r"fallback=True to use the newest intact checkpoint instead$",
    ) as info:
        fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=MOMENTUM)
    assert (info.value.epoch, info.value.reason) == (3, "file meta/metadata does not match its checksum")
    assert info.value.path == tmp_path / "3"
    restored = fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=MOMENTUM, fallback=True)
    assert restored.state.epoch == 2 and restored.skipped == ((3, info.value.reason),)
    assert leaves_equal(restored.state.params, _state(2, 2.0).params)
    # epoch= with fallback: the newest intact one at or before it
    assert fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=MOMENTUM, epoch=3, fallback=True).state.epoch == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2", "3"]  # a restore moves nothing


def test_saving_over_a_damaged_checkpoint_sets_it_aside_and_never_replaces_an_intact_one(tmp_path):
    fnnjax.save_checkpoint(tmp_path, _state(1), mlp=MLP)
    fnnjax.save_checkpoint(tmp_path, _state(2), mlp=MLP)
    with pytest.raises(
        fnnjax.CheckpointError,
        match=r"checkpoint 2 already exists in .+ and is intact; "
        r"saving epoch 2 again would replace it: delete .+2 first",
    ):
        fnnjax.save_checkpoint(tmp_path, _state(2, 5.0), mlp=MLP)
    (tmp_path / "2" / fnnjax._checkpoint.MANIFEST).unlink()
    fnnjax.save_checkpoint(tmp_path, _state(2, 5.0), mlp=MLP)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2", "2.damaged"]
    restored = fnnjax.restore_checkpoint(tmp_path, mlp=MLP, optimizer=MOMENTUM)
    assert leaves_equal(restored.state.params, _state(2, 5.0).params)


def test_max_to_keep_keeps_the_newest(tmp_path):
    for epoch in (1, 2, 3, 4):
        fnnjax.save_checkpoint(tmp_path, _state(epoch), mlp=MLP, max_to_keep=3)
    assert fnnjax._checkpoint._steps(tmp_path) == [2, 3, 4]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(
            ValueError,
            match=rf"max_to_keep = {bad!r} but it must be a positive integer "
            r"or None \(all\)",
        ):
            fnnjax.save_checkpoint(tmp_path, _state(5), mlp=MLP, max_to_keep=bad)
        with pytest.raises(ValueError, match=r"max_to_keep = .* must be a positive integer"):
            fnnjax.Checkpointer(tmp_path, mlp=MLP, max_to_keep=bad)


def test_the_manifest_checksums_what_was_saved(tmp_path):
    """The checksums are those of the arrays in memory (independent evidence: hashlib on numpy bytes)."""
    state = _state(3, 2.0)
    fnnjax.save_checkpoint(tmp_path, state, mlp=MLP, history=[{"epoch": 3}], config={"lr": 0.2})
    manifest = json.loads((tmp_path / "3" / "fnnjax-manifest.json").read_text())
    w1 = np.asarray(state.params[0].W)
    assert manifest["arrays"]["['params'][0].W"] == {
        "dtype": "float32",
        "shape": [5, 6],
        "sha256": hashlib.sha256(b"<f4(5, 6)" + w1.tobytes()).hexdigest(),
    }
    assert set(manifest["arrays"]) == {
        "['key']",
        "['params'][0].W",
        "['params'][0].b",
        "['params'][1].W",
        "['params'][1].b",
        "['opt_state'][0].trace[0].W",
        "['opt_state'][0].trace[0].b",
        "['opt_state'][0].trace[1].W",
        "['opt_state'][0].trace[1].b",
    }
    for rel, saved in manifest["files"].items():
        data = (tmp_path / "3" / rel).read_bytes()
        assert saved == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert "meta/metadata" in manifest["files"] and any(r.startswith("state/") for r in manifest["files"])
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    assert (
        manifest["sha256"]
        == hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    )


def _unawaited_coroutine(filename: str) -> None:
    """Make a coroutine whose code comes from ``filename`` and drop it without awaiting it."""
    namespace: dict = {}
    exec(compile("async def write_fragment():\n    pass\n", filename, "exec"), namespace)
    coroutine = namespace["write_fragment"]()
    del coroutine
    gc.collect()


def test_quiet_orbax_drops_orbaxs_unawaited_coroutines_and_reports_others(monkeypatch, capsys, recwarn):
    """A failed orbax save can abandon coroutines; collected later, they would print "coroutine ...
    was never awaited" under fnnjax's one error line. Inside quiet_orbax, orbax's are dropped and
    anybody else's are still reported (through sys.unraisablehook)."""
    monkeypatch.delenv("FNNJAX_DEBUG", raising=False)
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(str(u.exc_value)))
    with _checkpoint.quiet_orbax():
        _unawaited_coroutine(os.path.join(os.sep, "site-packages", "orbax", "serialization.py"))
        assert reported == [] and capsys.readouterr().err == "" and len(recwarn) == 0
        _unawaited_coroutine(os.path.join(os.sep, "work", "mine.py"))
        assert len(reported) == 1 and "was never awaited" in reported[0]
    with pytest.warns(RuntimeWarning, match="was never awaited"):  # outside it: a plain warning again
        _unawaited_coroutine(os.path.join(os.sep, "site-packages", "orbax", "serialization.py"))
