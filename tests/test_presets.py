"""``fnnjax train --preset NAME`` and ``--schedule``: a preset fills exactly the options not given
(an explicit flag wins even when it repeats the default), the cosine schedule takes the steps
``fnnjax.fit`` takes with optax's schedule over epochs x batches, and bad names get one line."""

import argparse
import json

import jax
import numpy as np
import optax
import pytest

import fnnjax
from fnnjax import data
from fnnjax._presets import PRESETS, add_preset_argument, apply_preset, learning_rate
from fnnjax.cli import build_parser, main


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, fashion_lookalike):
    return fashion_lookalike(tmp_path_factory.mktemp("data"), 100, 40)


def parse(*argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--seed", type=int, default=0)
    add_preset_argument(parser)
    return apply_preset(parser.parse_args(argv))


def test_a_preset_fills_only_the_options_not_given():
    args = parse("--preset", "fast", "--epochs", "3")
    assert (args.lr, args.epochs, args.optimizer) == (PRESETS["fast"]["lr"], 3, "adam")
    # an explicit flag wins even when it repeats the default, before or after --preset
    args = parse("--lr", "0.1", "--preset", "fast")
    assert (args.lr, args.optimizer) == (0.1, "adam")
    # without a preset every default is a plain value again
    args = parse()
    assert (args.lr, args.epochs, args.optimizer, args.seed) == (0.1, 50, "sgd", 0)
    assert [type(v) for v in (args.lr, args.epochs, args.optimizer)] == [float, int, str]
    assert json.dumps(vars(args)) == '{"lr": 0.1, "epochs": 50, "optimizer": "sgd", "seed": 0, "preset": null}'


def test_the_notes_preset_is_the_commands_defaults():
    for argv in (["train", "--out", "o"], ["train", "--out", "o", "--preset", "notes"]):
        args = apply_preset(build_parser().parse_args(argv))
        assert {k: getattr(args, k) for k in PRESETS["notes"]} == PRESETS["notes"]


def test_cosine_schedule_values():
    s = learning_rate("cosine", 0.2, 10)
    assert callable(s)
    np.testing.assert_allclose([float(np.asarray(s(t))) for t in (0, 5, 10)], [0.2, 0.1, 0.0], atol=1e-7)
    assert learning_rate("constant", 0.2, 10) == 0.2
    with pytest.raises(ValueError, match="unknown schedule 'step'; valid schedules are constant, cosine"):
        learning_rate("step", 0.2, 10)


def test_preset_fast_with_overrides_trains_the_cosine_schedule_fit_trains(data_dir, tmp_path):
    out = tmp_path / "run"
    with jax.numpy_dtype_promotion("standard"):  # optax's adam and schedules mix Python floats and int32
        assert (
            main(
                [
                    "train",
                    "--preset",
                    "fast",
                    "--data-dir",
                    str(data_dir),
                    "--sizes",
                    "784,16,10",
                    "--batch-size",
                    "32",
                    "--epochs",
                    "2",
                    "--checkpoint-every",
                    "0",
                    "--quiet",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    config = json.loads((out / "history.json").read_text())["config"]
    assert {
        k: config[k] for k in ("preset", "optimizer", "lr", "schedule", "init", "sizes", "batch_size", "epochs")
    } == {
        "preset": "fast",
        "optimizer": "adam",
        "lr": PRESETS["fast"]["lr"],
        "schedule": "cosine",
        "init": PRESETS["fast"]["init"],
        "sizes": [784, 16, 10],
        "batch_size": 32,
        "epochs": 2,
    }
    # independent evidence: fit with optax's cosine over 2 epochs x ceil(100 / 32) = 8 steps
    ds = data.load_fashion_mnist(data_dir)
    mlp = fnnjax.MLP((784, 16, 10), hidden="relu", output="softmax")
    init_key, train_key = jax.random.split(jax.random.key(0))
    params = fnnjax.init_params(init_key, mlp, "he")
    with jax.numpy_dtype_promotion("standard"):  # optax's adam mixes a Python float and int32
        expected, _ = fnnjax.fit(
            mlp,
            params,
            (ds.x_train, ds.y_train),
            optimizer=optax.adam(optax.cosine_decay_schedule(PRESETS["fast"]["lr"], 8)),
            epochs=2,
            batch_size=32,
            key=train_key,
        )
    _, got = fnnjax.load_params(out / "params.npz")
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.W, b.W, rtol=1e-5, atol=1e-7)
    # a constant learning rate would have trained other weights
    with jax.numpy_dtype_promotion("standard"):
        constant, _ = fnnjax.fit(
            mlp,
            params,
            (ds.x_train, ds.y_train),
            optimizer=optax.adam(PRESETS["fast"]["lr"]),
            epochs=2,
            batch_size=32,
            key=train_key,
        )
    assert not np.allclose(got[0].W, constant[0].W, rtol=1e-5, atol=1e-7)


def test_bad_preset_and_schedule_names_get_one_line(data_dir, tmp_path, capsys):
    base = ["train", "--data-dir", str(data_dir), "--out", str(tmp_path / "r"), "--quiet"]
    assert main([*base, "--preset", "fastest"]) == 2
    err = capsys.readouterr().err
    assert err == "fnnjax train: error: unknown --preset 'fastest'; valid presets are notes, fast\n"
    assert main([*base, "--schedule", "step"]) == 2
    err = capsys.readouterr().err
    assert err == "fnnjax train: error: unknown --schedule 'step'; valid schedules are constant, cosine\n"


def test_resume_refuses_another_schedule(data_dir, tmp_path, capsys):
    """The optimizer state of a schedule has a step count a constant rate's lacks: the checkpoint
    does not restore into the other optimizer (one line, exit 2)."""
    out = tmp_path / "run"
    base = [
        "train",
        "--data-dir",
        str(data_dir),
        "--sizes",
        "784,8,10",
        "--batch-size",
        "50",
        "--quiet",
        "--out",
        str(out),
    ]
    with jax.numpy_dtype_promotion("standard"):  # optax's schedules mix Python floats and int32
        assert main([*base, "--epochs", "1", "--schedule", "cosine"]) == 0
    capsys.readouterr()
    assert main([*base, "--epochs", "2", "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fnnjax train: error: checkpoint ") and "(another optimizer?)" in err
    assert err.endswith("use the optimizer it was written with, or another folder\n") and err.count("\n") == 1
    with jax.numpy_dtype_promotion("standard"):
        assert main([*base, "--epochs", "2", "--resume", "--schedule", "cosine"]) == 0
