"""Write the outputs the documentation quotes, from real runs: ``python docs/generate.py``.

Nothing the pages show as the output of a command or of a code block is typed by hand. Each
output is a file in ``docs/snippets/`` that the pages include (``--8<-- "snippets/NAME"``,
pymdownx.snippets), written here by running the real thing:

- **code blocks**: a ```` ```python ```` block of a page followed by a ```` ```text ```` block that
  includes ``snippets/NAME.txt`` prints exactly that file. The pages' blocks run in order in one
  namespace per page (:func:`run_page`); the test suite runs them too and compares every such
  output with its file, so a changed output fails the tests until this script is re-run.
- **commands**: :data:`COMMANDS` lists each quoted command line with the file it writes. Commands
  that are quick and deterministic are re-run by the tests and compared byte for byte; the others
  (a full ``fnnjax verify``, training on the real data set, anything that reports a time) are
  recorded in ``snippets/MANIFEST.json`` with their command and a checksum, which the tests
  compare, so a hand edit or a changed command is caught.
- **sessions**: :data:`SESSIONS` lists terminal sessions, several commands run one after the other
  in a scratch folder (a run, a fault injected into its checkpoints, the run resumed; a run in the
  background and a signal or a second run; a file size limit), each written as a terminal shows
  it to ``snippets/<name>``. They train, and record pids, times and file names, so they are
  recorded in the manifest like the slow commands; the tests check that each shows the commands
  :data:`SESSIONS` runs now. Gradescope's ``results.json`` (:data:`GRADESCOPE_EXCERPT`) is
  recorded the same way, from a real run.
- **the notebook table**: the HTML table Jupyter shows for ``check_backprop``'s result
  (``check-in-notebook.html``), from the code blocks of ``docs/tutorials/check-in-notebook.md``
  (:func:`notebook_table`); written with the pages' outputs, and the tests compare it with a fresh run.
- **the verify report**: a full ``fnnjax verify`` run (``verify-report.json``), from which the
  table of every formula page's checks (``snippets/checks/F<n>.md``) is rendered.
- **the speed claim**: the sentence of README.md and docs/index.md that says how much faster an
  epoch of fnnjax is than its strongest peer (:func:`speed_sentence`), from the committed
  ``benchmarks/results/train_cpu.json`` (``python docs/generate.py speed``); the tests compare the
  pages with that file.

Usage::

    python docs/generate.py                  # everything (a few minutes; needs the data set)
    python docs/generate.py verify-list.txt  # only the named outputs
    python docs/generate.py --pages          # only the outputs of the pages' code blocks
    python docs/generate.py --list           # the names

Outputs that need Fashion-MNIST read it from ``$FNNJAX_DATA`` (or the download cache).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from fnnjax.benchmarks.reference import RECIPE

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
MANIFEST = SNIPPETS / "MANIFEST.json"
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.md") if "snippets" not in p.parts)]

# A python block whose first line starts with this is shown but not run (it needs a cluster).
NOT_RUN = "# not run by the tests:"

_FENCE = re.compile(
    r"^(?P<indent> *)(?P<fence>`{3,})(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$", re.M | re.S
)
_INCLUDE = re.compile(r'^\s*--8<--\s+"(?P<path>[^"]+)"\s*$')


@dataclasses.dataclass(frozen=True)
class Block:
    """A fenced code block of a page: its language, source, line number, and the snippet file that
    the block right after it includes as its output (if any)."""

    page: str
    line: int
    lang: str
    code: str
    output: str | None


def blocks(page: str) -> list[Block]:
    """The fenced code blocks of ``page`` (repository-relative), in order."""
    text = (ROOT / page).read_text()
    found = []
    for m in _FENCE.finditer(text):
        body = textwrap.dedent(m.group("body"))
        info = m.group("info").strip()
        lang = info.split(" ")[0].strip("{}.") if info else ""
        include = _INCLUDE.match(body) if body.strip().count("\n") == 0 else None
        found.append((m, lang, body, include.group("path") if include else None))
    out = []
    for i, (m, lang, body, _) in enumerate(found):
        nxt = found[i + 1] if i + 1 < len(found) else None
        output = None
        if lang == "python" and nxt and nxt[1] == "text" and nxt[3] and not text[m.end() : nxt[0].start()].strip():
            output = nxt[3]
        out.append(Block(page, text.count("\n", 0, m.start()) + 1, lang, body, output))
    return out


def python_blocks(page: str) -> list[Block]:
    """The python blocks of ``page`` that run (not those marked with :data:`NOT_RUN`)."""
    return [b for b in blocks(page) if b.lang == "python" and not b.code.startswith(NOT_RUN)]


@contextlib.contextmanager
def docs_environment():
    """What the pages' code runs in, here and in the tests: JAX's strict dtype promotion (as in the
    test suite; rank promotion as a user has it, so a bias broadcasts over a batch) and
    ``FNNJAX_DATA`` set to a tiny Fashion-MNIST look-alike (so the pages that load the data set run
    anywhere, quickly, without network)."""
    import importlib.util

    import jax

    spec = importlib.util.spec_from_file_location("_docs_conftest", ROOT / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    saved = os.environ.get("FNNJAX_DATA")
    promotion = getattr(jax.config, "jax_numpy_dtype_promotion")
    rank = getattr(jax.config, "jax_numpy_rank_promotion")
    with tempfile.TemporaryDirectory() as tmp:
        conftest.write_fashion_lookalike(Path(tmp), 512, 256)
        os.environ["FNNJAX_DATA"] = tmp
        jax.config.update("jax_numpy_dtype_promotion", "strict")
        jax.config.update("jax_numpy_rank_promotion", "allow")
        try:
            yield tmp
        finally:
            jax.config.update("jax_numpy_dtype_promotion", promotion)
            jax.config.update("jax_numpy_rank_promotion", rank)
            if saved is None:
                os.environ.pop("FNNJAX_DATA", None)
            else:
                os.environ["FNNJAX_DATA"] = saved


def run_page(page: str, namespace: dict | None = None) -> list[tuple[Block, str]]:
    """Run the python blocks of ``page`` in order in one namespace (``namespace``, filled, when
    given); return each with its stdout. Call it inside :func:`docs_environment`.

    Raises:
      RuntimeError: naming the page and line of a block that raised, with the error.
    """
    namespace = {} if namespace is None else namespace
    namespace["__name__"] = f"docs_page_{Path(page).stem}"
    results = []
    for block in python_blocks(page):
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(block.code, f"{page}:{block.line}", "exec"), namespace)
        except Exception as err:
            raise RuntimeError(f"{page} line {block.line}: the code block raised {type(err).__name__}: {err}") from err
        results.append((block, out.getvalue()))
    return results


# ------------------------------------------------------------------------------------------------
# Commands whose output a page quotes


@dataclasses.dataclass(frozen=True)
class Command:
    """A command line run from the repository root; its output goes to ``snippets/<name>``.

    ``argv`` is what runs (``{tmp}`` is a scratch folder, shown as the current one); ``exact``:
    quick and deterministic, re-run by the tests; ``needs_data``: reads Fashion-MNIST; ``env``:
    extra environment, shown before the command; ``status``: show the exit status after the output.
    """

    name: str
    argv: tuple[str, ...]
    exact: bool = False
    needs_data: bool = False
    env: tuple[tuple[str, str], ...] = ()
    status: bool = False
    files: tuple[tuple[str, str], ...] = ()

    @property
    def shown(self) -> str:
        """The command as a page shows it: ``fnnjax ...`` or ``python ...``, with its environment."""
        argv = list(self.argv)
        if argv[:3] == [sys.executable, "-m", "fnnjax"]:
            argv = ["fnnjax", *argv[3:]]
        elif argv[0] == sys.executable:
            argv = ["python", *argv[1:]]
        env = [f"{k}={v}" for k, v in self.env if "{tmp}" not in v]
        words = env + [a.replace("{tmp}/", "") for a in argv]
        return " ".join(words)


def _fnnjax(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "fnnjax", *args)


def _python(*args: str) -> tuple[str, ...]:
    return (sys.executable, *args)


_NOTES = RECIPE  # the notes' recipe as fnnjax train options, as the reference benchmark runs it
_FOUR_DEVICES = (("XLA_FLAGS", "--xla_force_host_platform_device_count=4"),)

_MYGRADS = """\
import fnnjax


def backprop(mlp, params, x, y, loss="cross_entropy", l2=0.0):  # returns a list of (dW, db) tuples
    return [tuple(layer) for layer in fnnjax.backprop(mlp, params, x, y, loss, l2)]


def short(mlp, params, x):  # forgot y, loss and l2
    return fnnjax.backprop(mlp, params, x, None)
"""
_MYGRADS_ENV = (("PYTHONPATH", "{tmp}"),)

COMMANDS: tuple[Command, ...] = (
    Command("verify-list.txt", _fnnjax("verify", "--list"), exact=True),
    Command("verify-unknown-id.txt", _fnnjax("verify", "--only", "F99"), exact=True, status=True),
    Command(
        "backprop-wrong.txt",
        _fnnjax("verify", "--backprop", "examples/student_backprop_wrong.py:backprop"),
        status=True,
    ),
    Command(
        "backprop-right.txt", _fnnjax("verify", "--backprop", "examples/student_backprop.py:backprop"), status=True
    ),
    Command(
        "backprop-structure.txt",
        _fnnjax("verify", "--backprop", "mygrads:backprop"),
        status=True,
        files=(("mygrads.py", _MYGRADS),),
        env=_MYGRADS_ENV,
    ),
    Command(
        "backprop-signature.txt",
        _fnnjax("verify", "--backprop", "mygrads:short"),
        exact=True,
        status=True,
        files=(("mygrads.py", _MYGRADS),),
        env=_MYGRADS_ENV,
    ),
    Command("perceptron.txt", _python("examples/perceptron.py")),
    Command("regression.txt", _python("examples/regression.py")),
    Command(
        "pretrain-example.txt",
        _python("examples/pretrain.py", "--pretrain-epochs", "5", "--epochs", "10"),
        needs_data=True,
    ),
    Command(
        "train-notes.txt",
        _fnnjax(
            "train", *_NOTES, "--epochs", "50", "--seed", "0", "--checkpoint-every", "0", "--out", "{tmp}/runs/notes"
        ),
        needs_data=True,
    ),
    Command("predict-notes.txt", _fnnjax("predict", "--params", "{tmp}/runs/notes", "--count", "18"), needs_data=True),
    Command(
        "train-devices.txt",
        _fnnjax(
            "train", "--devices", "4", "--epochs", "2", "--checkpoint-every", "0", "--quiet", "--out", "{tmp}/runs/dp4"
        ),
        needs_data=True,
        env=_FOUR_DEVICES,
    ),
    Command(
        "train-one-device.txt",
        _fnnjax("train", "--epochs", "2", "--checkpoint-every", "0", "--quiet", "--out", "{tmp}/runs/dp1"),
        needs_data=True,
    ),
    Command(
        "train-bad-sizes.txt",
        _fnnjax("train", "--sizes", "784,256,9", "--out", "{tmp}/runs/bad"),
        needs_data=True,
        status=True,
    ),
    Command(
        "train-bad-devices.txt",
        _fnnjax("train", "--devices", "3", "--batch-size", "256", "--out", "{tmp}/runs/bad"),
        needs_data=True,
        status=True,
        env=_FOUR_DEVICES,
    ),
    Command("backprop-cs231n.txt", _fnnjax("verify", "--backprop", "examples/courses/cs231n/fc_net.py")),
    Command(
        "backprop-cs231n-wrong.txt",
        _fnnjax("verify", "--backprop", "examples/courses/cs231n/fc_net_wrong.py"),
        status=True,
    ),
)


def _run_command(cmd: Command, tmp: str) -> str:
    for name, source in cmd.files:
        Path(tmp, name).write_text(source)
    env = {**os.environ, **{k: v.replace("{tmp}", tmp) for k, v in cmd.env}, "COLUMNS": "120"}
    env.pop("FNNJAX_DEBUG", None)
    argv = [a.replace("{tmp}", tmp) for a in cmd.argv]
    proc = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL
    )
    text = proc.stdout + (proc.stderr if proc.returncode else "")
    for folder in {tmp, os.path.realpath(tmp)}:  # "wrote TMP/: report.json" as run where it is shown
        text = text.replace(f"{folder}{os.sep}: ", "")
    text = text.replace(tmp + "/", "").replace(tmp, ".")
    if proc.returncode not in (0, 1, 2):
        raise RuntimeError(f"{cmd.shown} failed with status {proc.returncode}:\n{proc.stderr[-2000:]}")
    if proc.returncode == 1 and not cmd.status:
        raise RuntimeError(f"{cmd.shown} exited with status 1:\n{proc.stderr[-2000:]}")
    lines = [f"$ {cmd.shown}", *text.rstrip("\n").splitlines()]
    if cmd.status:
        lines += ["$ echo $?", str(proc.returncode)]
    return "\n".join(lines) + "\n"


def command_output(cmd: Command, tmp: str | None = None) -> str:
    """Run ``cmd`` (its outputs in the folder ``tmp``, a temporary one by default); the text a page quotes."""
    if tmp is not None:
        return _run_command(cmd, tmp)
    with tempfile.TemporaryDirectory() as tmp:
        return _run_command(cmd, tmp)


# ------------------------------------------------------------------------------------------------
# Sessions: several commands in one scratch folder, as a terminal shows them


@dataclasses.dataclass(frozen=True)
class Edit:
    """A change this script makes to the session's folder between two commands (a fault injected on
    purpose, made as tests/test_checkpoint_faults.py makes it), shown as ``# <comment>``."""

    comment: str
    apply: Callable[[Path], None]

    @property
    def shown(self) -> str:
        return f"# {self.comment}"


@dataclasses.dataclass(frozen=True)
class Start:
    """``cmd`` started in the background (``$ ... &``); :class:`Wait` shows its output."""

    cmd: Command

    @property
    def shown(self) -> str:
        return f"$ {self.cmd.shown} &"


@dataclasses.dataclass(frozen=True)
class Once:
    """Wait until the background command has written ``path`` (relative to the session's folder)."""

    path: str

    @property
    def shown(self) -> str:
        return f"# once {self.path} exists:"


@dataclasses.dataclass(frozen=True)
class Kill:
    """Send SIGTERM to the background command."""

    shown: str = "$ kill -TERM $!"


@dataclasses.dataclass(frozen=True)
class Wait:
    """Wait for the background command to end: its output, then its exit status (128 + the signal
    number for a command ended by a signal, as the shell reports it)."""

    shown: str = "$ wait $!; echo $?"


@dataclasses.dataclass(frozen=True)
class FileSizeLimit:
    """``cmd`` in a subshell whose file size limit (``ulimit -f``: RLIMIT_FSIZE) is ``kib`` KiB: a
    write past it fails with EFBIG, as a write to a full disk fails with ENOSPC."""

    cmd: Command
    kib: int

    @property
    def shown(self) -> str:
        return f"$ (ulimit -f {self.kib}; {self.cmd.shown})"


Step = Command | Edit | Start | Once | Kill | Wait | FileSizeLimit


def _step_lines(step: Step) -> list[str]:
    """The lines a step shows before its output: its command or comment (and ``$ echo $?``)."""
    if isinstance(step, Command):
        return [f"$ {step.shown}", *(["$ echo $?"] if step.status else [])]
    if isinstance(step, FileSizeLimit):
        return [step.shown, *(["$ echo $?"] if step.cmd.status else [])]
    return [step.shown]


@dataclasses.dataclass(frozen=True)
class Session:
    """Commands run one after the other in one scratch folder (each one's current folder), written
    out as a terminal shows them: ``$ command``, its output (stdout and stderr as they interleave),
    ``# comment`` for what this script does in between. Every command finds ``FNNJAX_DATA``
    pointing to a small Fashion-MNIST look-alike in that folder (:data:`LOOKALIKE`: the runs take
    seconds; fnnjax's messages are the same on the real data set) and ``LC_ALL=C``.

    ``expect``: regular expressions the transcript must match, so that a session that went
    otherwise (say, a background run that ended before the command meant to meet it) stops this
    script instead of writing a snippet that shows something else. ``files``: written into the
    folder first. A session records its pids, host names, times and file names as they were, so
    none is re-run by the tests: its snippet is recorded in the manifest.
    """

    name: str
    steps: tuple[Step, ...]
    expect: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()

    @property
    def shown(self) -> str:
        """The session's command and comment lines (what the manifest records for it)."""
        return "\n".join(line for step in self.steps for line in _step_lines(step))


LOOKALIKE = (512, 256)
"""Training and test images of the sessions' Fashion-MNIST look-alike."""

_RUN = "runs/notes"
_CHECKPOINTS = f"{_RUN}/checkpoints"


def _train(*options: str, resume: bool = False, status: bool = False) -> Command:
    """``fnnjax train`` of a small net (784-16-10, batch 64) into runs/notes, without a progress bar,
    with a checkpoint after every epoch (the sessions show what happens to each of them)."""
    net = ("--sizes", "784,16,10", "--batch-size", "64", "--checkpoint-every", "1")
    argv = _fnnjax("train", *net, *options, "--quiet", "--out", _RUN)
    return Command("", argv + (("--resume",) if resume else ()), status=status)


def _shell(*argv: str, status: bool = False) -> Command:
    return Command("", argv, status=status)


def _flip_meta_bit(*epochs: int) -> Callable[[Path], None]:
    """Flip one bit in the middle of the JSON part (meta/metadata) of each checkpoint of ``epochs``."""

    def apply(folder: Path) -> None:
        for epoch in epochs:
            path = folder / _CHECKPOINTS / str(epoch) / "meta" / "metadata"
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 1
            path.write_bytes(bytes(data))

    return apply


def _zero_array_bytes(epoch: int) -> Callable[[Path], None]:
    """Set 64 bytes in the middle of checkpoint ``epoch``'s largest array data file to 0."""

    def apply(folder: Path) -> None:
        state = folder / _CHECKPOINTS / str(epoch) / "state"
        path = max((f for f in state.rglob("*") if f.is_file()), key=lambda f: f.stat().st_size)
        data = bytearray(path.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
        path.write_bytes(bytes(data))

    return apply


_RESTORE = """\
import optax

import fnnjax

mlp = fnnjax.MLP((784, 16, 10), hidden="relu", output="softmax")
optimizer = optax.sgd(0.1)
try:
    fnnjax.restore_checkpoint("runs/notes/checkpoints", mlp=mlp, optimizer=optimizer)
except fnnjax.DamagedCheckpointError as err:
    print(err)
restored = fnnjax.restore_checkpoint("runs/notes/checkpoints", mlp=mlp, optimizer=optimizer, fallback=True)
print("restored epoch", restored.state.epoch, "skipping", restored.skipped)
"""

SESSIONS: tuple[Session, ...] = (
    Session(
        "resume-changed-setting.txt",
        (_train("--epochs", "2"), _train("--epochs", "4", "--lr", "0.2", resume=True, status=True)),
        expect=(r"was written with --lr 0\.1 but this run has --lr 0\.2",),
    ),
    Session(
        "resume-without-flag.txt",
        (_train("--epochs", "2"), _train("--epochs", "4", status=True), _train("--epochs", "4", resume=True)),
        expect=(r"already holds checkpoints \(newest: epoch 2\)", r"after epoch 4 "),
    ),
    Session(
        "train-sigterm.txt",
        (
            Start(_train("--epochs", "10")),
            Once(f"{_CHECKPOINTS}/1"),
            Kill(),
            Wait(),
            _train("--epochs", "10", resume=True),
        ),
        expect=(r"stopped by SIGTERM after epoch \d+ of 10; checkpoint \d+ is saved", r"\n143\n", r"after epoch 10 "),
    ),
    Session(
        "resume-damaged.txt",
        (
            _train("--epochs", "2"),
            Edit(f"one bit flipped in the middle of {_CHECKPOINTS}/2/meta/metadata", _flip_meta_bit(2)),
            _train("--epochs", "3", resume=True),
            _shell("ls", "-A", _RUN, _CHECKPOINTS, f"{_CHECKPOINTS}/3"),
        ),
        expect=(r"skipped it \(renamed 2\.damaged\) and resuming from checkpoint 1", r"after epoch 3 "),
    ),
    Session(
        "restore-damaged.txt",
        (
            _train("--epochs", "2"),
            Edit("64 bytes in the middle of checkpoint 2's largest array data file set to 0", _zero_array_bytes(2)),
            _shell("cat", "restore.py"),
            _shell(sys.executable, "restore.py"),
        ),
        expect=(r"checkpoint 2 is damaged: file state/\S+ does not match its checksum", r"restored epoch 1 "),
        files=(("restore.py", _RESTORE),),
    ),
    Session(
        "resume-no-intact.txt",
        (
            _train("--epochs", "2"),
            Edit("one bit flipped in the middle of meta/metadata of checkpoints 1 and 2", _flip_meta_bit(1, 2)),
            _train("--epochs", "4", resume=True, status=True),
            _shell("ls", "-A", _CHECKPOINTS),
        ),
        expect=(r"no intact checkpoint in runs/notes/checkpoints",),
    ),
    Session(
        "train-nonfinite.txt",
        (_train("--hidden", "identity", "--lr", "5", "--epochs", "10", status=True),),
        expect=(r"the newest intact checkpoint \(epoch \d+, checksums verified\)",),
    ),
    Session(
        "train-two-writers.txt",
        (
            Start(_train("--epochs", "50")),
            Once(f"{_CHECKPOINTS}/1"),
            _train("--epochs", "50", resume=True, status=True),
            Wait(),
        ),
        expect=(r"is in use by another fnnjax train run \(pid \d+ on host ", r"after epoch 50 "),
    ),
    Session(
        "train-disk-full.txt",
        (
            _train("--epochs", "2"),
            FileSizeLimit(_train("--epochs", "3", resume=True, status=True), 8),
            _shell("ls", "-A", _CHECKPOINTS),
            _train("--epochs", "3", resume=True),
        ),
        expect=(r"could not save checkpoint 3 in runs/notes/checkpoints: a file grew past", r"after epoch 3 "),
    ),
)


def _write_lookalike(root: Path, n_train: int, n_test: int) -> None:
    """tests/conftest.py's Fashion-MNIST look-alike in ``root/fashion-mnist`` (``root`` is created)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_docs_conftest", ROOT / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    root.mkdir(parents=True, exist_ok=True)
    conftest.write_fashion_lookalike(root, n_train, n_test)


def _session_env(folder: str) -> dict[str, str]:
    env = {**os.environ, "FNNJAX_DATA": str(Path(folder, "data")), "COLUMNS": "120", "LC_ALL": "C"}
    for name in ("FNNJAX_DEBUG", "JAX_COMPILATION_CACHE_DIR"):  # a traceback; a cache past the file size limit
        env.pop(name, None)
    return env


def _shell_status(returncode: int) -> int:
    """The exit status as a shell reports it: 128 + the signal number for a process ended by one."""
    return 128 - returncode if returncode < 0 else returncode


def _file_size_limit(kib: int | None) -> Callable[[], None] | None:
    if kib is None:
        return None
    import resource

    def limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, hard))

    return limit


def _wait_for(folder: str, path: str, proc: subprocess.Popen | None, timeout: float = 600) -> None:
    """Wait until the background command ``proc`` has written ``path`` (relative to ``folder``)."""
    deadline = time.monotonic() + timeout
    while not Path(folder, path).exists():
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"the background command ended before {path} appeared")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


def _session_text(session: Session, folder: str) -> str:
    env, lines = _session_env(folder), []
    background: subprocess.Popen | None = None
    try:
        for step in session.steps:
            lines.append(_step_lines(step)[0])
            if isinstance(step, (Command, FileSizeLimit)):
                cmd = step if isinstance(step, Command) else step.cmd
                kib = step.kib if isinstance(step, FileSizeLimit) else None
                proc = subprocess.run(
                    cmd.argv,
                    cwd=folder,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=1800,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_file_size_limit(kib),
                )
                if proc.returncode and not cmd.status:
                    raise RuntimeError(f"{cmd.shown} failed with status {proc.returncode}:\n{proc.stdout[-2000:]}")
                lines += proc.stdout.splitlines()
                if cmd.status:
                    lines += ["$ echo $?", str(_shell_status(proc.returncode))]
            elif isinstance(step, Edit):
                step.apply(Path(folder))
            elif isinstance(step, Start):
                background = subprocess.Popen(
                    step.cmd.argv,
                    cwd=folder,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    stdin=subprocess.DEVNULL,
                )
            elif isinstance(step, Once):
                _wait_for(folder, step.path, background)
            elif background is None:
                raise RuntimeError(f"{step.shown}: no command was started in the background")
            elif isinstance(step, Kill):
                background.send_signal(signal.SIGTERM)
            else:
                out, _ = background.communicate(timeout=1800)
                lines += [*out.splitlines(), str(_shell_status(background.returncode))]
    finally:
        if background is not None and background.poll() is None:
            background.kill()
            background.wait()
    return "\n".join(lines).replace(folder + "/", "").replace(folder, ".") + "\n"


def session_output(session: Session) -> str:
    """Run ``session`` in a temporary folder; the transcript a page quotes.

    Raises:
      RuntimeError: a command without ``status`` failed, the background command ended before the
        file waited for appeared, or the transcript does not match ``session.expect``.
    """
    with tempfile.TemporaryDirectory() as folder:
        _write_lookalike(Path(folder, "data"), *LOOKALIKE)
        for name, source in session.files:
            Path(folder, name).write_text(source)
        text = _session_text(session, folder)
    missing = [pattern for pattern in session.expect if not re.search(pattern, text)]
    if missing:
        raise RuntimeError(f"{session.name}: the session went otherwise (no match for {missing}):\n{text}")
    return text


# ------------------------------------------------------------------------------------------------
# Gradescope's results.json, from a real run

GRADESCOPE_EXCERPT = "gradescope-results.json"
GRADESCOPE_RUN = Command(
    GRADESCOPE_EXCERPT,
    _fnnjax(
        "verify",
        "--backprop",
        "examples/courses/cs231n/fc_net_wrong.py",
        "--gradescope",
        "{tmp}/results.json",
        "--points",
        "10",
    ),
    status=True,
)
GRADESCOPE_SHOWN = f"{GRADESCOPE_RUN.shown}: results.json with its first two tests"


def gradescope_excerpt() -> str:
    """The results.json that :data:`GRADESCOPE_RUN` writes, with the first two of its tests."""
    with tempfile.TemporaryDirectory() as tmp:
        _run_command(GRADESCOPE_RUN, tmp)
        results = json.loads(Path(tmp, "results.json").read_text())
    return json.dumps({**results, "tests": results["tests"][:2]}, indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------------------
# A class graded at once, from a real run of a generated class folder

CLASS_KINDS = {
    "right": 3,
    "missing-l2": 2,
    "missing-relu-mask": 1,
    "sign-flip": 1,
    "unfinished": 1,
    "hangs": 1,
    "kills-the-grader": 1,
    "injects-markup": 1,
}
"""The class :func:`class_outputs` grades (kinds of :func:`fnnjax.benchmarks.grading.make_class`)."""
CLASS_RUN = Command(
    "class-run.txt",
    _fnnjax("verify", "--class", "submissions", "--report", "grades", "--timeout", "2", "--points", "10"),
)
CLASS_OUTPUTS = ("class-run.txt", "class-report.md", "class-grades.csv")
CLASS_IMAGE = DOCS / "how-to" / "grade-a-class-mistakes.png"


def class_outputs() -> dict[str, str]:
    """The terminal output, report.md (headings under the page's) and grades.csv of
    :data:`CLASS_RUN` on a class folder written by :func:`fnnjax.benchmarks.grading.make_class`
    (:data:`CLASS_KINDS`); the chart is copied to :data:`CLASS_IMAGE`."""
    from fnnjax.benchmarks.grading import make_class

    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # the sandbox's user reads the copies of the submissions
        make_class(Path(tmp, "submissions"), CLASS_KINDS, zipped=1)
        argv = [a.replace("{tmp}", tmp) for a in CLASS_RUN.argv]
        env = dict(os.environ, TQDM_DISABLE="1")
        proc = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{CLASS_RUN.shown} failed with status {proc.returncode}:\n{proc.stderr[-2000:]}")

        def shown(text: str) -> str:  # the scratch folder is the current one, as where the page's command runs
            return text.replace(os.path.realpath(tmp) + os.sep, "").replace(tmp + os.sep, "")

        stdout = shown(proc.stdout)
        report = shown(Path(tmp, "grades", "report.md").read_text())
        grades = shown(Path(tmp, "grades", "grades.csv").read_text())
        CLASS_IMAGE.write_bytes(Path(tmp, "grades", "mistakes.png").read_bytes())
    report = "\n".join(line for line in report.splitlines() if not line.startswith("# ")).lstrip("\n")
    report = re.sub(r"^## ", "### ", report, flags=re.M).replace("](mistakes.png)", f"]({CLASS_IMAGE.name})")
    return {
        "class-run.txt": f"$ {CLASS_RUN.shown}\n{stdout}",
        "class-report.md": report + ("" if report.endswith("\n") else "\n"),
        "class-grades.csv": grades,
    }


# ------------------------------------------------------------------------------------------------
# The table check_backprop shows in a notebook

NOTEBOOK_PAGE = "docs/tutorials/check-in-notebook.md"
NOTEBOOK_TABLE = "check-in-notebook.html"


def notebook_table() -> str:
    """The HTML table Jupyter shows for the ``result`` of :data:`NOTEBOOK_PAGE`'s code blocks
    (``result._repr_html_()``, the same run whose printed report the page quotes)."""
    namespace: dict = {}
    with docs_environment():
        run_page(NOTEBOOK_PAGE, namespace)
    return namespace["result"]._repr_html_() + "\n"


# ------------------------------------------------------------------------------------------------
# The verify report and each formula's checks

VERIFY_REPORT = "verify-report.json"
VERIFY_TABLE = "verify-table.txt"


def _verify_run() -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = Command(VERIFY_TABLE, _fnnjax("verify", "--json", "{tmp}/report.json"))
        table = _run_command(cmd, tmp)
        return {VERIFY_TABLE: table, VERIFY_REPORT: report.read_text()}


def _measured(value) -> str:
    from fnnjax.verify.formulas import format_value

    return format_value(value)


def _md(text: str) -> str:
    """Plain text as Markdown: brackets, pipes, stars and backslashes escaped (a check's claim may
    read "[W b] [x; 1]", which Markdown would take for a link)."""
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", str(text))


def formula_checks(report: dict, number: int) -> str:
    """The markdown list of formula F<number>'s checks: claim, evidence, criterion, what a full run
    measured (from the JSON report ``report``) and the command that runs them."""
    from fnnjax.verify import all_checks

    checks = {c["id"]: c for c in report["checks"]}
    mine = [c for c in all_checks() if c.number == number]
    lines = []
    for c in mine:
        run = checks.get(c.id)
        if run is None:
            raise KeyError(f"{VERIFY_REPORT} has no result for {c.id}: run python docs/generate.py verify")
        measured = _md("; ".join(f"{k} {_measured(v)}" for k, v in run["measured"].items()))
        lines += [
            f"- **`{c.id}`**: {_md(c.claim)}",
            f"    - *evidence*: {_md(c.method)}",
            f"    - *criterion*: {_md(run['tolerance'])}",
            f"    - *measured* (seed {report['seed']}, full run, {report['device']}): {measured} — **{run['status']}**",
        ]
    lines += ["", f"Run them: `fnnjax verify --only F{number}`."]
    return "\n".join(lines) + "\n"


JSON_EXCERPT_CHECK = "F4-xor-not-separable"


def json_excerpt(report: dict) -> str:
    """The JSON report with one check (:data:`JSON_EXCERPT_CHECK`) in its list."""
    excerpt = {**report, "checks": [c for c in report["checks"] if c["id"] == JSON_EXCERPT_CHECK]}
    return json.dumps(excerpt, indent=2) + "\n"


def report_files(report_text: str) -> dict[str, str]:
    """What is rendered from the JSON report: ``checks/F<n>.md`` for n = 1..28 and the excerpt."""
    report = json.loads(report_text)
    files = {f"checks/F{n}.md": formula_checks(report, n) for n in range(1, 29)}
    files["verify-json-excerpt.json"] = json_excerpt(report)
    return files


# ------------------------------------------------------------------------------------------------
# Writing, the manifest, and the command line


def page_outputs(pages=PAGES) -> dict[str, str]:
    """Every snippet a page's code block prints: ``{snippet path relative to docs/: text}``."""
    outputs = {}
    with docs_environment():
        for page in pages:
            if not any(b.output for b in python_blocks(page)):
                continue
            for block, out in run_page(page):
                if block.output:
                    outputs[block.output.removeprefix("snippets/")] = out
    return outputs


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write(name: str, text: str, command: str) -> None:
    """Write one snippet and record it in the manifest (read and written again for every file, so
    that runs of this script for different names do not undo each other)."""
    path = SNIPPETS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    manifest[name] = {"command": command, "sha256": _sha(text)}
    MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    print(f"wrote docs/snippets/{name}")


# ------------------------------------------------------------------------------------------------
# The speed claim of README.md and docs/index.md

SPEED_RESULTS = ROOT / "benchmarks" / "results" / "train_cpu.json"
SPEED_PAGES = (ROOT / "README.md", DOCS / "index.md")
PEER_NAMES = {"torch_loop": "PyTorch", "torch_compile": "torch.compile", "flax_nnx": "Flax NNX", "equinox": "Equinox"}
"""The train benchmark's peers (:data:`fnnjax.benchmarks.train.PEERS`) as the pages name them."""
_SPEED_PATTERN = re.compile(r"\d+\.\d\d× faster per epoch on a CPU than the fastest of its peers \([^)]*\)")


def speed_sentence(results: dict | None = None) -> str:
    """The pages' speed claim, from the train benchmark's committed CPU results: fit's epoch
    against the fastest of the peers measured (the median of the per-round ratios), e.g.
    ``1.29× faster per epoch on a CPU than the fastest of its peers (Flax NNX; PyTorch,
    torch.compile and Equinox are slower)``."""
    from fnnjax.benchmarks.train import PEERS

    committed: dict = json.loads(SPEED_RESULTS.read_text()) if results is None else results
    target = committed["targets"]["fit_vs_fastest_peer"]
    fastest = target["fastest_peer"]
    others = [PEER_NAMES[p] for p in PEERS if p != fastest and p in committed["results"]]
    slower = ", ".join(others[:-1]) + f" and {others[-1]}" if len(others) > 1 else "".join(others)
    return (
        f"{target['speedup']:.2f}× faster per epoch on a CPU than the fastest of its peers "
        f"({PEER_NAMES[fastest]}{f'; {slower} are slower' if slower else ''})"
    )


def write_speed_sentences() -> None:
    """Put :func:`speed_sentence` into each of :data:`SPEED_PAGES` in place of the one there."""
    sentence = speed_sentence()
    for page in SPEED_PAGES:
        text = page.read_text()
        if len(_SPEED_PATTERN.findall(text)) != 1:
            raise ValueError(f"{page} should hold one speed sentence like {sentence!r}")
        page.write_text(_SPEED_PATTERN.sub(sentence, text))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/snippets/ from real runs.")
    parser.add_argument("names", nargs="*", help="only these outputs (see --list); 'verify' for the report")
    parser.add_argument("--pages", action="store_true", help="only the outputs of the pages' code blocks")
    parser.add_argument("--list", action="store_true", help="list the names and exit")
    args = parser.parse_args(argv)
    names = [c.name for c in COMMANDS] + ["verify"]
    names += [session.name for session in SESSIONS] + [GRADESCOPE_EXCERPT, NOTEBOOK_TABLE, "speed"]
    names += ["class"]
    if args.list:
        print("\n".join(names))
        return 0
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown output(s) {', '.join(unknown)}; valid: {', '.join(names)}")
    wanted = set(args.names) if args.names else (set() if args.pages else set(names))
    if args.pages or not args.names:
        for name, text in page_outputs().items():
            _write(name, text, "a code block of the documentation")
    if NOTEBOOK_TABLE in wanted or args.pages:
        _write(NOTEBOOK_TABLE, notebook_table(), f"the table Jupyter shows for {NOTEBOOK_PAGE}'s result")
    with tempfile.TemporaryDirectory() as tmp:  # one folder: predict reads what train wrote
        for cmd in COMMANDS:
            if cmd.name in wanted:
                _write(cmd.name, command_output(cmd, tmp), cmd.shown)
    for session in SESSIONS:
        if session.name in wanted:
            _write(session.name, session_output(session), session.shown)
    if GRADESCOPE_EXCERPT in wanted:
        _write(GRADESCOPE_EXCERPT, gradescope_excerpt(), GRADESCOPE_SHOWN)
    if "class" in wanted:
        for name, text in class_outputs().items():
            _write(name, text, CLASS_RUN.shown + " (a generated class folder)")
    if "speed" in wanted:
        write_speed_sentences()
    if "verify" in wanted:
        run = _verify_run()
        for name, text in run.items():
            _write(name, text, "fnnjax verify --json report.json")  # the table, and the JSON
    if "verify" in wanted or (SNIPPETS / VERIFY_REPORT).exists():
        for name, text in report_files((SNIPPETS / VERIFY_REPORT).read_text()).items():
            _write(name, text, f"rendered from {VERIFY_REPORT}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
