"""Checkpoints of a training run (orbax-checkpoint, verified by SHA-256) and exported parameters (``.npz``).

Layout: one folder per saved epoch, ``directory/<epoch>/``, written by orbax (``state/``: the
:class:`~fnnjax.TrainState`'s params, optimizer state and PRNG key data; ``meta/``: JSON with the MLP,
the epoch, the key's implementation, the history so far and the caller's config) plus fnnjax's
manifest, ``fnnjax-manifest.json``.

Integrity: the manifest records the SHA-256 of every array at save time (computed from the arrays in
memory, before anything is written), of the JSON part, and of every file orbax wrote (size and
SHA-256), and ends with the SHA-256 of its own contents. A restore checks the manifest, then every
file's size and checksum, BEFORE orbax reads a byte, then decodes the arrays and checks them against
the checksums taken from memory. Any difference (a zeroed or flipped byte, a truncated, missing or
foreign file, undecodable data, a damaged manifest) is :class:`DamagedCheckpointError`: "checkpoint N
is damaged: <what>". ``restore_checkpoint(..., fallback=True)`` then restores the newest intact
checkpoint instead and says which ones it skipped and why (:attr:`Restored.skipped`).

Atomicity: orbax writes into ``<epoch>.fnnjax-tmp.orbax-checkpoint-tmp`` and renames it to
``<epoch>.fnnjax-tmp``; fnnjax adds the manifest there and renames the folder to ``<epoch>`` last. So
a folder named by an epoch is always complete, and a save cut short (a crash, a kill, a full disk)
leaves only a ``*.fnnjax-tmp*`` folder that no restore looks at and the next save of that epoch
removes. Older checkpoints beyond ``max_to_keep`` are deleted only after the new one is in place.

Exported parameters (:func:`save_params`, :func:`load_params`) are a plain numpy ``.npz`` file with
``W1, b1, ..., WL, bL``, the MLP description (``mlp``) and the arrays' SHA-256 (``checksums``), both
as JSON strings, readable without fnnjax.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
import warnings
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnnjax._model import MLP, Layer, Params, _layer_of, check_params
from fnnjax._train import TrainState
from fnnjax.errors import InputError

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "DamagedCheckpointError",
    "Restored",
    "latest_checkpoint",
    "load_params",
    "restore_checkpoint",
    "save_checkpoint",
    "save_params",
]

FORMAT = "fnnjax-checkpoint/2"
"""The format tag written into every checkpoint's JSON part (2: with a manifest of checksums)."""

LEGACY_FORMATS = ("fnnjax-checkpoint/1",)
"""Formats of checkpoints written before checksums: restored unverified (``Restored.verified``)."""

MANIFEST = "fnnjax-manifest.json"
"""The manifest's file name inside a checkpoint folder."""

MANIFEST_FORMAT = "fnnjax-manifest/1"
PARAMS_FORMAT = "fnnjax-params/2"
"""The format tag of the ``checksums`` entry of a params file."""

STAGING_SUFFIX = ".fnnjax-tmp"
DAMAGED_SUFFIX = ".damaged"


class CheckpointError(InputError):
    """A checkpoint that cannot be used: damaged, or written for another model or optimizer (an
    :class:`fnnjax.errors.InputError`, hence a ``ValueError``)."""


class DamagedCheckpointError(CheckpointError):
    """A checkpoint whose bytes are not those saved (checksum mismatch, missing, truncated, undecodable).

    Attributes:
      epoch: the checkpoint's epoch.
      reason: what is wrong, e.g. "file meta/metadata does not match its checksum".
      path: the checkpoint's folder.
    """

    def __init__(self, epoch: int, reason: str, path: Path, hint: str = "", *, message: str | None = None):
        super().__init__(message or f"checkpoint {epoch} is damaged: {reason} (in {path.parent}){hint}")
        self.epoch, self.reason, self.path = epoch, reason, path


# ----------------------------------------------------------------------------------------------
# Checksums


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _array_sha256(a) -> str:
    """SHA-256 of an array's dtype, shape and bytes (C order): equal iff the arrays are bit-identical."""
    a = np.ascontiguousarray(np.asarray(a))
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _json_sha256(obj) -> str:
    return hashlib.sha256(_canonical(obj)).hexdigest()


def _leaf_paths(tree) -> list[tuple[str, Any]]:
    """``(path, leaf)`` for every array of a checkpoint's tree, path as ``jax.tree_util.keystr``."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(jax.tree_util.keystr(path), leaf) for path, leaf in flat]


def _array_name(path: str) -> str:
    """``['params'][0].W`` -> ``W1``; ``['key']`` -> ``key``; the optimizer state's paths as they are."""
    prefix = "['params']["
    if path.startswith(prefix) and path.endswith((".W", ".b")):  # "['params'][0].W": "0" is path[11:-3]
        return f"{path[-1]}{int(path[len(prefix) : -3]) + 1}"
    if path == "['key']":
        return "key"
    return "optimizer state " + path.removeprefix("['opt_state']")


# ----------------------------------------------------------------------------------------------
# Model description and keys


def _mlp_dict(mlp: MLP) -> dict:
    return {"sizes": list(mlp.sizes), "hidden": list(mlp.hidden), "output": mlp.output, "leaky_slope": mlp.leaky_slope}


def _mlp_from_dict(d: Mapping) -> MLP:
    return MLP(tuple(d["sizes"]), hidden=tuple(d["hidden"]), output=d["output"], leaky_slope=d["leaky_slope"])


def _describe(mlp: MLP) -> str:
    hidden = ",".join(sorted(set(mlp.hidden))) or "-"
    return f"sizes {','.join(map(str, mlp.sizes))} (hidden {hidden}, output {mlp.output})"


def _key_parts(key) -> tuple[jax.Array, dict]:
    """A key as a uint32 array plus what is needed to rebuild it (typed keys: the impl name)."""
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    data = jax.random.key_data(key) if typed else jnp.asarray(key)
    info = {
        "typed": bool(typed),
        "impl": str(jax.random.key_impl(key)) if typed else None,
        "shape": list(data.shape),
        "dtype": jnp.dtype(data.dtype).name,
    }
    return data, info


def _key_from(data, info: Mapping):
    if info["typed"]:
        return jax.random.wrap_key_data(data, impl=info["impl"])
    return data


# ----------------------------------------------------------------------------------------------
# orbax, quietly: its failures reach the caller as fnnjax's one-line errors, nothing else


def _orbax():
    import orbax.checkpoint as ocp

    return ocp


def _checkpointer():
    ocp = _orbax()
    return ocp.Checkpointer(ocp.CompositeCheckpointHandler())


def _from_orbax(filename: str) -> bool:
    return f"{os.sep}orbax{os.sep}" in filename


def _is_orbax_leftover(unraisable) -> bool:
    """What orbax leaves behind after a failure: callbacks into its closed event loop, and its
    abandoned coroutines reporting the failure again, or that they were never awaited, when they
    are collected."""
    if isinstance(unraisable.exc_value, RuntimeError) and "Event loop is closed" in str(unraisable.exc_value):
        return True
    code = getattr(unraisable.object, "cr_code", None)
    return code is not None and _from_orbax(code.co_filename)


@contextlib.contextmanager
def quiet_orbax():
    """While orbax works, drop its log records (a failed write logs tracebacks from its threads) and
    the leftovers of its failures (:func:`_is_orbax_leftover`). What fails reaches the caller as
    fnnjax's own error, its cause chained; FNNJAX_DEBUG=1 lets everything through. (Leftovers may
    surface a little later: ``fnnjax train`` keeps this on for its whole run.)"""
    if os.environ.get("FNNJAX_DEBUG"):
        yield
        return
    absl, previous_hook = logging.getLogger("absl"), sys.unraisablehook

    def keep(record: logging.LogRecord) -> bool:
        return not _from_orbax(record.pathname)

    def hook(unraisable):
        if not _is_orbax_leftover(unraisable):
            previous_hook(unraisable)

    absl.addFilter(keep)
    sys.unraisablehook = hook
    try:
        with warnings.catch_warnings():
            # "coroutine ... was never awaited" raised instead of printed: Python then reports it
            # through sys.unraisablehook with the coroutine, which `hook` drops when it is orbax's
            warnings.filterwarnings("error", message="coroutine .* was never awaited", category=RuntimeWarning)
            yield
    finally:
        sys.unraisablehook = previous_hook
        absl.removeFilter(keep)


class _StorageError(Exception):
    """What orbax or TensorStore reported, as text: the cause chained to fnnjax's own error."""


def _cause(err: Exception) -> Exception:
    """The cause to chain: the text only, so that orbax's frames (and the coroutines they hold) can
    be collected at once, inside :func:`quiet_orbax`; the exception itself under FNNJAX_DEBUG=1."""
    if os.environ.get("FNNJAX_DEBUG"):
        return err
    return _StorageError(f"{type(err).__name__}: {err}")


def _settle_orbax() -> None:
    """After orbax failed: its threads wind down and report; let them, inside :func:`quiet_orbax`."""
    time.sleep(0.3)
    gc.collect()


# ----------------------------------------------------------------------------------------------
# The folder: which epochs it holds, setting damaged ones aside, keeping the newest


def _steps(directory: Path) -> list[int]:
    """The epochs of the checkpoint folders in ``directory`` (named by a plain decimal number), sorted."""
    if not directory.is_dir():
        return []
    return sorted(
        int(p.name) for p in directory.iterdir() if p.name.isdigit() and str(int(p.name)) == p.name and p.is_dir()
    )


def set_aside(step_dir: Path) -> Path:
    """Rename a (damaged) checkpoint folder ``N`` to ``N.damaged`` (``N.damaged-2``, ... if taken), so
    that no restore uses it and a new save of epoch N has room; nothing is deleted. Returns the new path."""
    target, k = step_dir.with_name(step_dir.name + DAMAGED_SUFFIX), 1
    while target.exists():
        k += 1
        target = step_dir.with_name(f"{step_dir.name}{DAMAGED_SUFFIX}-{k}")
    os.rename(step_dir, target)
    return target


def _remove_staging(directory: Path, epoch: int) -> None:
    """Remove what a save of ``epoch`` cut short left behind (fnnjax's and orbax's temporary folders)."""
    for p in directory.glob(f"{epoch}{STAGING_SUFFIX}*"):
        shutil.rmtree(p, ignore_errors=True)


def _prune(directory: Path, max_to_keep: int | None) -> None:
    """Delete the checkpoints older than the newest ``max_to_keep`` (and their leftover temporary folders)."""
    if max_to_keep is None:
        return
    steps = _steps(directory)
    for epoch in steps[:-max_to_keep]:
        shutil.rmtree(directory / str(epoch), ignore_errors=True)
    if len(steps) >= max_to_keep:
        oldest = steps[-max_to_keep]
        for p in directory.glob(f"*{STAGING_SUFFIX}*"):
            head = p.name.split(".", 1)[0]
            if head.isdigit() and int(head) < oldest:
                shutil.rmtree(p, ignore_errors=True)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not possible everywhere (e.g. Windows); the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_WRITE_FAILURES = {
    errno.ENOSPC: "the disk is full (no space left on device)",
    getattr(errno, "EDQUOT", -1): "the disk quota is exceeded",
    errno.EFBIG: "a file grew past the allowed size (file too large)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
}


def _write_failure(err: BaseException) -> str:
    """Why a write failed, in words (never the text of orbax or TensorStore)."""
    chain, e = [], err
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        if isinstance(e, OSError) and e.errno in _WRITE_FAILURES:
            return _WRITE_FAILURES[e.errno]
    text = " ".join(str(e) for e in chain)
    for code, reason in _WRITE_FAILURES.items():
        if code > 0 and os.strerror(code) in text:
            return reason
    return f"the write failed ({type(err).__name__}; FNNJAX_DEBUG=1 shows the cause)"


# ----------------------------------------------------------------------------------------------
# Saving


def _manifest(folder: Path, epoch: int, tree, arrays: dict, meta_sha256: str) -> dict:
    """The manifest of a checkpoint written into ``folder``: every file's size and SHA-256 (read back
    from disk), the arrays' checksums (from memory), the JSON part's, then its own."""
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            files[p.relative_to(folder).as_posix()] = {"bytes": p.stat().st_size, "sha256": _sha256_file(p)}
    body = {
        "format": MANIFEST_FORMAT,
        "epoch": epoch,
        "treedef": str(jax.tree.structure(tree)),
        "arrays": arrays,
        "meta_sha256": meta_sha256,
        "files": files,
    }
    return {**body, "sha256": _json_sha256(body)}


def _write_manifest(folder: Path, manifest: dict) -> None:
    with open(folder / MANIFEST, "wb") as f:
        f.write(json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def _make_room(final: Path, epoch: int) -> None:
    """Before saving epoch N where a folder N exists: set it aside if damaged, refuse if intact."""
    try:
        _verify_files(final, epoch)
    except DamagedCheckpointError:
        set_aside(final)
        return
    raise CheckpointError(
        f"checkpoint {epoch} already exists in {final.parent} and is intact; saving epoch {epoch} again "
        f"would replace it: delete {final} first, or save into another folder"
    )


def save_checkpoint(
    directory: str | os.PathLike,
    state: TrainState,
    *,
    mlp: MLP,
    history: Sequence[dict] = (),
    config: Mapping | None = None,
    max_to_keep: int | None = 2,
) -> Path:
    """Save ``state`` as the checkpoint of epoch ``state.epoch`` in ``directory``, atomically, with checksums.

    The folder ``directory/<epoch>/`` appears only once everything is written, manifest included.
    A damaged checkpoint of the same epoch is set aside first (renamed ``<epoch>.damaged``); an intact
    one is never replaced. Then the checkpoints older than the newest ``max_to_keep`` are deleted.

    Args:
      directory: the checkpoint folder (created if needed).
      state: the :class:`~fnnjax.TrainState` after ``state.epoch`` epochs.
      mlp: the model the params belong to (stored, and checked on restore).
      history: the per-epoch records so far (stored as JSON).
      config: any JSON-serialisable settings of the run (stored; the CLI checks them on resume).
      max_to_keep: keep the newest this many checkpoints (None: all). Two is the least with which a
        damaged newest checkpoint still leaves one to fall back to.

    Returns:
      The path of the new checkpoint folder.

    Raises:
      CheckpointError: when the save fails (a full disk, no permission: the line says which; what
        was written is removed, earlier checkpoints are untouched), or an intact checkpoint of
        that epoch exists.

    Example:
      >>> import jax, optax, tempfile, fnnjax
      >>> mlp = fnnjax.MLP((2, 2), output="softmax")
      >>> p = fnnjax.init_params(jax.random.key(0), mlp)
      >>> st = fnnjax.TrainState(p, optax.sgd(0.1).init(p), jax.random.key(1), 3)
      >>> fnnjax.save_checkpoint(tempfile.mkdtemp(), st, mlp=mlp).name
      '3'
    """
    ocp = _orbax()
    if max_to_keep is not None and (
        isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or max_to_keep < 1
    ):
        raise ValueError(f"max_to_keep = {max_to_keep!r} but it must be a positive integer or None (all)")
    params = check_params(mlp, state.params)
    epoch = int(state.epoch)
    key_data, key_info = _key_parts(state.key)
    meta = json.loads(
        json.dumps(
            {
                "format": FORMAT,
                "epoch": epoch,
                "mlp": _mlp_dict(mlp),
                "dtype": jnp.dtype(params[0].W.dtype).name,
                "key": key_info,
                "history": list(history),
                "config": dict(config or {}),
            }
        )
    )
    tree = {"params": params, "opt_state": state.opt_state, "key": key_data}
    arrays = {
        path: {"dtype": np.dtype(leaf.dtype).name, "shape": list(np.shape(leaf)), "sha256": _array_sha256(leaf)}
        for path, leaf in _leaf_paths(tree)
    }
    directory = Path(directory).absolute()
    final, staging = directory / str(epoch), directory / f"{epoch}{STAGING_SUFFIX}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if final.exists():
            _make_room(final, epoch)
        _remove_staging(directory, epoch)
        with quiet_orbax(), contextlib.closing(_checkpointer()) as ckptr:
            ckptr.save(
                staging, args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta))
            )
        _write_manifest(staging, _manifest(staging, epoch, tree, arrays, _json_sha256(meta)))
        os.rename(staging, final)  # the commit: from here on, checkpoint `epoch` exists
        failure, cause = None, None
    except CheckpointError:
        raise
    except Exception as err:  # orbax and TensorStore raise many kinds
        failure, cause = _write_failure(err), _cause(err)
    if failure is not None:
        with quiet_orbax():
            _settle_orbax()
        _remove_staging(directory, epoch)
        raise CheckpointError(
            f"could not save checkpoint {epoch} in {directory}: {failure}; the "
            "checkpoints saved before it are untouched"
        ) from cause
    _fsync_dir(directory)
    _prune(directory, max_to_keep)
    return final


def latest_checkpoint(directory: str | os.PathLike) -> int | None:
    """The newest checkpoint's epoch in ``directory``, or None (no folder, none saved).

    Saves cut short are not counted (they never got their epoch's name); whether the newest is
    intact is checked on restore (:func:`restore_checkpoint`).

    Example:
      >>> import tempfile, fnnjax
      >>> fnnjax.latest_checkpoint(tempfile.mkdtemp()) is None
      True
    """
    steps = _steps(Path(directory))
    return steps[-1] if steps else None


# ----------------------------------------------------------------------------------------------
# Verifying and restoring


class _RestoredFields(NamedTuple):
    state: TrainState
    history: list
    config: dict


class Restored(_RestoredFields):
    """What :func:`restore_checkpoint` returns: the tuple ``(state, history, config)`` plus two attributes.

    Attributes:
      state: the :class:`~fnnjax.TrainState` saved.
      history: the per-epoch records saved with it.
      config: the config dict saved with it.
      skipped: ``((epoch, reason), ...)``: the newer checkpoints skipped as damaged (``fallback=True``),
        newest first; empty when the newest one was restored.
      verified: True when every checksum matched; False only for a checkpoint written before
        fnnjax stored checksums (format ``fnnjax-checkpoint/1``), restored unverified.
    """

    skipped: tuple = ()  # class defaults: also what _replace/_make (which bypass __new__) give
    verified: bool = True

    def __new__(cls, state, history, config, *, skipped=(), verified=True):
        self = super().__new__(cls, state, history, config)
        self.skipped, self.verified = tuple(skipped), bool(verified)
        return self


def _read_manifest(where: Path, epoch: int) -> dict | None:
    """The checkpoint's manifest, checked against its own checksum; None for a legacy checkpoint."""
    path = where / MANIFEST
    if not path.is_file():
        try:
            legacy = json.loads((where / "meta" / "metadata").read_bytes()).get("format") in LEGACY_FORMATS
        except (OSError, ValueError, AttributeError):
            legacy = False
        if legacy:
            return None
        raise DamagedCheckpointError(epoch, f"its manifest {MANIFEST} is missing", where)
    try:
        manifest = json.loads(path.read_bytes())
    except OSError as err:
        raise DamagedCheckpointError(epoch, f"its manifest cannot be read ({err.strerror})", where) from err
    except ValueError as err:
        raise DamagedCheckpointError(epoch, "its manifest is not valid JSON (damaged or truncated)", where) from err
    if not isinstance(manifest, dict) or "sha256" not in manifest:
        raise DamagedCheckpointError(epoch, "its manifest lacks its checksum", where)
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    if _json_sha256(body) != manifest["sha256"]:
        raise DamagedCheckpointError(epoch, "its manifest does not match its own checksum", where)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise CheckpointError(
            f"checkpoint {where} has a manifest of format {manifest.get('format')!r}; "
            f"this fnnjax reads {MANIFEST_FORMAT!r}: use the fnnjax that wrote it"
        )
    if manifest.get("epoch") != epoch:
        raise DamagedCheckpointError(
            epoch, f"it holds epoch {manifest.get('epoch')}, not {epoch} (a folder renamed or copied in)", where
        )
    return manifest


def _verify_files(where: Path, epoch: int) -> dict | None:
    """Check the manifest and every file's size and SHA-256; return the manifest (None: legacy).

    Raises:
      DamagedCheckpointError: naming the first file that differs from what was saved.
    """
    manifest = _read_manifest(where, epoch)
    if manifest is None:
        return None
    for rel, saved in sorted(manifest["files"].items()):
        path = where / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise DamagedCheckpointError(epoch, f"its manifest lists a file outside it: {rel}", where)
        try:
            size = path.stat().st_size
            digest = _sha256_file(path) if size == saved["bytes"] else None
        except FileNotFoundError as err:
            raise DamagedCheckpointError(epoch, f"file {rel} is missing", where) from err
        except OSError as err:
            raise DamagedCheckpointError(epoch, f"file {rel} cannot be read ({err.strerror})", where) from err
        if size != saved["bytes"]:
            how = "truncated" if size < saved["bytes"] else "longer than saved"
            raise DamagedCheckpointError(
                epoch, f"file {rel} is {how}: {size} bytes, {saved['bytes']} were saved", where
            )
        if digest != saved["sha256"]:
            raise DamagedCheckpointError(epoch, f"file {rel} does not match its checksum", where)
    return manifest


def _target(mlp: MLP, optimizer, meta: Mapping) -> dict:
    dtype = jnp.dtype(meta["dtype"])
    params = tuple(_layer_of(jax.ShapeDtypeStruct(s.W, dtype), jax.ShapeDtypeStruct(s.b, dtype)) for s in mlp.shapes())
    key = jax.ShapeDtypeStruct(tuple(meta["key"]["shape"]), jnp.dtype(meta["key"]["dtype"]))
    return {"params": params, "opt_state": jax.eval_shape(optimizer.init, params), "key": key}


def _another_structure(where: Path, expected_treedef, got_treedef) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {where} holds an optimizer state of another structure than this optimizer's "
        "(another optimizer?); use the optimizer it was written with, or another folder:\n"
        f"  expected treedef: {expected_treedef}\n  saved treedef:    {got_treedef}"
    )


def _check_layout(where: Path, manifest: dict, target: dict) -> None:
    """The saved arrays (paths, dtypes, shapes) are those this model and optimizer expect."""
    expected = {path: [np.dtype(leaf.dtype).name, list(leaf.shape)] for path, leaf in _leaf_paths(target)}
    saved = {path: [a["dtype"], a["shape"]] for path, a in manifest["arrays"].items()}
    if expected != saved:
        raise _another_structure(where, jax.tree.structure(target), manifest.get("treedef"))


def _restore_one(directory: Path, epoch: int, mlp: MLP, optimizer) -> tuple[Restored, bool]:
    """Verify and restore one checkpoint: ``(Restored, verified)``; raises DamagedCheckpointError."""
    ocp = _orbax()
    where = directory / str(epoch)
    manifest = _verify_files(where, epoch)  # every byte orbax will read, checked first
    with quiet_orbax(), contextlib.closing(_checkpointer()) as ckptr:
        meta, cause = None, None
        try:
            meta = ckptr.restore(where, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
        except Exception as err:
            cause = _cause(err)
        if cause is not None:
            _settle_orbax()
            raise DamagedCheckpointError(epoch, "its JSON part (meta) cannot be decoded", where) from cause
        if manifest is not None and _json_sha256(meta) != manifest["meta_sha256"]:
            raise DamagedCheckpointError(epoch, "its JSON part (meta) does not match its checksum", where)
        formats = (FORMAT,) if manifest is not None else LEGACY_FORMATS
        if not isinstance(meta, Mapping) or meta.get("format") not in formats:
            raise CheckpointError(
                f"checkpoint {where} is not an fnnjax checkpoint (format "
                f"{meta.get('format') if isinstance(meta, Mapping) else None!r}, expected "
                f"{FORMAT!r}); point to a folder written by fnnjax"
            )
        saved = _mlp_from_dict(meta["mlp"])
        if saved != mlp:
            raise CheckpointError(
                f"checkpoint {where} was written for {_describe(saved)} but this run uses "
                f"{_describe(mlp)}; use the matching architecture or another output folder"
            )
        target = _target(mlp, optimizer, meta)
        if manifest is not None:
            _check_layout(where, manifest, target)
        tree = None
        try:
            tree = ckptr.restore(where, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))).state
        except Exception as err:
            cause = _cause(err)
        if cause is not None:
            _settle_orbax()
            if manifest is None:  # legacy: nothing tells a damaged file from another optimizer's state
                raise CheckpointError(
                    f"checkpoint {where} does not hold this model's state; it is damaged, or was "
                    "written with another optimizer: use that optimizer or another folder"
                ) from cause
            raise DamagedCheckpointError(epoch, "its arrays cannot be decoded", where) from cause
    if tree is None or jax.tree.structure(tree) != jax.tree.structure(target):
        raise _another_structure(where, jax.tree.structure(target), jax.tree.structure(tree))
    if manifest is not None:  # the arrays as decoded, against the checksums taken from memory
        for path, leaf in _leaf_paths(tree):
            if _array_sha256(leaf) != manifest["arrays"][path]["sha256"]:
                raise DamagedCheckpointError(epoch, f"array {_array_name(path)} does not match its checksum", where)
    state = TrainState(
        tuple(tree["params"]), tree["opt_state"], _key_from(tree["key"], meta["key"]), int(meta["epoch"])
    )
    return Restored(state, list(meta["history"]), dict(meta["config"])), manifest is not None


def restore_checkpoint(
    directory: str | os.PathLike, *, mlp: MLP, optimizer, epoch: int | None = None, fallback: bool = False
) -> Restored:
    """Load a checkpoint written by :func:`save_checkpoint` (default: the newest), verified first.

    Every file is checked against the checksums in the checkpoint's manifest before any array is
    read, and every decoded array against its checksum taken at save time. The stored MLP must
    equal ``mlp`` and the stored optimizer state must have the structure of
    ``optimizer.init(params)``; otherwise a one-line :class:`CheckpointError` says what differs.

    Args:
      directory: the checkpoint folder.
      mlp: the model being trained.
      optimizer: the optax optimizer being used (its ``init`` gives the expected state structure).
      epoch: which checkpoint (default: the newest one).
      fallback: False (default): a damaged checkpoint raises :class:`DamagedCheckpointError`.
        True: skip damaged checkpoints, newest first, and restore the newest intact one at or
        before ``epoch``; the skipped ones and why are in :attr:`Restored.skipped` (nothing is
        moved or deleted).

    Returns:
      A :class:`Restored` ``(state, history, config)`` (with ``.skipped`` and ``.verified``).

    Raises:
      FileNotFoundError: when there is no checkpoint (or not that epoch) in ``directory``.
      DamagedCheckpointError: "checkpoint N is damaged: <what>" (strict), or with ``fallback=True``
        when no checkpoint is intact (each one's damage in the line).
      CheckpointError: for a checkpoint written for another architecture or optimizer.

    Example:
      >>> import jax, optax, tempfile, fnnjax
      >>> mlp, d = fnnjax.MLP((2, 2), output="softmax"), tempfile.mkdtemp()
      >>> p = fnnjax.init_params(jax.random.key(0), mlp)
      >>> _ = fnnjax.save_checkpoint(d, fnnjax.TrainState(p, (), jax.random.key(1), 3), mlp=mlp)
      >>> r = fnnjax.restore_checkpoint(d, mlp=mlp, optimizer=optax.identity(), fallback=True)
      >>> r.state.epoch, r.skipped, r.verified
      (3, (), True)
    """
    directory = Path(directory).absolute()
    steps = _steps(directory)
    if epoch is not None:
        steps = [e for e in steps if e <= epoch] if fallback else [e for e in steps if e == epoch]
    if not steps:
        raise FileNotFoundError(
            f"no checkpoint{'' if epoch is None else f' of epoch {epoch}'} in {directory}; "
            "train without resuming first (or point to the folder holding the checkpoints)"
        )
    skipped = []
    for e in reversed(steps):
        try:
            restored, verified = _restore_one(directory, e, mlp, optimizer)
        except DamagedCheckpointError as err:
            if not fallback:
                raise DamagedCheckpointError(
                    e, err.reason, err.path, "; restore with fallback=True to use the newest intact checkpoint instead"
                ) from err
            skipped.append((e, err.reason))
            continue
        return Restored(*restored, skipped=skipped, verified=verified)
    damage = "; ".join(f"checkpoint {e} is damaged: {reason}" for e, reason in skipped)
    raise DamagedCheckpointError(
        skipped[0][0],
        skipped[0][1],
        directory / str(skipped[0][0]),
        message=f"no intact checkpoint in {directory}: {damage}",
    )


_clock = time.monotonic  # the time Checkpointer(seconds=...) measures (tests substitute a fake one)


class Checkpointer:
    r"""A :func:`fnnjax.fit` callback that saves a checkpoint every ``every`` epochs, or at most once
    every ``seconds`` of training, and always after ``final_epoch``.

    It also keeps the history (starting from ``history``, the records of a resumed run) so that
    each checkpoint holds every epoch's record. A save of a small model costs tens of
    milliseconds (orbax writes a folder of files and fnnjax checksums them), a noticeable share of
    a sub-second epoch: ``seconds`` bounds both that cost and the training a crash can lose (at
    most ``seconds`` plus one epoch).

    Args:
      directory: the checkpoint folder.
      mlp: the model.
      every: save after epochs $k, 2k, 3k, \dots$ with $k$ = ``every`` (default 1 when ``seconds`` is None).
      seconds: instead of ``every``: save after an epoch that ends at least ``seconds`` after the
        last save (or after this callback was made).
      final_epoch: the last epoch of the run, always saved (None: only the due epochs).
      history: records of epochs done before (when resuming).
      config: JSON settings stored with every checkpoint.
      max_to_keep: how many checkpoints to keep (the newest; None: all).

    Raises:
      ValueError: ``every`` not a positive integer, ``seconds`` not a positive number, or both
        given.

    Attributes:
      last_saved: the epoch of the last checkpoint this callback saved (None: none yet).

    Example:
      >>> import tempfile, fnnjax
      >>> ckpt = fnnjax.Checkpointer(tempfile.mkdtemp(), mlp=fnnjax.MLP((2, 2)), every=5)
      >>> ckpt = fnnjax.Checkpointer(tempfile.mkdtemp(), mlp=fnnjax.MLP((2, 2)), seconds=30.0, final_epoch=50)
    """

    def __init__(
        self,
        directory,
        *,
        mlp: MLP,
        every: int | None = None,
        seconds: float | None = None,
        final_epoch: int | None = None,
        history: Sequence[dict] = (),
        config: Mapping | None = None,
        max_to_keep: int | None = 2,
    ):
        if every is not None and seconds is not None:
            raise ValueError(
                f"every = {every!r} and seconds = {seconds!r}: pass one of them (epochs between saves, "
                "or the least seconds between saves), not both"
            )
        if every is None and seconds is None:
            every = 1
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"every = {every!r} but it must be a positive integer (epochs)")
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < float("inf")
        ):
            raise ValueError(
                f"seconds = {seconds!r} but it must be a positive number (the least seconds between saves)"
            )
        if max_to_keep is not None and (
            isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or max_to_keep < 1
        ):
            raise ValueError(f"max_to_keep = {max_to_keep!r} but it must be a positive integer or None (all)")
        self.directory, self.mlp, self.every, self.seconds = directory, mlp, every, seconds
        self.final_epoch = final_epoch
        self.history, self.config, self.max_to_keep = list(history), dict(config or {}), max_to_keep
        self.last_saved: int | None = None
        self._since = _clock()

    def __call__(self, record: dict, state: TrainState) -> None:
        self.history.append(record)
        if self._due(int(state.epoch)):
            self.save(state)

    def _due(self, epoch: int) -> bool:
        if epoch == self.final_epoch:
            return True
        if self.every is not None:
            return epoch % self.every == 0
        return self.seconds is not None and _clock() - self._since >= self.seconds

    def save(self, state: TrainState) -> Path:
        """Save ``state`` now, with the history so far (e.g. before stopping between two due saves)."""
        path = save_checkpoint(
            self.directory, state, mlp=self.mlp, history=self.history, config=self.config, max_to_keep=self.max_to_keep
        )
        self.last_saved = int(state.epoch)
        self._since = _clock()
        return path


# ----------------------------------------------------------------------------------------------
# Exported parameters


def _params_checksums(arrays: Mapping[str, np.ndarray], mlp_json: str) -> dict:
    return {
        "format": PARAMS_FORMAT,
        "mlp": hashlib.sha256(mlp_json.encode()).hexdigest(),
        "arrays": {name: _array_sha256(a) for name, a in arrays.items()},
    }


def save_params(path: str | os.PathLike, mlp: MLP, params: Params) -> Path:
    """Write ``params`` and the MLP to a numpy ``.npz`` file (``W1, b1, ..., WL, bL``, ``mlp``, ``checksums``).

    ``mlp`` is the model description and ``checksums`` the SHA-256 of every array and of ``mlp``,
    both JSON strings; :func:`load_params` verifies them. Written to a temporary file, flushed to
    disk and renamed, so an existing file is replaced atomically.

    Args:
      path: the file (``.npz`` is appended if missing).
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
    mlp_json = json.dumps(_mlp_dict(mlp))
    checksums = json.dumps(_params_checksums(arrays, mlp_json))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays, mlp=np.array(mlp_json), checksums=np.array(checksums))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def _damaged_params(path: Path, what: str) -> InputError:
    return InputError(
        f"params file {path} is damaged: {what}; write it again (fnnjax.save_params, or "
        "fnnjax train --resume re-writes it from the newest intact checkpoint)"
    )


def _read_npz(path: Path) -> tuple[dict, str, dict | None]:
    """The arrays, the ``mlp`` JSON and the parsed ``checksums`` (None in files written without them)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            names = set(f.files)
            entries = {name: f[name] for name in names}
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        crc = re.search(r"Bad CRC-32 for file '(.+?)(\.npy)?'", str(err))
        what = (
            f"entry {crc.group(1)} fails the zip format's CRC-32 check"
            if crc
            else "it is not a complete npz (zip) archive (truncated or overwritten)"
        )
        raise _damaged_params(path, what) from err
    except (OSError, ValueError) as err:
        raise _damaged_params(path, f"it cannot be read as an npz archive ({type(err).__name__})") from err
    if "mlp" not in entries:
        raise InputError(
            f"{path} is not an fnnjax params file (it has no 'mlp' entry, only "
            f"{', '.join(sorted(names)) or 'nothing'}); write it with fnnjax.save_params "
            "or fnnjax train --out"
        )
    mlp_json = str(entries.pop("mlp"))
    checksums = None
    if "checksums" in entries:
        try:
            checksums = json.loads(str(entries.pop("checksums")))
        except ValueError as err:
            raise _damaged_params(path, "its checksums entry cannot be read") from err
        if not isinstance(checksums, dict) or checksums.get("format") != PARAMS_FORMAT:
            raise _damaged_params(path, "its checksums entry cannot be read")
    return entries, mlp_json, checksums


def load_params(path: str | os.PathLike) -> tuple[MLP, Params]:
    """Read a file written by :func:`save_params`: ``(mlp, params)`` (params as jax arrays), verified.

    Every array and the model description are checked against the SHA-256 stored in the file
    before they are used. Files written before fnnjax stored checksums (no ``checksums`` entry)
    are read as before, guarded only by the zip format's CRC-32 of each array.

    Raises:
      FileNotFoundError: when the file does not exist.
      fnnjax.errors.InputError (a ValueError): when it is damaged ("params file X is damaged:
        <what>") or not an fnnjax params file (missing arrays or description).

    Example: see :func:`save_params`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"params file {path} does not exist; pass the params.npz written by fnnjax train (or its --out folder)"
        )
    entries, mlp_json, checksums = _read_npz(path)
    if checksums is not None:
        if hashlib.sha256(mlp_json.encode()).hexdigest() != checksums["mlp"]:
            raise _damaged_params(path, "its model description (mlp) does not match its checksum")
        for name, digest in checksums["arrays"].items():
            if name not in entries:
                raise _damaged_params(path, f"array {name} is missing")
            if _array_sha256(entries[name]) != digest:
                raise _damaged_params(path, f"array {name} does not match its checksum")
    try:
        mlp = _mlp_from_dict(json.loads(mlp_json))
        params = tuple(
            Layer(jnp.asarray(entries[f"W{l}"]), jnp.asarray(entries[f"b{l}"])) for l in range(1, mlp.num_layers + 1)
        )
    except (KeyError, ValueError, TypeError) as err:
        raise InputError(
            f"{path} is not an fnnjax params file (no model description or a missing "
            f"array: {type(err).__name__} {err}); write it with fnnjax.save_params or "
            "fnnjax train --out"
        ) from err
    return mlp, check_params(mlp, params)
