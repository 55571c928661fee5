"""``fnnjax train`` and ``fnnjax predict``: the notes' Fashion-MNIST experiment from one command.

``fnnjax train`` builds an MLP (hidden activations as given, softmax output, cross-entropy from
the logits), initialises it from ``--seed``, trains it with :func:`fnnjax.fit` and writes into
``--out``: ``history.json``, ``params.npz`` (:func:`fnnjax.save_params`), ``curves.png`` and the
orbax checkpoints under ``checkpoints/`` (``--resume`` continues from the newest).

Seeds: ``key = jax.random.key(seed)``; ``init_key, train_key = jax.random.split(key)``;
``--pretrain autoencoder`` uses ``pretrain_key = jax.random.split(key, 3)[2]`` (a split of its own,
so init and training keys are those of a run without pretraining); ``--val-split`` uses
``train_val_split(..., seed=seed)``.

``--pretrain autoencoder --pretrain-epochs K`` runs :func:`fnnjax.pretrain` (F28: greedy
layer-wise autoencoders, SGD lr 0.01 momentum 0.9, batch 64, untied decoders with a sigmoid output
when every hidden layer is sigmoid, else identity) on the training images after init and before
:func:`fnnjax.fit`; a resumed run takes its params from the checkpoint and does not pretrain again.

``--preset NAME`` (:mod:`fnnjax.presets`) fills every option the command line does not give:
``notes`` (the notes' recipe, which is also the defaults) or ``fast`` (the quickest recipe to 0.89
test accuracy on Fashion-MNIST: Adam with a cosine ``--schedule``).

``--devices N`` trains data-parallel over the first N devices (:func:`fnnjax.fit` with
``mesh=fnnjax.data_mesh(N)``; ``--batch-size`` must be a multiple of N); on CPU, N host devices
need ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` in the environment.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from pathlib import Path

from fnnjax._presets import CHECKPOINT_EVERY, checkpoint_policy

__all__ = ["register", "OPTIMIZERS", "PRETRAIN_METHODS", "CHECKPOINT_EVERY", "run_train", "run_predict"]

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
"""``--optimizer`` names: optax.sgd (momentum 0.9 for momentum/nesterov), adam, adamw, rmsprop,
adagrad, each with learning rate ``--lr``."""

PRETRAIN_METHODS = ("none", "autoencoder")
"""``--pretrain`` values: none (default) or autoencoder (F28, :func:`fnnjax.pretrain`)."""

RESUME_KEYS = (
    "dataset",
    "sizes",
    "hidden",
    "init",
    "optimizer",
    "lr",
    "schedule",
    "batch_size",
    "seed",
    "gradient",
    "l2",
    "dropout",
    "val_split",
    "pretrain",
)
"""Settings a resumed run must share with the checkpoint (only --epochs and the output options
may change)."""


def _usage_error(message: str):
    from fnnjax.errors import UsageError

    return UsageError(message)


@functools.lru_cache(maxsize=32)
def _optimizer(name: str, lr: float, schedule: str = "constant", total_steps: int = 0):
    """The optax optimizer for a name and learning rate (or schedule over ``total_steps``).

    Memoised, so a repeated run in one process gets the same object (equal optimizers built anew
    also share the compiled epoch program: :mod:`fnnjax._static_key`)."""
    import optax

    from fnnjax._presets import learning_rate

    rate = learning_rate(schedule, lr, total_steps)
    if name == "sgd":
        return optax.sgd(rate)
    if name == "momentum":
        return optax.sgd(rate, momentum=0.9)
    if name == "nesterov":
        return optax.sgd(rate, momentum=0.9, nesterov=True)
    return getattr(optax, name)(rate)


# ----------------------------------------------------------------------------------------------
# Argument checking (one line each)


def _parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise _usage_error(
            f"--sizes {text!r} is not a comma-separated list of at least two positive "
            "integers; use e.g. --sizes 784,256,10"
        )
    return sizes


def _parse_init(text: str) -> tuple[str, dict]:
    from fnnjax import SCHEMES

    scheme, _, value = text.partition(":")
    if scheme not in SCHEMES:
        raise _usage_error(
            f"--init {text!r}: unknown scheme {scheme!r}; valid schemes are "
            f"{', '.join(SCHEMES)} (optionally with :VALUE, e.g. normal:0.01)"
        )
    if not value:
        return scheme, {}
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise _usage_error(
            f"--init {text!r}: {value!r} is not a non-negative number (the scheme's {SCHEMES[scheme][0]})"
        )
    return scheme, {SCHEMES[scheme][0]: number}


def _check_train_args(args) -> None:
    from fnnjax import GRADIENTS, data

    if args.dataset not in data.DATASETS:
        raise _usage_error(f"unknown --dataset {args.dataset!r}; valid data sets are {', '.join(data.DATASETS)}")
    if args.optimizer not in OPTIMIZERS:
        raise _usage_error(f"unknown --optimizer {args.optimizer!r}; valid optimizers are {', '.join(OPTIMIZERS)}")
    from fnnjax._presets import SCHEDULES

    if args.schedule not in SCHEDULES:
        raise _usage_error(f"unknown --schedule {args.schedule!r}; valid schedules are {', '.join(SCHEDULES)}")
    if args.gradient not in GRADIENTS:
        raise _usage_error(f"unknown --gradient {args.gradient!r}; valid values are {', '.join(GRADIENTS)}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise _usage_error(f"--lr {args.lr} must be a positive number (the learning rate), e.g. --lr 0.1")
    if args.epochs <= 0:
        raise _usage_error(f"--epochs {args.epochs} must be a positive integer, e.g. --epochs 50")
    if args.batch_size <= 0:
        raise _usage_error(f"--batch-size {args.batch_size} must be a positive integer, e.g. --batch-size 256")
    if not (math.isfinite(args.l2) and args.l2 >= 0):
        raise _usage_error(f"--l2 {args.l2} must be >= 0 (the weight-decay coefficient lambda of F7)")
    if not 0 <= args.dropout < 1:
        raise _usage_error(
            f"--dropout {args.dropout} must satisfy 0 <= p < 1 (the probability of DROPPING a hidden unit)"
        )
    if not 0 <= args.val_split < 1:
        raise _usage_error(
            f"--val-split {args.val_split} must satisfy 0 <= f < 1 (the share of the "
            "training set held out for validation)"
        )
    if args.pretrain not in PRETRAIN_METHODS:
        raise _usage_error(f"unknown --pretrain {args.pretrain!r}; valid values are {', '.join(PRETRAIN_METHODS)}")
    if args.pretrain_epochs <= 0:
        raise _usage_error(
            f"--pretrain-epochs {args.pretrain_epochs} must be a positive integer "
            "(autoencoder epochs per hidden layer), e.g. --pretrain-epochs 5"
        )
    if args.unroll < 1:
        raise _usage_error(
            f"--unroll {args.unroll} must be a positive integer (training steps per "
            "iteration of the compiled epoch loop), e.g. --unroll 1"
        )
    if args.devices is not None and args.devices < 1:
        raise _usage_error(
            f"--devices {args.devices} must be a positive integer (devices to shard each batch over), e.g. --devices 2"
        )
    if args.devices is not None and args.batch_size % args.devices:
        raise _usage_error(
            f"--batch-size {args.batch_size} does not divide over --devices "
            f"{args.devices}; each device takes batch-size / devices samples of "
            f"every batch, so use a multiple of {args.devices}"
        )
    args.checkpoint_policy = checkpoint_policy(args.checkpoint_every)
    if args.keep_checkpoints < 0:
        raise _usage_error(
            f"--keep-checkpoints {args.keep_checkpoints} must be >= 0 (0: keep all), e.g. --keep-checkpoints 2"
        )
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise _usage_error(
            f"--data-dir {args.data_dir} does not exist or is not a folder; point it "
            f"to the folder holding {args.dataset}/ (or its four IDX files)"
        )


def _build_mlp(args, sizes):
    from fnnjax import MLP

    hidden = args.hidden if "," not in args.hidden else tuple(args.hidden.split(","))
    try:
        return MLP(sizes, hidden=hidden, output="softmax")
    except (ValueError, TypeError) as err:
        raise _usage_error(f"--hidden {args.hidden!r}: {err}") from None


def _load_data(args, sizes):
    """The data set as (train, val or None, test, classes), checked against --sizes."""
    from fnnjax import data

    try:
        ds = data.load_dataset(args.dataset, args.data_dir)
    except data.DownloadError as err:  # the option as this command spells it
        raise _usage_error(err.advice("--data-dir DIR")) from err
    pixels, classes = ds.x_train.shape[1], len(ds.classes)
    if sizes[0] != pixels or sizes[-1] != classes:
        raise _usage_error(
            f"--sizes {','.join(map(str, sizes))} does not fit {args.dataset}: its images have "
            f"{pixels} pixels and it has {classes} classes, so sizes must start with {pixels} and "
            f"end with {classes} (e.g. --sizes {pixels},256,{classes})"
        )
    train, val = (ds.x_train, ds.y_train), None
    if args.val_split > 0:
        s = data.train_val_split(ds.x_train, ds.y_train, seed=args.seed, fraction=args.val_split)
        train, val = (s.x_train, s.y_train), (s.x_val, s.y_val)
    n = len(train[0])
    if args.batch_size > n:
        raise _usage_error(
            f"--batch-size {args.batch_size} is larger than the training set ({n} samples); use --batch-size <= {n}"
        )
    return train, val, (ds.x_test, ds.y_test), ds.classes


def _config(args, sizes) -> dict:
    return {
        "dataset": args.dataset,
        "sizes": list(sizes),
        "hidden": args.hidden,
        "output": "softmax",
        "loss": "cross_entropy",
        "init": args.init,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "schedule": args.schedule,
        "preset": args.preset,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "seed": args.seed,
        "gradient": args.gradient,
        "l2": args.l2,
        "dropout": args.dropout,
        "val_split": args.val_split,
        "devices": args.devices,
        "unroll": args.unroll,
        "pretrain": (None if args.pretrain == "none" else {"method": args.pretrain, "epochs": args.pretrain_epochs}),
    }


_FLAGS = {"batch_size": "--batch-size", "val_split": "--val-split", "pretrain": "--pretrain"}


def _check_resume_config(saved: dict, config: dict, where: Path) -> None:
    for name in RESUME_KEYS:
        if saved.get(name, "constant" if name == "schedule" else None) != config[name]:
            flag = _FLAGS.get(name, f"--{name}")
            raise _usage_error(
                f"--resume: the checkpoint in {where} was written with {flag} {saved.get(name)!r} "
                f"but this run has {flag} {config[name]!r}; resume with the same settings (only "
                "--epochs may change) or use another --out"
            )


# ----------------------------------------------------------------------------------------------
# fnnjax train


def _pretrained(mlp, params, x_train, key, epochs: int):
    """The params after greedy layer-wise autoencoder pretraining (F28) on the training inputs."""
    import optax

    import fnnjax

    decoder = "sigmoid" if all(h == "sigmoid" for h in mlp.hidden) else "identity"
    pre = fnnjax.pretrain(
        mlp,
        params,
        x_train,
        key=key,
        epochs=epochs,
        batch_size=min(64, len(x_train)),
        optimizer=optax.sgd(0.01, momentum=0.9),
        tied=False,
        decoder=decoder,
    )
    return pre.params


_RECORD_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds")


def _normalise(record: dict) -> dict:
    return {k: record.get(k) for k in _RECORD_KEYS}


def _write_outputs(
    out: Path, config: dict, records: list, compile_seconds, mlp, params, stopped: str | None = None
) -> None:
    from fnnjax import save_params
    from fnnjax._plots import plot_history

    history = {"config": config, "epochs": [_normalise(r) for r in records], "compile_seconds": compile_seconds}
    if records:
        history["final"] = {
            k: records[-1].get(k) for k in ("epoch", "train_loss", "train_acc", "val_acc", "test_loss", "test_acc")
        }
    if stopped:
        history["stopped"] = stopped
    tmp = out / ".history.json.tmp"
    tmp.write_text(json.dumps(history, indent=1) + "\n")
    os.replace(tmp, out / "history.json")
    if params is not None:
        save_params(out / "params.npz", mlp, params)
    if records:
        title = (
            f"{config['dataset']} {','.join(map(str, config['sizes']))} {config['hidden']}, "
            f"{config['optimizer']} lr {config['lr']}, batch {config['batch_size']}"
        )
        plot_history(records, out / "curves.png", title=title)


def _check_writable(folder: Path) -> None:
    """Fail at once, not after the first epoch, when checkpoints cannot be written."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise _usage_error(
            f"cannot write checkpoints into {folder} ({err.strerror}); make it "
            "writable, choose another --out, or pass --checkpoint-every 0"
        ) from err


def _resume(ckpt_dir: Path, mlp, optimizer, config: dict):
    """The newest intact checkpoint; damaged newer ones are reported and set aside (renamed)."""
    from fnnjax._checkpoint import DamagedCheckpointError, restore_checkpoint, set_aside

    try:
        restored = restore_checkpoint(ckpt_dir, mlp=mlp, optimizer=optimizer, fallback=True)
    except DamagedCheckpointError as err:
        raise _usage_error(
            f"--resume: {err}; nothing can be resumed: train afresh with another --out "
            "(the damaged checkpoints are left where they are)"
        ) from err
    _check_resume_config(restored.config, config, ckpt_dir)
    start = restored.state.epoch
    for epoch, reason in restored.skipped:
        moved = set_aside(ckpt_dir / str(epoch))
        print(
            f"fnnjax train: checkpoint {epoch} is damaged: {reason}; skipped it (renamed "
            f"{moved.name}) and resuming from checkpoint {start}, the newest intact one",
            file=sys.stderr,
        )
    if not restored.verified:
        print(
            f"fnnjax train: checkpoint {start} was written before fnnjax stored checksums; resuming from it unverified",
            file=sys.stderr,
        )
    return restored


def _intact_note(ckpt_dir: Path, mlp, optimizer) -> str:
    """Which checkpoint survives a failed run, checked: a checkpoint is named only once verified."""
    from fnnjax._checkpoint import CheckpointError, latest_checkpoint, restore_checkpoint

    if latest_checkpoint(ckpt_dir) is None:
        return "no checkpoint was written before it"
    try:
        restored = restore_checkpoint(ckpt_dir, mlp=mlp, optimizer=optimizer, fallback=True)
    except CheckpointError:
        return f"no intact checkpoint is left in {ckpt_dir}"
    damaged = "".join(f" (checkpoint {e} is damaged)" for e, _ in restored.skipped)
    return (
        f"the newest intact checkpoint (epoch {restored.state.epoch}, checksums verified) is kept "
        f"in {ckpt_dir}{damaged}"
    )


def run_train(args) -> int:
    """``fnnjax train``: returns the exit status (0 done, 1 non-finite loss, 130/143 stopped by
    SIGINT/SIGTERM; usage errors raise).

    ``--preset`` fills the options not given explicitly. The run holds the lock of ``--out`` from
    start to end (a second run on that folder stops at once) and stops cleanly on SIGTERM/SIGINT
    (see :mod:`fnnjax._runguard`)."""
    from fnnjax._checkpoint import quiet_orbax
    from fnnjax._presets import apply_preset
    from fnnjax._runguard import OutputLock, OutputLocked, Preemption

    apply_preset(args)  # --preset fills the options not given explicitly
    _check_train_args(args)
    sizes = _parse_sizes(args.sizes)
    scheme, init_options = _parse_init(args.init)
    mlp = _build_mlp(args, sizes)
    out = Path(args.out)
    try:
        lock = OutputLock(out).acquire()
    except OutputLocked as err:
        raise _usage_error(f"--out {err}") from err
    except OSError as err:
        raise _usage_error(f"--out {out} cannot be written ({err.strerror}); choose a folder you can write to") from err
    try:
        stopping = "stopping after the epoch in progress" + (
            ", once it is checkpointed" if args.checkpoint_policy else ""
        )
        with Preemption(stopping) as preempt, quiet_orbax():
            return _train(args, sizes, scheme, init_options, mlp, out, preempt)
    except BaseException:  # a start that failed leaves nothing behind (see OutputLock.discard)
        lock.discard()
        raise
    finally:
        lock.release()


def _train(args, sizes, scheme, init_options, mlp, out: Path, preempt) -> int:
    """The body of ``fnnjax train``, run while holding the lock of ``out``."""
    ckpt_dir = out / "checkpoints"
    config = _config(args, sizes)

    import tqdm

    import fnnjax
    from fnnjax import CheckpointError, NonFiniteLossError
    from fnnjax._progress import show_progress

    mesh = None if args.devices is None else fnnjax.data_mesh(args.devices, what="--devices")
    _check_resume(args, ckpt_dir)
    train, val, test, classes = _load_data(args, sizes)
    if args.checkpoint_policy:
        _check_writable(ckpt_dir)
    optimizer = _optimizer(args.optimizer, args.lr, args.schedule, args.epochs * -(-len(train[0]) // args.batch_size))
    params, opt_state, train_key, start, records = _start(
        args, mlp, scheme, init_options, train[0], optimizer, config, ckpt_dir
    )
    evals = {"test": test} if val is None else {"val": val, "test": test}
    ckpt = _checkpointer(args, ckpt_dir, mlp, records, config) if args.checkpoint_policy else None
    done = list(records)
    compile_seconds = None

    with tqdm.tqdm(
        total=args.epochs,
        initial=start,
        unit="epoch",
        desc="train",
        file=sys.stderr,
        disable=args.quiet or not show_progress(sys.stderr),  # a bar only on a terminal
        dynamic_ncols=True,
    ) as bar:

        def progress(record, state):
            done.append(record)
            bar.set_postfix(
                loss=f"{record['train_loss']:.4f}",
                acc=f"{record['train_acc']:.4f}",
                test_acc=f"{record['test_acc']:.4f}",
                refresh=False,
            )
            bar.update(1)

        callbacks = [progress, *_checkpoint_callbacks(ckpt, preempt)]
        try:
            if start < args.epochs and not preempt.requested:
                params, history = fnnjax.fit(
                    mlp,
                    params,
                    train,
                    optimizer=optimizer,
                    epochs=args.epochs,
                    batch_size=args.batch_size,
                    key=train_key,
                    loss="cross_entropy",
                    gradient=args.gradient,
                    l2=args.l2,
                    dropout=args.dropout,
                    eval=evals,
                    callbacks=callbacks,
                    opt_state=opt_state,
                    initial_epoch=start,
                    mesh=mesh,
                    unroll=args.unroll,
                )
                compile_seconds = history.compile_seconds
        except NonFiniteLossError as err:
            message = f"{err}; {_intact_note(ckpt_dir, mlp, optimizer)}"
            with preempt.deferred():
                _write_outputs(out, config, done, compile_seconds, mlp, None, stopped=message)
            print(f"fnnjax train: error: {message}", file=sys.stderr)
            return 1
        except CheckpointError as err:  # a save failed (disk full, no permission): stop, say so
            raise _usage_error(f"{err}; fix that and run the same command with --resume") from err
    return _finish(args, out, config, done, compile_seconds, mlp, params, preempt, start, ckpt)


def _checkpoint_callbacks(ckpt, preempt) -> list:
    """fit's callbacks after the progress bar: save by the checkpointer's policy (when there is one),
    then stop when a signal asked to, saving the state first if that epoch is not saved yet."""

    def checkpoint(record, state):
        with preempt.deferred():  # a signal during a save waits for the save to finish
            if ckpt is not None:  # always: this callback is passed only with a checkpointer
                ckpt(record, state)

    def stop_when_asked(record, state):
        if not preempt.requested:
            return False
        if ckpt is not None and ckpt.last_saved != state.epoch:
            with preempt.deferred():
                ckpt.save(state)
        return True

    return [*([checkpoint] if ckpt is not None else []), stop_when_asked]


def _checkpointer(args, ckpt_dir: Path, mlp, records, config):
    """The run's :class:`~fnnjax.Checkpointer`, by --checkpoint-every and --keep-checkpoints."""
    from fnnjax import Checkpointer

    return Checkpointer(
        ckpt_dir,
        mlp=mlp,
        **args.checkpoint_policy,
        final_epoch=args.epochs,
        history=records,
        config=config,
        max_to_keep=args.keep_checkpoints or None,
    )


def _check_resume(args, ckpt_dir: Path) -> None:
    """Refuse to train over an earlier run's checkpoints without --resume, or to resume from none."""
    from fnnjax import latest_checkpoint

    latest = latest_checkpoint(ckpt_dir)
    if latest is not None and not args.resume:
        raise _usage_error(
            f"{ckpt_dir} already holds checkpoints (newest: epoch {latest}); pass "
            "--resume to continue that run, or choose another --out"
        )
    if args.resume and latest is None:
        raise _usage_error(f"--resume but there is no checkpoint in {ckpt_dir}; run without --resume to start training")


def _start(args, mlp, scheme, init_options, train_x, optimizer, config, ckpt_dir: Path):
    """Where the run starts: ``(params, opt_state, key, epoch, history)``, fresh (initialised, maybe
    pretrained) or, with --resume, from the newest checkpoint in ``ckpt_dir``."""
    import jax

    import fnnjax

    run_key = jax.random.key(args.seed)
    init_key, train_key = jax.random.split(run_key)
    params = fnnjax.init_params(init_key, mlp, scheme, **init_options)
    opt_state, start, records = None, 0, []
    if args.pretrain == "autoencoder" and not args.resume:
        params = _pretrained(mlp, params, train_x, jax.random.split(run_key, 3)[2], args.pretrain_epochs)
    if args.resume:
        restored = _resume(ckpt_dir, mlp, optimizer, config)
        params, opt_state, train_key, start = restored.state
        records = restored.history
        if start >= args.epochs:
            print(f"checkpoint epoch {start} already reaches --epochs {args.epochs}; writing outputs")
    return params, opt_state, train_key, start, records


def _finish(args, out: Path, config, done, compile_seconds, mlp, params, preempt, start: int, ckpt) -> int:
    """Write the outputs of a run that ended (or was stopped by a signal) and say so; the exit status.

    ``ckpt``: the run's :class:`~fnnjax.Checkpointer`, or None."""
    ckpt_dir = out / "checkpoints"
    epoch = done[-1]["epoch"] if done else start
    if preempt.requested and epoch < args.epochs:
        saved = ckpt is not None and (ckpt.last_saved == epoch or (args.resume and epoch == start))
        line = _stopped_line(args, preempt.name, epoch, ckpt_dir if saved else None)
        if epoch > 0:
            with preempt.deferred():
                _write_outputs(out, config, done, compile_seconds, mlp, params, stopped=line)
        print(f"fnnjax train: {line}", file=sys.stderr)
        return preempt.exit_status
    with preempt.deferred():
        _write_outputs(out, config, done, compile_seconds, mlp, params)
    final = done[-1] if done else {}
    print(
        f"test accuracy {final.get('test_acc', float('nan')):.4f} after epoch {final.get('epoch')} "
        f"(train loss {final.get('train_loss', float('nan')):.4f}, train acc "
        f"{final.get('train_acc', float('nan')):.4f}); wrote {out / 'history.json'}, "
        f"{out / 'params.npz'}, {out / 'curves.png'}"
    )
    return 0


def _stopped_line(args, signal_name: str, epoch: int, saved_in: Path | None) -> str:
    """What a run stopped by a signal after ``epoch`` says: where its state is and how to go on."""
    if saved_in is not None:
        how = (
            f"checkpoint {epoch} is saved in {saved_in}: run the same command with --resume to "
            f"continue from epoch {epoch + 1}"
        )
    elif epoch == 0:
        how = "nothing was trained yet: run the same command again"
    else:
        how = (
            "no checkpoints are written (--checkpoint-every 0), so it cannot be resumed; "
            f"params.npz holds the params after epoch {epoch}"
        )
    return f"stopped by {signal_name} after epoch {epoch} of {args.epochs}; {how}"


# ----------------------------------------------------------------------------------------------
# fnnjax predict


def _params_file(path: Path) -> Path:
    if path.is_dir():
        path = path / "params.npz"
    if not path.is_file():
        raise _usage_error(f"--params {path} does not exist; pass the --out folder of fnnjax train or its params.npz")
    return path


def run_predict(args) -> int:
    """``fnnjax predict``: a PNG grid of test images with true and predicted labels."""
    import numpy as np

    import fnnjax
    from fnnjax import data
    from fnnjax._plots import plot_predictions

    path = _params_file(Path(args.params))
    dataset = args.dataset
    history = path.parent / "history.json"
    if dataset is None and history.is_file():
        dataset = json.loads(history.read_text()).get("config", {}).get("dataset")
    dataset = dataset or "fashion-mnist"
    if dataset not in data.DATASETS:
        raise _usage_error(f"unknown --dataset {dataset!r}; valid data sets are {', '.join(data.DATASETS)}")
    if args.count < 1:
        raise _usage_error(f"--count {args.count} must be a positive integer (images to show)")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise _usage_error(f"--data-dir {args.data_dir} does not exist or is not a folder")
    mlp, params = fnnjax.load_params(path)
    try:
        ds = data.load_dataset(dataset, args.data_dir)
    except data.DownloadError as err:  # the option as this command spells it
        raise _usage_error(err.advice("--data-dir DIR")) from err
    if mlp.sizes[0] != ds.x_test.shape[1] or mlp.sizes[-1] != len(ds.classes):
        raise _usage_error(
            f"the params in {path} are for sizes {mlp.sizes} but {dataset} has "
            f"{ds.x_test.shape[1]} pixels and {len(ds.classes)} classes"
        )
    predictions = np.asarray(np.argmax(fnnjax.forward(mlp, params, ds.x_test), axis=-1))
    accuracy = float(np.mean(predictions == ds.y_test))
    count = min(args.count, len(ds.x_test))
    if args.seed is None:
        idx = np.arange(count)
    else:
        idx = np.random.default_rng(args.seed).choice(len(ds.x_test), count, replace=False)
    out = Path(args.out) if args.out else path.parent / "predictions.png"
    plot_predictions(ds.x_test[idx], ds.y_test[idx], predictions[idx], ds.classes, out, columns=args.columns)
    shown = int(np.sum(predictions[idx] == ds.y_test[idx]))
    print(f"wrote {out}: {shown}/{count} shown images correct; test accuracy {accuracy:.4f} ({len(ds.x_test)} images)")
    return 0


# ----------------------------------------------------------------------------------------------
# Parsers


def register(subparsers) -> None:
    """Add ``train`` and ``predict`` to the ``fnnjax`` command line."""
    _add_train_parser(subparsers)
    _add_predict_parser(subparsers)


def _add_train_parser(subparsers) -> None:
    """``fnnjax train``: the experiment's options (data, model, optimisation), then the run's."""
    from fnnjax._presets import add_preset_argument

    t = subparsers.add_parser(
        "train",
        help="train an MLP on Fashion-MNIST/MNIST (the notes' experiment)",
        description="Train an MLP (softmax output, cross-entropy) with optax, the gradient from the "
        "hand-written backprop or jax.grad; write history.json, params.npz, curves.png and "
        "checkpoints into --out. The notes' recipe: fnnjax train --dataset fashion-mnist --sizes "
        "784,256,10 --hidden relu --init normal:0.01 --optimizer sgd --lr 0.1 --batch-size 256 "
        "--epochs 50 --seed 0 --out runs/notes",
    )
    t.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist (default) or mnist")
    t.add_argument(
        "--data-dir", default=None, help="folder holding the data set (default: $FNNJAX_DATA/<dataset>, else the cache)"
    )
    t.add_argument("--sizes", default="784,256,10", help="layer widths M_0,...,M_L (default 784,256,10)")
    t.add_argument("--hidden", default="relu", help="hidden activation, or one per hidden layer, comma-separated")
    t.add_argument(
        "--init",
        default="normal:0.01",
        help="weight init SCHEME[:VALUE], e.g. normal:0.01 (std), he, xavier, uniform:0.05",
    )
    t.add_argument("--optimizer", default="sgd", help=f"one of {', '.join(OPTIMIZERS)} (default sgd)")
    t.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1; the peak with a schedule)")
    t.add_argument(
        "--schedule",
        default="constant",
        help="learning-rate schedule: constant (default) or cosine (from --lr down to 0 over the run's steps)",
    )
    t.add_argument("--batch-size", type=int, default=256, help="minibatch size (default 256)")
    t.add_argument("--epochs", type=int, default=50, help="epochs to train (default 50)")
    t.add_argument("--seed", type=int, default=0, help="seed of init, shuffling and dropout (default 0)")
    t.add_argument(
        "--gradient", default="backprop", help="backprop (fnnjax's hand-written recursion, default) or grad (jax.grad)"
    )
    t.add_argument("--l2", type=float, default=0.0, help="L2 weight decay lambda (F7; default 0)")
    t.add_argument(
        "--dropout", type=float, default=0.0, help="dropout DROP rate p on hidden layers, 0 <= p < 1 (default 0)"
    )
    t.add_argument(
        "--val-split",
        type=float,
        default=0.0,
        help="share of the training set held out for validation (default 0: train on "
        "all of it, as the notes do; curves then compare train with test)",
    )
    t.add_argument(
        "--pretrain",
        default="none",
        help="none (default) or autoencoder: greedy layer-wise autoencoder pretraining "
        "of the hidden layers (F28) before training",
    )
    t.add_argument(
        "--pretrain-epochs", type=int, default=5, help="autoencoder epochs per hidden layer with --pretrain (default 5)"
    )
    _add_run_options(t)
    add_preset_argument(t)  # after every option it may fill
    t.set_defaults(func=run_train)


def _add_run_options(t) -> None:
    """The options of ``fnnjax train`` that say how the run goes (devices, checkpoints, output),
    not what it computes."""
    t.add_argument(
        "--devices",
        type=int,
        default=None,
        help="data-parallel training over the first N devices: each batch split over "
        "them, params replicated, gradients combined by XLA (--batch-size must be a "
        "multiple of N; on CPU set XLA_FLAGS=--xla_force_host_platform_device_count=N)",
    )
    t.add_argument(
        "--unroll",
        type=int,
        default=1,
        help="training steps per iteration of the compiled epoch loop (lax.scan unroll; "
        "default 1); larger values cut loop overhead where steps are short (GPU), and "
        "agree with 1 to float rounding",
    )
    t.add_argument(
        "--checkpoint-every",
        default=CHECKPOINT_EVERY,
        help="save a checkpoint every N epochs (e.g. 1), or after the first epoch that ends at least "
        f"a duration after the last save (30s, 5m, 1h; default {CHECKPOINT_EVERY}); the last epoch and a "
        "stop on a signal are always saved; 0: never",
    )
    t.add_argument(
        "--keep-checkpoints",
        type=int,
        default=2,
        help="keep the newest N checkpoints (default 2: the newest and one to fall back "
        "to should it be damaged; 0: keep all)",
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest intact checkpoint in OUT/checkpoints (damaged "
        "newer ones are reported and renamed N.damaged)",
    )
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_predict_parser(subparsers) -> None:
    """``fnnjax predict``: draw test images with their true and predicted labels."""
    p = subparsers.add_parser(
        "predict",
        help="show test images with true and predicted labels (PNG)",
        description="Predict test images with trained params and draw them in a grid titled "
        "'true / predicted' (wrong predictions in red).",
    )
    p.add_argument("--params", required=True, help="the --out folder of fnnjax train, or a params.npz")
    p.add_argument("--dataset", default=None, help="default: the one the params were trained on")
    p.add_argument("--data-dir", default=None, help="folder holding the data set")
    p.add_argument("--count", type=int, default=18, help="images to show (default 18)")
    p.add_argument("--columns", type=int, default=6, help="images per row (default 6)")
    p.add_argument("--seed", type=int, default=None, help="pick random test images (default: the first)")
    p.add_argument("--out", default=None, help="PNG file (default: predictions.png beside the params)")
    p.set_defaults(func=run_predict)
