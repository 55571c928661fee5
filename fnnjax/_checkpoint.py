"""Checkpoints of a training run (orbax-checkpoint) and exported parameters (``.npz``).

A checkpoint is one orbax ``CheckpointManager`` step per saved epoch, under ``directory/<epoch>/``,
holding the :class:`~fnnjax.TrainState` (params, optimizer state, the PRNG key's data) and a JSON
part (the MLP, the epoch, the key's implementation, the history so far and the caller's config).
orbax writes each step into a temporary folder and renames it into place only when complete, so a
crash in the middle of a save leaves the previous checkpoint intact (and the half-written one is
ignored). The state after epoch e plus the run's data is all that is needed to continue exactly:
a resumed run ends with the same bits as an uninterrupted one (on one device, deterministic CPU).

Exported parameters (:func:`save_params`, :func:`load_params`) are a plain numpy ``.npz`` file
with ``W1, b1, ..., WL, bL`` and the MLP description as JSON, readable without fnnjax.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnnjax._model import MLP, Layer, Params, check_params
from fnnjax._train import TrainState
from fnnjax.errors import InputError

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "Restored",
    "latest_checkpoint",
    "load_params",
    "restore_checkpoint",
    "save_checkpoint",
    "save_params",
]

FORMAT = "fnnjax-checkpoint/1"
"""The format tag written into every checkpoint's JSON part."""


class CheckpointError(InputError):
    """A checkpoint that cannot be used: corrupt, incomplete, or written for another model (an
    :class:`fnnjax.errors.InputError`, hence a ``ValueError``)."""


def _mlp_dict(mlp: MLP) -> dict:
    return {"sizes": list(mlp.sizes), "hidden": list(mlp.hidden), "output": mlp.output,
            "leaky_slope": mlp.leaky_slope}


def _mlp_from_dict(d: Mapping) -> MLP:
    return MLP(tuple(d["sizes"]), hidden=tuple(d["hidden"]), output=d["output"],
               leaky_slope=d["leaky_slope"])


def _describe(mlp: MLP) -> str:
    hidden = ",".join(sorted(set(mlp.hidden))) or "-"
    return f"sizes {','.join(map(str, mlp.sizes))} (hidden {hidden}, output {mlp.output})"


def _manager(directory, *, max_to_keep: int | None = 2, create: bool = True):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def _key_parts(key) -> tuple[jax.Array, dict]:
    """A key as a uint32 array plus what is needed to rebuild it (typed keys: the impl name)."""
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    data = jax.random.key_data(key) if typed else jnp.asarray(key)
    info = {"typed": bool(typed), "impl": str(jax.random.key_impl(key)) if typed else None,
            "shape": list(data.shape), "dtype": jnp.dtype(data.dtype).name}
    return data, info


def _key_from(data, info: Mapping):
    if info["typed"]:
        return jax.random.wrap_key_data(data, impl=info["impl"])
    return data


def save_checkpoint(directory: str | os.PathLike, state: TrainState, *, mlp: MLP,
                    history: Sequence[dict] = (), config: Mapping | None = None,
                    max_to_keep: int | None = 2) -> Path:
    """Save ``state`` as the checkpoint of epoch ``state.epoch`` in ``directory``, atomically.

    Args:
      directory: the checkpoint folder (created if needed); steps go in ``directory/<epoch>/``.
      state: the :class:`~fnnjax.TrainState` after ``state.epoch`` epochs.
      mlp: the model the params belong to (stored, and checked on restore).
      history: the per-epoch records so far (stored as JSON).
      config: any JSON-serialisable settings of the run (stored; the CLI checks them on resume).
      max_to_keep: keep the newest this many checkpoints (None: all).

    Returns:
      The path of the new checkpoint step.

    Example:
      >>> import jax, optax, tempfile, fnnjax
      >>> mlp = fnnjax.MLP((2, 2), output="softmax")
      >>> p = fnnjax.init_params(jax.random.key(0), mlp)
      >>> st = fnnjax.TrainState(p, optax.sgd(0.1).init(p), jax.random.key(1), 3)
      >>> fnnjax.save_checkpoint(tempfile.mkdtemp(), st, mlp=mlp).name
      '3'
    """
    import orbax.checkpoint as ocp

    params = check_params(mlp, state.params)
    key_data, key_info = _key_parts(state.key)
    meta = {"format": FORMAT, "epoch": int(state.epoch), "mlp": _mlp_dict(mlp),
            "dtype": jnp.dtype(params[0].W.dtype).name, "key": key_info,
            "history": list(history), "config": dict(config or {})}
    tree = {"params": params, "opt_state": state.opt_state, "key": key_data}
    with _manager(directory, max_to_keep=max_to_keep) as mgr:
        mgr.save(int(state.epoch), args=ocp.args.Composite(state=ocp.args.StandardSave(tree),
                                                           meta=ocp.args.JsonSave(meta)),
                 force=True)
        mgr.wait_until_finished()
    return Path(directory).absolute() / str(int(state.epoch))


def latest_checkpoint(directory: str | os.PathLike) -> int | None:
    """The newest complete checkpoint's epoch in ``directory``, or None (no folder, none saved).

    Half-written checkpoints (a save interrupted by a crash) are not counted.

    Example:
      >>> import tempfile, fnnjax
      >>> fnnjax.latest_checkpoint(tempfile.mkdtemp()) is None
      True
    """
    if not Path(directory).is_dir():
        return None
    with _manager(directory, create=False) as mgr:
        return mgr.latest_step()


class Restored(NamedTuple):
    """What :func:`restore_checkpoint` returns.

    Attributes:
      state: the :class:`~fnnjax.TrainState` saved.
      history: the per-epoch records saved with it.
      config: the config dict saved with it.
    """

    state: TrainState
    history: list
    config: dict


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def restore_checkpoint(directory: str | os.PathLike, *, mlp: MLP, optimizer,
                       epoch: int | None = None) -> Restored:
    """Load a checkpoint written by :func:`save_checkpoint` (default: the newest one).

    The stored MLP must equal ``mlp`` and the stored optimizer state must have the structure of
    ``optimizer.init(params)``; otherwise a one-line :class:`CheckpointError` says what differs.

    Args:
      directory: the checkpoint folder.
      mlp: the model being trained.
      optimizer: the optax optimizer being used (its ``init`` gives the expected state structure).
      epoch: which checkpoint (default: the newest complete one).

    Returns:
      A :class:`Restored` ``(state, history, config)``.

    Raises:
      FileNotFoundError: when there is no checkpoint (or not that epoch) in ``directory``.
      CheckpointError: for a corrupt or incomplete checkpoint, or one written for another
        architecture or optimizer.

    Example:
      >>> import jax, optax, tempfile, fnnjax
      >>> mlp, d = fnnjax.MLP((2, 2), output="softmax"), tempfile.mkdtemp()
      >>> p = fnnjax.init_params(jax.random.key(0), mlp)
      >>> _ = fnnjax.save_checkpoint(d, fnnjax.TrainState(p, (), jax.random.key(1), 3), mlp=mlp)
      >>> fnnjax.restore_checkpoint(d, mlp=mlp, optimizer=optax.identity()).state.epoch
      3
    """
    import orbax.checkpoint as ocp

    directory = Path(directory).absolute()
    step = latest_checkpoint(directory) if epoch is None else int(epoch)
    if step is None or not (directory / str(step)).is_dir():
        raise FileNotFoundError(
            f"no checkpoint{'' if epoch is None else f' of epoch {epoch}'} in {directory}; "
            "train without resuming first (or point to the folder holding the checkpoints)")
    where = directory / str(step)
    with _manager(directory, create=False) as mgr:
        try:
            meta = mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
        except Exception as err:  # orbax raises many kinds; all mean "unreadable"
            raise CheckpointError(
                f"checkpoint {where} is corrupt or incomplete ({_one_line(err)}); delete that "
                "folder to resume from the previous checkpoint, or start afresh") from None
        if not isinstance(meta, Mapping) or meta.get("format") != FORMAT:
            raise CheckpointError(
                f"checkpoint {where} is not an fnnjax checkpoint (format "
                f"{meta.get('format') if isinstance(meta, Mapping) else None!r}, expected "
                f"{FORMAT!r}); point to a folder written by fnnjax")
        saved = _mlp_from_dict(meta["mlp"])
        if saved != mlp:
            raise CheckpointError(
                f"checkpoint {where} was written for {_describe(saved)} but this run uses "
                f"{_describe(mlp)}; use the matching architecture or another output folder")
        dtype = jnp.dtype(meta["dtype"])
        params = tuple(Layer(jax.ShapeDtypeStruct(s.W, dtype), jax.ShapeDtypeStruct(s.b, dtype))
                       for s in mlp.shapes())
        key = jax.ShapeDtypeStruct(tuple(meta["key"]["shape"]), jnp.dtype(meta["key"]["dtype"]))
        target = {"params": params, "opt_state": jax.eval_shape(optimizer.init, params), "key": key}
        try:
            tree = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))).state
        except Exception as err:
            raise CheckpointError(
                f"checkpoint {where} does not hold this model's state ({_one_line(err)}); it is "
                "corrupt, or was written with another optimizer: delete it or use another "
                "output folder") from None
    expected, got = jax.tree.structure(target), jax.tree.structure(tree)
    if expected != got:
        raise CheckpointError(
            f"checkpoint {where} holds a state of another structure (another optimizer?):\n"
            f"  expected treedef: {expected}\n  got treedef:      {got}")
    state = TrainState(tuple(tree["params"]), tree["opt_state"], _key_from(tree["key"], meta["key"]),
                       int(meta["epoch"]))
    return Restored(state, list(meta["history"]), dict(meta["config"]))


class Checkpointer:
    """A :func:`fnnjax.fit` callback that saves a checkpoint every ``every`` epochs.

    It also keeps the history (starting from ``history``, the records of a resumed run) so that
    each checkpoint holds every epoch's record.

    Args:
      directory: the checkpoint folder.
      mlp: the model.
      every: save after epochs ``every, 2 every, ...`` (and after ``final_epoch``).
      final_epoch: the last epoch of the run, always saved (None: only the multiples of every).
      history: records of epochs done before (when resuming).
      config: JSON settings stored with every checkpoint.
      max_to_keep: how many checkpoints to keep (the newest).

    Example:
      >>> import tempfile, fnnjax
      >>> ckpt = fnnjax.Checkpointer(tempfile.mkdtemp(), mlp=fnnjax.MLP((2, 2)), every=5)
    """

    def __init__(self, directory, *, mlp: MLP, every: int = 1, final_epoch: int | None = None,
                 history: Sequence[dict] = (), config: Mapping | None = None,
                 max_to_keep: int | None = 2):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every = {every!r} but it must be a positive integer (epochs)")
        self.directory, self.mlp, self.every, self.final_epoch = directory, mlp, every, final_epoch
        self.history, self.config, self.max_to_keep = list(history), dict(config or {}), max_to_keep

    def __call__(self, record: dict, state: TrainState) -> None:
        self.history.append(record)
        if state.epoch % self.every == 0 or state.epoch == self.final_epoch:
            save_checkpoint(self.directory, state, mlp=self.mlp, history=self.history,
                            config=self.config, max_to_keep=self.max_to_keep)


# ----------------------------------------------------------------------------------------------
# Exported parameters


def save_params(path: str | os.PathLike, mlp: MLP, params: Params) -> Path:
    """Write ``params`` and the MLP to a numpy ``.npz`` file (``W1, b1, ..., WL, bL``, ``mlp``).

    Written to a temporary file and renamed, so an existing file is replaced atomically.

    Args:
      path: the file (``.npz`` is appended by numpy if missing).
      mlp: the model.
      params: its params.

    Returns:
      The path written.

    Example:
      >>> import jax, tempfile, os, fnnjax
      >>> mlp = fnnjax.MLP((2, 3, 2), output="softmax")
      >>> p = fnnjax.save_params(os.path.join(tempfile.mkdtemp(), "params.npz"), mlp,
      ...                        fnnjax.init_params(jax.random.key(0), mlp))
      >>> fnnjax.load_params(p)[0] == mlp
      True
    """
    params = check_params(mlp, params)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = {}
    for l, layer in enumerate(params, start=1):
        arrays[f"W{l}"], arrays[f"b{l}"] = np.asarray(layer.W), np.asarray(layer.b)
    arrays["mlp"] = np.array(json.dumps(_mlp_dict(mlp)))
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_params(path: str | os.PathLike) -> tuple[MLP, Params]:
    """Read a file written by :func:`save_params`: ``(mlp, params)`` (params as jax arrays).

    Raises:
      FileNotFoundError: when the file does not exist.
      ValueError: when it is not an fnnjax params file (missing arrays or description).

    Example: see :func:`save_params`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file {path} does not exist; pass the params.npz written "
                                "by fnnjax train (or its --out folder)")
    try:
        with np.load(path, allow_pickle=False) as f:
            mlp = _mlp_from_dict(json.loads(str(f["mlp"])))
            params = tuple(Layer(jnp.asarray(f[f"W{l}"]), jnp.asarray(f[f"b{l}"]))
                           for l in range(1, mlp.num_layers + 1))
    except (KeyError, ValueError, OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not an fnnjax params file ({_one_line(err)}); write it with "
                         "fnnjax.save_params or fnnjax train --out") from None
    return mlp, check_params(mlp, params)
