"""Faults injected on purpose into real checkpoints and real ``fnnjax train`` runs, and what survives.

Every checkpoint here is written by ``fnnjax train`` (784-8-10, momentum, dropout: params, optimizer
state and key all matter) on a tiny Fashion-MNIST look-alike. Each fault is registered with how it
is injected and its outcome (``FAULTS``); the table in docs/how-to/checkpoint-faults.md is generated
from that registry, and ``test_the_docs_table_lists_every_fault`` keeps the two equal (regenerate
the table with ``python tests/test_checkpoint_faults.py``).

What every test asserts: no damaged byte is used (a strict restore raises "checkpoint N is damaged:
<what>"), a resume continues from the newest intact checkpoint and ends with the same params, bit
for bit, as an uninterrupted run, and the user reads one clear line (no orbax/TensorStore text).
Faults that kill or signal a process run in child processes (tests/checkpoint_fault_harness.py),
started together at the beginning of the module so that they overlap.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import fnnjax
from fnnjax import _checkpoint
from fnnjax.cli import main

HERE = Path(__file__).parent
HARNESS = HERE / "checkpoint_fault_harness.py"
DOC = HERE.parent / "docs" / "how-to" / "checkpoint-faults.md"
TABLE_START = "<!-- fault table: generated from tests/test_checkpoint_faults.py; do not edit by hand -->"
TABLE_END = "<!-- end of fault table -->"
TIMEOUT = 240  # seconds for a child process (they share 2 cores with each other and the tests)

MLP = fnnjax.MLP((784, 8, 10), hidden="relu", output="softmax")
OPTIMIZER = "momentum"

FAULTS: list[tuple[str, str, str]] = []
"""``(fault, how it is injected, outcome)``, in the order of the docs table."""


def fault(name: str, how: str, outcome: str):
    """Register a test's fault for the docs table (the row exists exactly when the test does)."""
    FAULTS.append((name, how, outcome))
    return lambda test: test


def train_args(data_dir, out, *extra) -> list[str]:
    return [
        "--data-dir",
        str(data_dir),
        "--sizes",
        "784,8,10",
        "--optimizer",
        OPTIMIZER,
        "--lr",
        "0.05",
        "--batch-size",
        "25",
        "--dropout",
        "0.2",
        "--epochs",
        "4",
        "--out",
        str(out),
        "--quiet",
        "--checkpoint-every",  # one checkpoint per epoch (the default saves at most every 30 s)
        "1",
        *extra,
    ]


def train(data_dir, out, *extra) -> int:
    return main(["train", *train_args(data_dir, out, *extra)])


def params_of(out: Path) -> dict:
    with np.load(out / "params.npz") as f:
        return {k: f[k].copy() for k in f.files if k not in ("mlp", "checksums")}


def losses_of(out: Path) -> list:
    return [r["train_loss"] for r in json.loads((out / "history.json").read_text())["epochs"]]


def assert_same_run(out: Path, reference: Path) -> None:
    """Bit for bit: the same params and the same per-epoch losses as the uninterrupted run."""
    got, want = params_of(out), params_of(reference)
    assert sorted(got) == sorted(want)
    assert all(np.array_equal(got[k], want[k]) for k in want), "params differ from the uninterrupted run"
    assert losses_of(out) == losses_of(reference)


def steps(out: Path) -> list[int]:
    return _checkpoint._steps(out / "checkpoints")


def one_clear_line(err: str) -> str:
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert not re.search(r"orbax|tensorstore|traceback", err, re.IGNORECASE), err
    return err


def settle_orbax():
    """A failed orbax restore leaves a callback that fires later into a closed event loop; let it
    fire here (the tests that make orbax fail ignore that warning)."""
    time.sleep(0.3)
    gc.collect()


# ----------------------------------------------------------------------------------------------
# Runs shared by the tests: the uninterrupted reference, a 2-epoch run to damage, child processes


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, fashion_lookalike):
    return fashion_lookalike(tmp_path_factory.mktemp("data"), 100, 40)


@pytest.fixture(scope="module")
def pristine(data_dir, tmp_path_factory) -> Path:
    """``fnnjax train --epochs 2``: checkpoints 1 and 2, both intact; tests damage copies of it."""
    out = tmp_path_factory.mktemp("pristine") / "run"
    assert train(data_dir, out, "--epochs", "2") == 0
    assert steps(out) == [1, 2]
    return out


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


@dataclasses.dataclass
class Child:
    """A harness process: its runs' output folders, then (after ``finish``) statuses and stderr."""

    proc: subprocess.Popen
    outs: list
    returncode: int | None = None
    exits: list = dataclasses.field(default_factory=list)
    errs: list = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def finish(self) -> Child:
        with self.lock:  # the launcher thread and a test may both wait for the warm-up child
            return self._finish()

    def _finish(self) -> Child:
        if self.returncode is None:
            stdout, stderr = self.proc.communicate(timeout=TIMEOUT)
            self.returncode = self.proc.returncode
            self.exits = [int(s) for s in re.findall(r"^@@ exit (-?\d+)$", stdout, re.MULTILINE)]
            self.errs = [
                part.split("\n", 1)[1] if "\n" in part else ""
                for part in re.split(r"^@@ run ", stderr, flags=re.MULTILINE)[1:]
            ]
        return self


class Children:
    """The module's child processes. The first (the warm-up) fills a JAX compilation cache shared by
    all of them; a thread starts the others once it is done, while the in-process tests go on."""

    WARM_UP = "kill-during-orbax-write"

    def __init__(self, data_dir: Path, pristine: Path, root: Path):
        self.data_dir, self.root = data_dir, root
        self.env = {
            **os.environ,
            "JAX_PLATFORMS": "cpu",
            "FNNJAX_HARNESS_READY": str(root / "ready"),
            "FNNJAX_HARNESS_FSIZE": "8192",
            "JAX_COMPILATION_CACHE_DIR": str(root / "jax-cache"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        }
        self.env.pop("FNNJAX_DEBUG", None)
        self.full = copy_run(pristine, root / "disk-full")
        self.locked = copy_run(pristine, root / "read-only")
        (self.locked / "checkpoints").chmod(0o555)
        (root / "read-only-parent").mkdir(mode=0o555)
        self.started = {self.WARM_UP: self._start([(self.WARM_UP, root / self.WARM_UP, ())])}
        self._launcher = threading.Thread(target=self._start_the_others, daemon=True)
        self._launcher.start()

    def _start(self, runs) -> Child:
        tokens = []
        for fault_name, out, extra in runs:
            tokens += ["--run", fault_name, *train_args(self.data_dir, out, *extra)]
        proc = subprocess.Popen(
            [sys.executable, str(HARNESS), *tokens[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.root,
        )
        return Child(proc, [out for _, out, _ in runs])

    def _start_the_others(self) -> None:
        self.started[self.WARM_UP].finish()
        root = self.root
        for name in ("kill-before-commit", "kill-after-commit", "second-signal-during-epoch", "wait-in-epoch"):
            self.started[name] = self._start([(name, root / name, ())])
        self.started["signals-and-full-disk"] = self._start(
            [
                ("term-during-save", root / "term-during-save", ()),
                ("term-during-epoch", root / "term-during-epoch", ()),
                ("int-during-epoch", root / "int-during-epoch", ("--checkpoint-every", "2")),
                ("file-size-limit", self.full, ("--resume",)),
                ("no-write-permission", self.locked, ("--resume",)),
                ("no-write-permission", root / "read-only-parent" / "run", ()),
            ]
        )

    def __getitem__(self, name: str) -> Child:
        if name != self.WARM_UP:
            self._launcher.join(timeout=TIMEOUT)
        return self.started[name]

    def close(self) -> None:
        self._launcher.join(timeout=TIMEOUT)
        for child in self.started.values():
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()
        (self.locked / "checkpoints").chmod(0o755)
        (self.root / "read-only-parent").chmod(0o755)


@pytest.fixture(scope="module")
def children(data_dir, pristine, tmp_path_factory):
    """Every child process of the module (started at once; they overlap with the in-process tests)."""
    started = Children(data_dir, pristine, tmp_path_factory.mktemp("children"))
    yield started
    started.close()


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory, children) -> Path:
    """The uninterrupted 4-epoch run every resumed run must reproduce bit for bit."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert train(data_dir, out) == 0
    return out


# ----------------------------------------------------------------------------------------------
# Damaged bytes: each way, in the newest checkpoint (2) of a copy of the 2-epoch run


def data_file(step: Path) -> Path:
    """The file holding the arrays (orbax's largest data file)."""
    return max((f for f in (step / "state").rglob("*") if f.is_file()), key=lambda f: f.stat().st_size)


def rewrite(path: Path, change) -> None:
    data = bytearray(path.read_bytes())
    change(data)
    path.write_bytes(bytes(data))


def zero_bytes(step, other):
    def change(b):
        b[len(b) // 2 : len(b) // 2 + 64] = bytes(64)

    rewrite(data_file(step), change)


def flip_bits(step, other):
    def change(b):
        for i in range(16):
            b[len(b) // 3 + 37 * i] ^= 1 << (i % 8)

    rewrite(data_file(step), change)


def flip_one_bit_in_meta(step, other):
    def change(b):
        b[len(b) // 2] ^= 1

    rewrite(step / "meta" / "metadata", change)


def truncate(step, other):
    f = data_file(step)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def delete_file(step, other):
    data_file(step).unlink()


def foreign_meta(step, other):
    shutil.copyfile(other / "meta" / "metadata", step / "meta" / "metadata")


def delete_manifest(step, other):
    (step / _checkpoint.MANIFEST).unlink()


def alter_manifest(step, other):
    text = (step / _checkpoint.MANIFEST).read_text()
    digest = json.loads(text)["files"]["meta/metadata"]["sha256"]
    (step / _checkpoint.MANIFEST).write_text(text.replace(digest, digest[::-1]))


def truncate_manifest(step, other):
    f = step / _checkpoint.MANIFEST
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def foreign_manifest(step, other):
    shutil.copyfile(other / _checkpoint.MANIFEST, step / _checkpoint.MANIFEST)


def folder_of_another_epoch(step, other):
    shutil.rmtree(step)
    shutil.copytree(step.parent / "1", step)


def reseal_manifest(step: Path) -> None:
    """Re-checksum every file into the manifest (what a buggy writer or a careful forger would do),
    so that only the checksums of the decoded arrays can still tell."""
    manifest = json.loads((step / _checkpoint.MANIFEST).read_text())
    manifest["files"] = {
        p.relative_to(step).as_posix(): {"bytes": p.stat().st_size, "sha256": _checkpoint._sha256_file(p)}
        for p in sorted(step.rglob("*"))
        if p.is_file() and p.name != _checkpoint.MANIFEST
    }
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    (step / _checkpoint.MANIFEST).write_text(json.dumps({**body, "sha256": _checkpoint._json_sha256(body)}))


def foreign_arrays_resealed(step, other):
    shutil.rmtree(step / "state")
    shutil.copytree(other / "state", step / "state")
    reseal_manifest(step)


def undecodable_resealed(step, other):
    truncate(step, other)
    reseal_manifest(step)


@dataclasses.dataclass(frozen=True)
class Damage:
    name: str
    how: str
    says: str  # the damage as the line names it
    pattern: str  # ... as a regular expression
    apply: object
    cli: bool = False  # also resumed with fnnjax train --resume (the others: restore_checkpoint)


DAMAGES = [
    Damage(
        "zeroed bytes",
        "64 bytes in the middle of the array data file set to 0",
        "file state/…/d/… does not match its checksum",
        r"file state/\S+/d/\S+ does not match its checksum",
        zero_bytes,
        cli=True,
    ),
    Damage(
        "flipped bits",
        "one bit flipped in each of 16 bytes of the array data file",
        "file state/…/d/… does not match its checksum",
        r"file state/\S+/d/\S+ does not match its checksum",
        flip_bits,
    ),
    Damage(
        "one flipped bit in the JSON part",
        "one bit of meta/metadata (history, config) flipped",
        "file meta/metadata does not match its checksum",
        r"file meta/metadata does not match its checksum",
        flip_one_bit_in_meta,
        cli=True,
    ),
    Damage(
        "truncated file",
        "the array data file cut to half its length",
        "file state/…/d/… is truncated: N bytes, M were saved",
        r"file state/\S+/d/\S+ is truncated: \d+ bytes, \d+ were saved",
        truncate,
    ),
    Damage(
        "deleted file",
        "the array data file deleted",
        "file state/…/d/… is missing",
        r"file state/\S+/d/\S+ is missing",
        delete_file,
    ),
    Damage(
        "a file from another run",
        "meta/metadata replaced by the same file of another run's checkpoint 2 (another seed)",
        "file meta/metadata does not match its checksum",
        r"file meta/metadata does not match its checksum",
        foreign_meta,
    ),
    Damage(
        "manifest deleted",
        "fnnjax-manifest.json deleted",
        "its manifest fnnjax-manifest.json is missing",
        r"its manifest fnnjax-manifest\.json is missing",
        delete_manifest,
    ),
    Damage(
        "manifest altered",
        "one checksum inside the manifest changed (still valid JSON)",
        "its manifest does not match its own checksum",
        r"its manifest does not match its own checksum",
        alter_manifest,
    ),
    Damage(
        "manifest truncated",
        "the manifest cut to half its length",
        "its manifest is not valid JSON (damaged or truncated)",
        r"its manifest is not valid JSON \(damaged or truncated\)",
        truncate_manifest,
    ),
    Damage(
        "manifest from another run",
        "the manifest replaced by another run's (checkpoint 2)",
        "file … does not match its checksum (the first file that differs)",
        r"file \S+ (does not match its checksum|is (truncated|longer than saved): .*)",
        foreign_manifest,
    ),
    Damage(
        "folder of another epoch",
        "checkpoint folder 2 replaced by a copy of folder 1",
        "it holds epoch 1, not 2 (a folder renamed or copied in)",
        r"it holds epoch 1, not 2 \(a folder renamed or copied in\)",
        folder_of_another_epoch,
    ),
    Damage(
        "arrays of another run, files re-checksummed",
        "state/ replaced by another run's whose W1 differs in one weight, and every file's "
        "checksum in the manifest recomputed to match",
        "array W1 does not match its checksum",
        r"array W1 does not match its checksum",
        foreign_arrays_resealed,
        cli=True,
    ),
    Damage(
        "undecodable data, files re-checksummed",
        "the array data file cut to half its length, the manifest recomputed to match",
        "its arrays cannot be decoded",
        r"its arrays cannot be decoded",
        undecodable_resealed,
    ),
]

for _d in DAMAGES:
    FAULTS.append(
        (
            _d.name,
            _d.how,
            f'"checkpoint 2 is damaged: {_d.says}" (strict restore); `fallback=True` restores '
            "checkpoint 1, bit-identical to the one saved"
            + (
                "; `--resume` says so in one line, renames it `2.damaged` and ends with the same "
                "bits as an uninterrupted run"
                if _d.cli
                else ""
            ),
        )
    )


@pytest.fixture(scope="module")
def epoch1(pristine):
    """Checkpoint 1 of the pristine run, as restored (what every fallback must give, bit for bit)."""
    return fnnjax.restore_checkpoint(pristine / "checkpoints", mlp=MLP, optimizer=_optimizer(), epoch=1).state


@pytest.fixture(scope="module")
def other(pristine, tmp_path_factory) -> Path:
    """Checkpoint 2 of "another run": the pristine one with seed 1 in its config and W1 changed by
    1e-3 in one weight (same shapes, same optimizer)."""
    restored = fnnjax.restore_checkpoint(pristine / "checkpoints", mlp=MLP, optimizer=_optimizer())
    params = list(restored.state.params)
    params[0] = fnnjax.Layer(params[0].W.at[0, 0].add(1e-3), params[0].b)
    state = restored.state._replace(params=tuple(params))
    folder = tmp_path_factory.mktemp("other")
    return fnnjax.save_checkpoint(
        folder, state, mlp=MLP, history=restored.history, config={**restored.config, "seed": 1}
    )


def _optimizer():
    from fnnjax._cli_train import _optimizer as cli_optimizer

    return cli_optimizer(OPTIMIZER, 0.05)


def same_state(a, b) -> bool:
    return (
        a.epoch == b.epoch
        and jax.tree.structure(a.opt_state) == jax.tree.structure(b.opt_state)
        and all(
            np.array_equal(np.asarray(u), np.asarray(v))
            for u, v in zip(
                jax.tree.leaves((a.params, a.opt_state, jax.random.key_data(a.key))),
                jax.tree.leaves((b.params, b.opt_state, jax.random.key_data(b.key))),
            )
        )
    )


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # see settle_orbax
@pytest.mark.parametrize("damage", DAMAGES, ids=[d.name for d in DAMAGES])
def test_damage_is_detected_and_skipped(damage, pristine, other, epoch1, data_dir, tmp_path, request, capsys):
    out = copy_run(pristine, tmp_path / "run")
    ckpt_dir = out / "checkpoints"
    damage.apply(ckpt_dir / "2", other)
    with pytest.raises(
        fnnjax.DamagedCheckpointError,
        match=rf"^checkpoint 2 is damaged: {damage.pattern} \(in .*\); restore with "
        "fallback=True",
    ) as info:
        fnnjax.restore_checkpoint(ckpt_dir, mlp=MLP, optimizer=_optimizer())
    assert info.value.epoch == 2 and "\n" not in str(info.value)
    assert not re.search("orbax|tensorstore", str(info.value), re.IGNORECASE)
    restored = fnnjax.restore_checkpoint(ckpt_dir, mlp=MLP, optimizer=_optimizer(), fallback=True)
    assert [e for e, _ in restored.skipped] == [2] and re.fullmatch(damage.pattern, restored.skipped[0][1])
    assert restored.verified and same_state(restored.state, epoch1)
    if damage.pattern == r"its arrays cannot be decoded":
        settle_orbax()
    if damage.cli:
        reference = request.getfixturevalue("reference")
        capsys.readouterr()
        assert train(data_dir, out, "--resume") == 0
        err = one_clear_line(capsys.readouterr().err)
        assert re.fullmatch(
            rf"fnnjax train: checkpoint 2 is damaged: {damage.pattern}; skipped it "
            r"\(renamed 2\.damaged\) and resuming from checkpoint 1, the newest intact "
            r"one\n",
            err,
        ), err
        assert (ckpt_dir / "2.damaged").is_dir() and steps(out) == [3, 4]
        assert_same_run(out, reference)


@fault(
    "every checkpoint damaged",
    "zeroed bytes in the array data files of checkpoints 1 and 2",
    '`--resume`: exit 2, one line "--resume: no intact checkpoint in …: checkpoint 2 is damaged: …; '
    'checkpoint 1 is damaged: …"; nothing renamed; `fallback=True` raises the same',
)
def test_no_intact_checkpoint_is_one_line_and_exit_2(pristine, other, data_dir, tmp_path, capsys):
    out = copy_run(pristine, tmp_path / "run")
    for e in (1, 2):
        zero_bytes(out / "checkpoints" / str(e), other)
    pattern = (
        r"no intact checkpoint in \S+: checkpoint 2 is damaged: file state/\S+ does not match its "
        r"checksum; checkpoint 1 is damaged: file state/\S+ does not match its checksum"
    )
    with pytest.raises(fnnjax.DamagedCheckpointError, match="^" + pattern + "$"):
        fnnjax.restore_checkpoint(out / "checkpoints", mlp=MLP, optimizer=_optimizer(), fallback=True)
    capsys.readouterr()
    assert train(data_dir, out, "--resume") == 2
    err = one_clear_line(capsys.readouterr().err)
    assert re.match(
        rf"fnnjax train: error: --resume: {pattern}; nothing can be resumed: train afresh "
        "with another --out",
        err,
    ), err
    assert steps(out) == [1, 2] and not list((out / "checkpoints").glob("*.damaged*"))


@fault(
    "another run's checkpoint folder as the newest",
    "checkpoint folder 2 replaced by another run's (seed 1), intact",
    'intact, so not skipped: `--resume` stops with exit 2 and one line "the '
    'checkpoint … was written with --seed 1 but this run has --seed 0"',
)
def test_another_runs_intact_checkpoint_is_refused_not_skipped(pristine, other, data_dir, tmp_path, capsys):
    out = copy_run(pristine, tmp_path / "run")
    shutil.rmtree(out / "checkpoints" / "2")
    shutil.copytree(other, out / "checkpoints" / "2")
    capsys.readouterr()
    assert train(data_dir, out, "--resume") == 2
    err = one_clear_line(capsys.readouterr().err)
    assert "was written with --seed 1 but this run has --seed 0" in err
    assert steps(out) == [1, 2]


@fault(
    "a checkpoint written before checksums",
    "checkpoint 2 made like one of an older fnnjax: manifest removed, format fnnjax-checkpoint/1",
    "restored unverified (`Restored.verified` False); `--resume` says so in one line and continues (same bits)",
)
def test_a_checkpoint_from_before_checksums_is_restored_unverified(pristine, data_dir, tmp_path, reference, capsys):
    out = copy_run(pristine, tmp_path / "run")
    step = out / "checkpoints" / "2"
    (step / _checkpoint.MANIFEST).unlink()
    meta = json.loads((step / "meta" / "metadata").read_text())
    (step / "meta" / "metadata").write_text(json.dumps({**meta, "format": "fnnjax-checkpoint/1"}))
    restored = fnnjax.restore_checkpoint(out / "checkpoints", mlp=MLP, optimizer=_optimizer())
    assert restored.state.epoch == 2 and not restored.verified and restored.skipped == ()
    capsys.readouterr()
    assert train(data_dir, out, "--resume") == 0
    err = one_clear_line(capsys.readouterr().err)
    assert "checkpoint 2 was written before fnnjax stored checksums; resuming from it unverified" in err
    assert_same_run(out, reference)


@fault(
    "damage during a run, then a non-finite loss",
    "checkpoint 2's array data zeroed after it was saved, then a non-finite loss in epoch 3",
    "exit 1; the line names checkpoint 1 as the newest "
    "intact one (checksums verified) and says checkpoint 2 is damaged",
)
def test_a_non_finite_loss_names_a_verified_checkpoint(data_dir, tmp_path, monkeypatch, capsys):
    from fnnjax._train import History, NonFiniteLossError, Trainer

    out = tmp_path / "run"
    original = Trainer.__next__

    def next_epoch(self):
        if self.state.epoch == 2:
            zero_bytes(out / "checkpoints" / "2", None)
            raise NonFiniteLossError(
                "non-finite loss at epoch 3, step 1 of 4 (global step 9); training stopped",
                epoch=3,
                step=1,
                history=History([], 0.0),
            )
        return original(self)

    monkeypatch.setattr(Trainer, "__next__", next_epoch)
    assert train(data_dir, out) == 1
    err = one_clear_line(capsys.readouterr().err)
    assert re.search(
        r"non-finite loss at epoch 3, step 1 .*; the newest intact checkpoint \(epoch 1, "
        r"checksums verified\) is kept in \S+checkpoints \(checkpoint 2 is damaged\)",
        err,
    ), err


# ----------------------------------------------------------------------------------------------
# Killed, signalled, full disk, no permission: child processes


def resume_matches(data_dir, out, reference, capsys, *extra) -> str:
    """Resume ``out`` in this process; it must end with the reference run's bits. Returns stderr."""
    capsys.readouterr()
    assert train(data_dir, out, "--resume", *extra) == 0
    err = capsys.readouterr().err
    assert_same_run(out, reference)
    return err


@fault(
    "SIGKILL while orbax writes",
    "the process killed while orbax moves the arrays of checkpoint 3 into place",
    "checkpoint 3 never appears (only a `3.fnnjax-tmp…` folder, removed by the next "
    "save of epoch 3); `--resume` continues from checkpoint 2 (same bits)",
)
def test_sigkill_while_orbax_writes(children, data_dir, reference, capsys):
    child = children["kill-during-orbax-write"].finish()
    out = child.outs[0]
    assert child.returncode == -signal.SIGKILL
    assert steps(out) == [1, 2] and list((out / "checkpoints").glob("3.fnnjax-tmp*"))
    assert resume_matches(data_dir, out, reference, capsys) == ""
    assert not list((out / "checkpoints").glob("*.fnnjax-tmp*"))


@fault(
    "SIGKILL before the commit",
    "the process killed just before the finished checkpoint 3 (manifest written) is renamed into place",
    "checkpoint 3 never appears; `--resume` continues from checkpoint 2 (same bits)",
)
def test_sigkill_before_the_commit(children, data_dir, reference, capsys):
    child = children["kill-before-commit"].finish()
    out = child.outs[0]
    assert child.returncode == -signal.SIGKILL
    assert steps(out) == [1, 2] and (out / "checkpoints" / "3.fnnjax-tmp" / _checkpoint.MANIFEST).is_file()
    assert resume_matches(data_dir, out, reference, capsys) == ""


@fault(
    "SIGKILL after the commit",
    "the process killed just after checkpoint 3 is renamed into place, before older ones are pruned",
    "checkpoint 3 is complete and verified: `--resume` continues "
    "from it (same bits); the next save prunes the extra one",
)
def test_sigkill_after_the_commit(children, data_dir, reference, capsys):
    child = children["kill-after-commit"].finish()
    out = child.outs[0]
    assert child.returncode == -signal.SIGKILL
    assert steps(out) == [1, 2, 3]
    assert fnnjax.restore_checkpoint(out / "checkpoints", mlp=MLP, optimizer=_optimizer()).state.epoch == 3
    assert resume_matches(data_dir, out, reference, capsys) == ""
    assert steps(out) == [3, 4]


@fault(
    "SIGKILL during an epoch; its stale lock",
    "the process killed (from outside) while it holds the lock at the start of epoch 3",
    "checkpoints 1 and 2 intact; the lock dies with the "
    "process, so `--resume` starts at once and continues from checkpoint 2 (same bits)",
)
@fault(
    "two writers on one --out",
    "a second `fnnjax train` (with and without `--resume`) started on the folder of a running one",
    'the second stops at once: exit 2, one line "--out … is in use '
    'by another fnnjax train run (pid … on host …, started …); …"; the folder is untouched',
)
def test_two_writers_then_sigkill_and_the_stale_lock(children, data_dir, reference, capsys):
    child = children["wait-in-epoch"]
    out = child.outs[0]
    deadline = time.monotonic() + TIMEOUT
    ready_file = out.parent / "ready"  # $FNNJAX_HARNESS_READY: written as epoch 3 starts
    while not ready_file.exists():
        assert child.proc.poll() is None, child.finish().errs
        assert time.monotonic() < deadline, "the first writer never reached epoch 3"
        time.sleep(0.05)
    pid = int(ready_file.read_text())
    before = sorted(p.name for p in (out / "checkpoints").iterdir())
    for extra in ((), ("--resume",)):
        capsys.readouterr()
        assert train(data_dir, out, *extra) == 2
        err = one_clear_line(capsys.readouterr().err)
        assert re.fullmatch(
            rf"fnnjax train: error: --out {re.escape(str(out))} is in use by another "
            rf"fnnjax train run \(pid {pid} on host \S+, started \d{{4}}-\d\d-\d\dT"
            r"\d\d:\d\d:\d\d\+00:00\); wait for it to finish, or choose another --out\n",
            err,
        ), err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == before == ["1", "2"]
    child.proc.kill()  # SIGKILL, in the middle of the run
    assert child.finish().returncode == -signal.SIGKILL
    assert resume_matches(data_dir, out, reference, capsys) == ""


@fault(
    "a second signal during an epoch",
    "two SIGTERMs as epoch 3 starts",
    "the first asks to stop after the epoch, the second stops the process at once (killed by "
    "SIGTERM); checkpoints 1 and 2 intact; `--resume` continues from 2 (same bits)",
)
def test_a_second_signal_stops_at_once(children, data_dir, reference, capsys):
    child = children["second-signal-during-epoch"].finish()
    out = child.outs[0]
    assert child.returncode == -signal.SIGTERM
    assert child.errs == [
        "fnnjax train: SIGTERM received: stopping after the epoch in progress, once "
        "it is checkpointed (a second signal stops at once)\n"
    ]
    assert steps(out) == [1, 2]
    assert resume_matches(data_dir, out, reference, capsys) == ""


def signalled(children, index: int):
    child = children["signals-and-full-disk"].finish()
    assert child.returncode == 0, child.errs
    return child.outs[index], child.exits[index], child.errs[index]


def stop_lines(signal_name: str, epoch: int, out: Path) -> str:
    return (
        f"fnnjax train: {signal_name} received: stopping after the epoch in progress, once it is "
        "checkpointed (a second signal stops at once)\n"
        f"fnnjax train: stopped by {signal_name} after epoch {epoch} of 4; checkpoint {epoch} is saved "
        f"in {out / 'checkpoints'}: run the same command with --resume to continue from epoch "
        f"{epoch + 1}\n"
    )


@fault(
    "SIGTERM during a save",
    "two SIGTERMs while checkpoint 2 is being written",
    "the save finishes (signals wait for it), checkpoint 2 is verified intact; exit 143 with a line "
    "saying how to resume; `--resume` gives the same bits",
)
def test_sigterm_during_a_save(children, data_dir, reference, capsys):
    out, status, err = signalled(children, 0)
    assert status == 143 and err == stop_lines("SIGTERM", 2, out)
    assert steps(out) == [1, 2]
    restored = fnnjax.restore_checkpoint(out / "checkpoints", mlp=MLP, optimizer=_optimizer())
    assert restored.verified and [r["epoch"] for r in restored.history] == [1, 2]
    assert "stopped by SIGTERM after epoch 2" in json.loads((out / "history.json").read_text())["stopped"]
    assert resume_matches(data_dir, out, reference, capsys) == ""


@fault(
    "SIGTERM during an epoch",
    "SIGTERM as epoch 3 starts",
    "epoch 3 finishes and is checkpointed; "
    'exit 143, "stopped by SIGTERM after epoch 3 of 4; checkpoint 3 is saved in …: run the same '
    'command with --resume …"; `--resume` gives the same bits',
)
def test_sigterm_during_an_epoch(children, data_dir, reference, capsys):
    out, status, err = signalled(children, 1)
    assert status == 143 and err == stop_lines("SIGTERM", 3, out)
    assert steps(out) == [2, 3]
    assert resume_matches(data_dir, out, reference, capsys) == ""


@fault(
    "SIGINT (Ctrl-C) during an epoch",
    "SIGINT as epoch 3 starts, with --checkpoint-every 2",
    "epoch 3 finishes and is checkpointed although not due; exit 130; `--resume` gives the same bits",
)
def test_sigint_during_an_epoch_checkpoints_it(children, data_dir, reference, capsys):
    out, status, err = signalled(children, 2)
    assert status == 130 and err == stop_lines("SIGINT", 3, out)
    assert steps(out) == [2, 3]
    assert resume_matches(data_dir, out, reference, capsys, "--checkpoint-every", "2") == ""


@fault(
    "the disk fills during a save",
    "`--resume` from checkpoint 2 under a file size limit of 8 KiB "
    "(RLIMIT_FSIZE): writing checkpoint 3's array data fails with EFBIG",
    'exit 2, one line "could not save checkpoint 3 in …: a file grew past the allowed size (file '
    "too large); the checkpoints saved before it are untouched; fix that and run the same command "
    'with --resume"; nothing of checkpoint 3 is left; a later `--resume` gives the same bits',
)
def test_the_disk_filling_during_a_save(children, data_dir, reference, capsys):
    out, status, err = signalled(children, 3)
    assert status == 2, err
    assert one_clear_line(err) == (
        f"fnnjax train: error: could not save checkpoint 3 in {out / 'checkpoints'}: a file grew past the "
        "allowed size (file too large); the checkpoints saved before it are untouched; fix that and run "
        "the same command with --resume\n"
    )
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["1", "2"]
    assert resume_matches(data_dir, out, reference, capsys) == ""


@fault(
    "an unwritable checkpoint folder",
    "`--resume` with OUT/checkpoints read-only (mode 555; for root, CAP_DAC_OVERRIDE dropped)",
    'exit 2 at once, before any training: "cannot write '
    'checkpoints into … (Permission denied); …"; checkpoints untouched',
)
@fault(
    "an unwritable output folder",
    "`--out` inside a read-only folder",
    'exit 2 at once: "--out … cannot be written (Permission denied); choose a folder you can write to"',
)
def test_unwritable_folders(children, capsys):
    child = children["signals-and-full-disk"].finish()
    (out, status, err), (out2, status2, err2) = ((child.outs[i], child.exits[i], child.errs[i]) for i in (4, 5))
    assert status == 2 and one_clear_line(err) == (
        f"fnnjax train: error: cannot write checkpoints into {out / 'checkpoints'} (Permission denied); "
        "make it writable, choose another --out, or pass --checkpoint-every 0\n"
    )
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["1", "2"]
    assert status2 == 2 and one_clear_line(err2) == (
        f"fnnjax train: error: --out {out2} cannot be written (Permission denied); choose a folder you can write to\n"
    )


# ----------------------------------------------------------------------------------------------
# Exported params


def npz_array_offset(path: Path, name: str) -> int:
    """Where the data of entry ``name`` (an .npy: a 128-byte header, then the array) start in the file."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as z:
        start = z.getinfo(name).header_offset
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[start + 26 : start + 30])  # the local file header's
    return start + 30 + name_len + extra_len + 128


@fault(
    "params.npz: zeroed bytes",
    "64 bytes of W1's data set to 0",
    '`load_params` and `fnnjax predict`: "params file … is damaged: entry W1 fails the zip format\'s CRC-32 check; …"',
)
@fault(
    "params.npz: truncated",
    "the file cut to half its length",
    '"params file … is damaged: it is not a complete npz (zip) archive (truncated or overwritten); …"',
)
@fault(
    "params.npz: an array replaced",
    "W1 changed by 1e-3 in one weight and the file rewritten with numpy (valid zip, old checksums)",
    '"params file … is damaged: array W1 does not match its checksum; …"',
)
@fault(
    "params.npz written before checksums",
    "a file without the `checksums` entry",
    "loaded as before (the zip format's CRC-32 still guards each array)",
)
def test_damaged_params_files(pristine, data_dir, tmp_path, capsys):
    good = pristine / "params.npz"
    mlp, params = fnnjax.load_params(good)
    with np.load(good) as f:
        entries = {k: f[k].copy() for k in f.files}

    zeroed = tmp_path / "zeroed.npz"
    offset = npz_array_offset(good, "W1.npy")
    data = bytearray(good.read_bytes())
    data[offset : offset + 64] = bytes(64)
    zeroed.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    replaced = tmp_path / "replaced.npz"
    w1 = entries["W1"].copy()
    w1[0, 0] += 1e-3
    np.savez(replaced, **{**entries, "W1": w1})
    for path, what in [
        (zeroed, "entry W1 fails the zip format's CRC-32 check"),
        (truncated, r"it is not a complete npz \(zip\) archive \(truncated or overwritten\)"),
        (replaced, "array W1 does not match its checksum"),
    ]:
        with pytest.raises(
            ValueError,
            match=rf"^params file {re.escape(str(path))} is damaged: {what}; "
            "write it again",
        ) as info:
            fnnjax.load_params(path)
        assert "\n" not in str(info.value)
    capsys.readouterr()
    assert main(["predict", "--params", str(replaced), "--data-dir", str(data_dir)]) == 2
    assert "array W1 does not match its checksum" in one_clear_line(capsys.readouterr().err)

    older = tmp_path / "older.npz"
    np.savez(older, **{k: v for k, v in entries.items() if k != "checksums"})
    mlp2, params2 = fnnjax.load_params(older)
    assert mlp2 == mlp and all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params2), jax.tree.leaves(params)))


# ----------------------------------------------------------------------------------------------
# The docs table


def fault_table() -> str:
    rows = ["| Fault | How the test injects it | Outcome |", "|---|---|---|"]
    rows += [f"| {name} | {how} | {outcome} |" for name, how, outcome in FAULTS]
    return "\n".join(rows)


def write_table(doc: Path = DOC) -> None:
    text = doc.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    doc.write_text(text[:start] + "\n" + fault_table() + "\n" + text[end:])


def test_the_docs_table_lists_every_fault():
    text = DOC.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    assert text[start:end].strip() == fault_table(), (
        "docs/how-to/checkpoint-faults.md's table is out of date: run python tests/test_checkpoint_faults.py"
    )
    assert len({name for name, _, _ in FAULTS}) == len(FAULTS)


if __name__ == "__main__":
    write_table()
    print(f"wrote the table of {len(FAULTS)} faults into {DOC}")
