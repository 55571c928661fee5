"""When a command shows a progress bar: one rule for every command.

A bar is shown only on a terminal: when the stream it is drawn on (stderr) is a TTY and
``TQDM_DISABLE`` is not set to a true value. Redirected into a file or a pipe (a log, CI), no
bar is drawn, so the log holds no carriage returns; the command's own lines are unchanged.
"""

from __future__ import annotations

import os
import sys
from typing import IO

__all__ = ["show_progress"]

_FALSE = {"", "0", "false", "no", "off"}


def show_progress(stream: IO | None = None) -> bool:
    """Whether to draw a progress bar on ``stream`` (default ``sys.stderr``): only a terminal, and
    not with ``TQDM_DISABLE`` set (to anything but ``0``/``false``/``no``/``off``).

    Example:
      >>> import io
      >>> show_progress(io.StringIO())
      False
    """
    if os.environ.get("TQDM_DISABLE", "").strip().lower() not in _FALSE:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False
