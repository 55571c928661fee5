"""Watching the ``fnnjax train`` command from inside, epoch by epoch, for the benchmarks.

The command runs in-process (``fnnjax.cli.main``) and trains with ``fnnjax.fit``;
:func:`fit_callbacks` appends callbacks to the ones the command passes to ``fnnjax.fit`` while a
``with`` block lasts, in one thread only (the benchmark's other methods, in other threads or the
same one outside it, see the real ``fnnjax.fit``). The command itself is unchanged: every epoch it
trains, evaluates, reports progress and checkpoints exactly as a user's run does, and the
appended callbacks run last, after all of that.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ["fit_callbacks"]


_EXTRA: dict[threading.Thread, list[Callable]] = {}
_LOCK = threading.Lock()
_REAL_FIT: list[Callable] = []  # the real fnnjax.fit while the wrapper is installed


def _fit_with_extra_callbacks(*args, callbacks=(), **kwargs):
    extra = _EXTRA.get(threading.current_thread(), [])
    return _REAL_FIT[0](*args, callbacks=[*callbacks, *extra], **kwargs)


@contextlib.contextmanager
def fit_callbacks(*callbacks: Callable, thread: threading.Thread | None = None) -> Iterator[None]:
    """Within the block, ``fnnjax.fit`` called from ``thread`` (default: the calling thread) also
    calls ``callbacks`` after every epoch, after its own. Blocks for different threads may
    overlap and end in any order."""
    import fnnjax

    owner = thread or threading.current_thread()
    with _LOCK:
        if owner in _EXTRA:
            raise RuntimeError(f"fit_callbacks is already active for thread {owner.name}")
        if not _EXTRA:
            _REAL_FIT[:] = [fnnjax.fit]
            fnnjax.fit = _fit_with_extra_callbacks
        _EXTRA[owner] = list(callbacks)
    try:
        yield
    finally:
        with _LOCK:
            del _EXTRA[owner]
            if not _EXTRA:
                fnnjax.fit = _REAL_FIT.pop()
