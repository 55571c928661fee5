"""Run ``fnnjax train`` in this (child) process with a fault injected at a precise moment.

Used by tests/test_checkpoint_faults.py for the faults that end or signal a process:

    python checkpoint_fault_harness.py FAULT ARGS... [--run FAULT ARGS...]...

Each ``--run`` is one ``fnnjax train`` invocation (ARGS: its arguments without ``train``), run one
after the other in this process, with FAULT injected for that run only. Before each run the harness
writes ``@@ run <i> <FAULT>`` to stderr and after it ``@@ exit <status>`` to stdout. Faults:

- ``none``: nothing injected.
- ``kill-during-orbax-write``: SIGKILL while orbax renames its array part into place during the
  save of epoch 3 (the checkpoint half-written).
- ``kill-before-commit``: SIGKILL just before fnnjax renames the finished checkpoint 3 into place.
- ``kill-after-commit``: SIGKILL just after that rename (before older checkpoints are pruned).
- ``term-during-save``: two SIGTERMs while the checkpoint of epoch 2 is being written.
- ``term-during-epoch`` / ``int-during-epoch``: SIGTERM / SIGINT as epoch 3 starts.
- ``second-signal-during-epoch``: two SIGTERMs as epoch 3 starts (the second stops at once).
- ``wait-in-epoch``: as epoch 3 starts, write the file named by $FNNJAX_HARNESS_READY, then wait
  (for the test to start a second writer and to SIGKILL this one).
- ``file-size-limit``: RLIMIT_FSIZE of $FNNJAX_HARNESS_FSIZE bytes (a disk filling up: a write
  past it fails with EFBIG; Python ignores SIGXFSZ, so the write fails rather than the process).
- ``no-write-permission``: the process loses root's power to write into folders it may not
  (CAP_DAC_OVERRIDE), so that permission bits apply even to root; nothing for other users.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import time
from pathlib import Path


def _on_rename(when, dst_name: str, action):
    """Patch os.rename: call ``action`` before (or after) a rename whose destination is named ``dst_name``
    (a path suffix such as ``3`` or ``3.fnnjax-tmp.orbax-checkpoint-tmp/state``)."""
    original = os.rename

    def rename(src, dst, *args, **kwargs):
        hit = str(dst).endswith("/" + dst_name)
        if hit and when == "before":
            action()
        result = original(src, dst, *args, **kwargs)
        if hit and when == "after":
            action()
        return result

    os.rename = rename
    return lambda: setattr(os, "rename", original)


def _at_epoch_start(epoch: int, action):
    """Patch Trainer.__next__: call ``action`` as epoch ``epoch`` starts."""
    from fnnjax._train import Trainer

    original = Trainer.__next__

    def next_epoch(self):
        if self.state.epoch == epoch - 1:
            action()
        return original(self)

    Trainer.__next__ = next_epoch
    return lambda: setattr(Trainer, "__next__", original)


def _signal_self(*signums):
    def send():
        for s in signums:
            os.kill(os.getpid(), s)

    return send


def _wait_forever():
    Path(os.environ["FNNJAX_HARNESS_READY"]).write_text(str(os.getpid()))
    while True:
        time.sleep(0.05)


def _file_size_limit():
    import jax

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    cache = jax.config.jax_enable_compilation_cache  # its writes would hit the limit too
    jax.config.update("jax_enable_compilation_cache", False)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(os.environ["FNNJAX_HARNESS_FSIZE"]), hard))

    def undo():
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        jax.config.update("jax_enable_compilation_cache", cache)

    return undo


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _without_dac_override():
    """Drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the effective set (kept permitted, so the
    undo can raise them again); a no-op for a process without them."""
    if os.geteuid() != 0:
        return lambda: None
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    saved = data[0].effective
    data[0].effective &= ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if data[0].effective != saved and libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")

    def undo():
        data[0].effective = saved
        libc.capset(ctypes.byref(header), data)

    return undo


def _kill():
    os.kill(os.getpid(), signal.SIGKILL)


FAULTS = {
    "none": lambda: lambda: None,
    "kill-during-orbax-write": lambda: _on_rename("before", "3.fnnjax-tmp.orbax-checkpoint-tmp/state", _kill),
    "kill-before-commit": lambda: _on_rename("before", "3", _kill),
    "kill-after-commit": lambda: _on_rename("after", "3", _kill),
    "term-during-save": lambda: _on_rename(
        "before", "2.fnnjax-tmp.orbax-checkpoint-tmp/state", _signal_self(signal.SIGTERM, signal.SIGTERM)
    ),
    "term-during-epoch": lambda: _at_epoch_start(3, _signal_self(signal.SIGTERM)),
    "int-during-epoch": lambda: _at_epoch_start(3, _signal_self(signal.SIGINT)),
    "second-signal-during-epoch": lambda: _at_epoch_start(3, _signal_self(signal.SIGTERM, signal.SIGTERM)),
    "wait-in-epoch": lambda: _at_epoch_start(3, _wait_forever),
    "file-size-limit": _file_size_limit,
    "no-write-permission": _without_dac_override,
}


def _runs(argv: list[str]) -> list[tuple[str, list[str]]]:
    runs, current = [], []
    for token in argv + ["--run"]:
        if token == "--run":
            if current:
                runs.append((current[0], current[1:]))
            current = []
        else:
            current.append(token)
    return runs


def main(argv: list[str]) -> int:
    from fnnjax.cli import main as fnnjax_main

    for i, (fault, args) in enumerate(_runs(argv), start=1):
        sys.stderr.write(f"@@ run {i} {fault}\n")
        sys.stderr.flush()
        undo = FAULTS[fault]()
        try:
            status = fnnjax_main(["train", *args])
        finally:
            undo()
        sys.stdout.write(f"@@ exit {status}\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
