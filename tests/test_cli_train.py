"""``fnnjax train`` / ``fnnjax predict`` on a tiny Fashion-MNIST look-alike written as IDX files in a
temporary folder (the real data is never needed): outputs, exact resumption, the non-finite stop,
and one clear line with exit status 2 for each kind of bad input. (Damaged checkpoints, signals,
two writers, full disks: tests/test_checkpoint_faults.py.)"""

import json
import re

import numpy as np
import pytest

import fnnjax
from fnnjax import data
from fnnjax.cli import main


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, fashion_lookalike):
    return fashion_lookalike(tmp_path_factory.mktemp("data"), 100, 40)


def train_args(data_dir, out, *extra):
    return [
        "train",
        "--data-dir",
        str(data_dir),
        "--sizes",
        "784,16,10",
        "--lr",
        "0.5",
        "--batch-size",
        "32",
        "--epochs",
        "3",
        "--out",
        str(out),
        "--quiet",
        "--checkpoint-every",  # one checkpoint per epoch (the default saves at most every 30 s)
        "1",
        *extra,
    ]


def params_of(out):
    with np.load(out / "params.npz") as f:
        return {k: f[k].copy() for k in f.files if k not in ("mlp", "checksums")}


def test_train_writes_history_params_and_curves(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(data_dir, out, "--val-split", "0.2")) == 0
    printed = capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history["epochs"]] == [1, 2, 3]
    for r in history["epochs"]:
        assert list(r) == [
            "epoch",
            "train_loss",
            "train_acc",
            "val_loss",
            "val_acc",
            "test_loss",
            "test_acc",
            "seconds",
        ]
        assert all(isinstance(r[k], float) for k in list(r)[1:])
    assert history["config"]["sizes"] == [784, 16, 10] and history["config"]["val_split"] == 0.2
    assert history["epochs"][-1]["train_loss"] < history["epochs"][0]["train_loss"]
    # the reported test accuracy, recomputed from the written params and the IDX files
    mlp, params = fnnjax.load_params(out / "params.npz")
    ds = data.load_fashion_mnist(data_dir)
    acc = float(np.mean(np.argmax(fnnjax.forward(mlp, params, ds.x_test), axis=1) == ds.y_test))
    assert history["epochs"][-1]["test_acc"] == pytest.approx(acc)
    assert f"test accuracy {acc:.4f} after epoch 3" in printed
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fnnjax.latest_checkpoint(out / "checkpoints") == 3


def test_resume_continues_to_the_same_bits(data_dir, tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(train_args(data_dir, full, "--dropout", "0.2")) == 0
    assert main(train_args(data_dir, part, "--dropout", "0.2", "--epochs", "2")) == 0
    assert main(train_args(data_dir, part, "--dropout", "0.2", "--resume")) == 0
    a, b = params_of(full), params_of(part)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    ha, hb = (json.loads((d / "history.json").read_text())["epochs"] for d in (full, part))
    assert [r["train_loss"] for r in ha] == [r["train_loss"] for r in hb]
    # without --resume an existing run is never overwritten; other settings cannot resume it
    capsys.readouterr()
    assert main(train_args(data_dir, part, "--dropout", "0.2")) == 2
    assert "already holds checkpoints (newest: epoch 3); pass --resume" in capsys.readouterr().err
    assert main(train_args(data_dir, part, "--dropout", "0.2", "--resume", "--lr", "0.3")) == 2
    err = capsys.readouterr().err
    assert "was written with --lr 0.5 but this run has --lr 0.3" in err and err.count("\n") == 1
    assert main(train_args(data_dir, part, "--dropout", "0.2", "--resume", "--sizes", "784,8,10")) == 2
    err = capsys.readouterr().err
    assert (
        "was written for sizes 784,16,10 (hidden relu, output softmax) but this run uses sizes 784,8,10" in err
        and err.count("\n") == 1
    )


def test_resume_skips_a_damaged_checkpoint_and_stops_when_none_is_intact(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(data_dir, out, "--epochs", "2")) == 0
    (out / "checkpoints" / "2" / "meta" / "metadata").write_text("{broken")
    capsys.readouterr()
    assert main(train_args(data_dir, out, "--resume", "--epochs", "2")) == 0
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"fnnjax train: checkpoint 2 is damaged: file meta/metadata is truncated: 7 bytes, "
        r"\d+ were saved; skipped it \(renamed 2\.damaged\) and resuming from checkpoint 1, "
        r"the newest intact one\n",
        err,
    ), err
    assert fnnjax.latest_checkpoint(out / "checkpoints") == 2  # epoch 2 trained and saved again
    (out / "checkpoints" / "1" / "fnnjax-manifest.json").unlink()
    (out / "checkpoints" / "2" / "fnnjax-manifest.json").write_text("{}")
    assert main(train_args(data_dir, out, "--resume")) == 2
    err = capsys.readouterr().err
    assert err == (
        f"fnnjax train: error: --resume: no intact checkpoint in {out / 'checkpoints'}: "
        "checkpoint 2 is damaged: its manifest lacks its checksum; checkpoint 1 is damaged: "
        "its manifest fnnjax-manifest.json is missing; nothing can be resumed: train afresh "
        "with another --out (the damaged checkpoints are left where they are)\n"
    )


def test_non_finite_loss_stops_with_epoch_and_step(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(data_dir, out, "--lr", "1e30", "--init", "normal:1")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "fnnjax train: error: non-finite loss at epoch 1, step " in err
    assert "no checkpoint was written before it" in err
    assert "non-finite loss" in json.loads((out / "history.json").read_text())["stopped"]


def test_predict_draws_a_grid(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(data_dir, out, "--epochs", "1", "--checkpoint-every", "0")) == 0
    capsys.readouterr()
    png = tmp_path / "grid.png"
    assert main(["predict", "--params", str(out), "--data-dir", str(data_dir), "--count", "7", "--out", str(png)]) == 0
    printed = capsys.readouterr().out
    test_acc = json.loads((out / "history.json").read_text())["epochs"][-1]["test_acc"]
    assert f"test accuracy {test_acc:.4f} (40 images)" in printed and "/7 shown images" in printed
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert not (out / "checkpoints").exists()
    assert main(["predict", "--params", str(tmp_path / "nothing")]) == 2
    assert "--params" in capsys.readouterr().err


BAD = [
    (["--dataset", "cifar"], "unknown --dataset 'cifar'; valid data sets are fashion-mnist, mnist"),
    (["--optimizer", "lion"], "unknown --optimizer 'lion'; valid optimizers are sgd"),
    (["--hidden", "swish"], "--hidden 'swish': unknown hidden activation 'swish'"),
    (["--init", "orthogonal"], "--init 'orthogonal': unknown scheme 'orthogonal'"),
    (["--gradient", "fd"], "unknown --gradient 'fd'"),
    (
        ["--sizes", "785,16,10"],
        "--sizes 785,16,10 does not fit fashion-mnist: its images have 784 pixels and it has 10 classes",
    ),
    (["--sizes", "784,16,9"], "so sizes must start with 784 and end with 10"),
    (["--sizes", "784"], "--sizes '784' is not a comma-separated list of at least two"),
    (["--batch-size", "101"], "--batch-size 101 is larger than the training set (100 samples)"),
    (["--batch-size", "0"], "--batch-size 0 must be a positive integer"),
    (["--lr", "0"], "--lr 0.0 must be a positive number"),
    (["--lr", "-0.1"], "--lr -0.1 must be a positive number"),
    (["--epochs", "0"], "--epochs 0 must be a positive integer"),
    (["--epochs", "-3"], "--epochs -3 must be a positive integer"),
    (["--dropout", "1"], "--dropout 1.0 must satisfy 0 <= p < 1"),
    (["--l2", "-1"], "--l2 -1.0 must be >= 0"),
    (["--unroll", "0"], "--unroll 0 must be a positive integer"),
    (["--val-split", "1"], "--val-split 1.0 must satisfy 0 <= f < 1"),
    (["--data-dir", "/nonexistent/fnnjax-data"], "--data-dir /nonexistent/fnnjax-data does not exist"),
    (["--resume"], "--resume but there is no checkpoint in"),
    (["--keep-checkpoints", "-1"], "--keep-checkpoints -1 must be >= 0 (0: keep all)"),
    (["--checkpoint-every", "-1"], "--checkpoint-every '-1' is neither a number of epochs (1, 2, ...; 0: no"),
    (["--checkpoint-every", "1.5"], "--checkpoint-every '1.5' is neither a number of epochs"),
    (["--checkpoint-every", "0s"], "nor a positive duration (30s, 5m, 1h), e.g. --checkpoint-every 1"),
    (["--checkpoint-every", "soon"], "--checkpoint-every 'soon' is neither a number of epochs"),
]


@pytest.mark.parametrize("extra, message", BAD, ids=[b[0][0] + "=" + b[0][-1] for b in BAD])
def test_bad_input_is_one_line_and_exit_2(data_dir, tmp_path, capsys, extra, message):
    assert main(train_args(data_dir, tmp_path / "out", *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("fnnjax train: error: ") and err.count("\n") == 1, err
    assert message in err


def _checkpointed_epochs(out):
    return sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())


def test_by_default_a_short_run_checkpoints_its_last_epoch_and_a_duration_bounds_the_saves(data_dir, tmp_path, capsys):
    """The default (--checkpoint-every 30s) saves after the first epoch that ends 30 s after the last
    save: a run of a few seconds saves only its last epoch, which --resume continues from."""
    argv = train_args(data_dir, tmp_path / "default", "--keep-checkpoints", "0")
    i = argv.index("--checkpoint-every")
    assert main(argv[:i] + argv[i + 2 :]) == 0
    assert _checkpointed_epochs(tmp_path / "default") == [3]
    assert main(train_args(data_dir, tmp_path / "every", "--keep-checkpoints", "0")) == 0
    assert _checkpointed_epochs(tmp_path / "every") == [1, 2, 3]
    short = train_args(data_dir, tmp_path / "short", "--keep-checkpoints", "0", "--checkpoint-every", "0.001s")
    assert main(short) == 0
    assert _checkpointed_epochs(tmp_path / "short") == [1, 2, 3]
    assert main(train_args(data_dir, tmp_path / "long", "--keep-checkpoints", "0", "--checkpoint-every", "2H")) == 0
    assert _checkpointed_epochs(tmp_path / "long") == [3]
    capsys.readouterr()


def test_missing_data_files_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(train_args(tmp_path / "empty", tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "Fashion-MNIST files not found in" in err and err.count("\n") == 1


def test_pretrain_autoencoder_changes_the_initial_params(data_dir, tmp_path, capsys):
    import jax

    out = tmp_path / "pre"
    # lr 1e-30: training leaves the params where they start, i.e. at the pretrained ones
    assert (
        main(
            train_args(
                data_dir,
                out,
                "--epochs",
                "1",
                "--lr",
                "1e-30",
                "--checkpoint-every",
                "0",
                "--pretrain",
                "autoencoder",
                "--pretrain-epochs",
                "2",
            )
        )
        == 0
    )
    mlp = fnnjax.MLP((784, 16, 10), output="softmax")
    init_key, _ = jax.random.split(jax.random.key(0))  # the CLI's init key for --seed 0
    init = fnnjax.init_params(init_key, mlp, "normal", std=0.01)
    got = params_of(out)
    assert np.max(np.abs(got["W1"] - np.asarray(init[0].W))) > 1e-3  # the hidden layer moved
    np.testing.assert_array_equal(got["W2"], np.asarray(init[1].W))  # the output layer did not
    config = json.loads((out / "history.json").read_text())["config"]
    assert config["pretrain"] == {"method": "autoencoder", "epochs": 2}
    capsys.readouterr()
    assert main(train_args(data_dir, tmp_path / "bad", "--pretrain", "foo")) == 2
    err = capsys.readouterr().err
    assert err == ("fnnjax train: error: unknown --pretrain 'foo'; valid values are none, autoencoder\n")
    assert main(train_args(data_dir, tmp_path / "bad", "--pretrain", "autoencoder", "--pretrain-epochs", "0")) == 2
    assert "--pretrain-epochs 0 must be a positive integer" in capsys.readouterr().err


def test_a_run_holds_the_lock_of_its_out_folder(data_dir, tmp_path, capsys):
    """Two writers in one process (flock locks belong to open files, so they conflict here too); the
    cross-process cases, SIGKILL included, are in tests/test_checkpoint_faults.py."""
    import os
    import socket

    from fnnjax._runguard import OutputLock, OutputLocked

    out = tmp_path / "run"
    with OutputLock(out):
        with pytest.raises(
            OutputLocked,
            match=rf"^{re.escape(str(out))} is in use by another fnnjax "
            rf"train run \(pid {os.getpid()} on host {re.escape(socket.gethostname())}, "
            r"started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\); wait for it to finish",
        ):
            OutputLock(out).acquire()
        assert main(train_args(data_dir, out)) == 2
        err = capsys.readouterr().err
        assert (
            err.startswith(
                f"fnnjax train: error: --out {out} is in use by another fnnjax train run (pid {os.getpid()} "
            )
            and err.count("\n") == 1
        )
        assert sorted(p.name for p in out.iterdir()) == [".fnnjax-train.lock"]  # nothing else touched
    assert main(train_args(data_dir, out, "--epochs", "1", "--checkpoint-every", "0")) == 0  # released
