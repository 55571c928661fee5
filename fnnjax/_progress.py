"""What a command shows besides its results: one rule for every command.

A progress bar is shown only on a terminal: when the stream it is drawn on (stderr) is a TTY and
``TQDM_DISABLE`` is not set to a true value. Redirected into a file or a pipe (a log, CI), no
bar is drawn, so the log holds no carriage returns; the command's own lines are unchanged. A
command that writes files names them on its last line (:func:`wrote_line`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

__all__ = ["show_progress", "wrote_line"]

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


def wrote_line(*paths: Path | str | None) -> str:
    """The last line of a command that writes files: ``wrote DIR/: NAME.json, NAME.md, ...`` (the
    folder absolute, so the user sees where the files are, wherever they ran the command from).

    Args:
      *paths: the files written, in the order to name them; ``None`` is skipped.

    Returns:
      ``wrote DIR/: NAME, NAME`` when the files share a folder, else ``wrote PATH, PATH`` (each absolute).

    Example:
      >>> import os
      >>> line = wrote_line("/tmp/r/a.json", "/tmp/r/a.md", None)
      >>> line == f"wrote {os.path.realpath('/tmp/r')}{os.sep}: a.json, a.md"
      True
    """
    files = [Path(p) for p in paths if p is not None]
    folders = {p.resolve().parent for p in files}
    if len(folders) == 1:
        return f"wrote {folders.pop()}{os.sep}: " + ", ".join(p.name for p in files)
    return "wrote " + ", ".join(str(p.resolve()) for p in files)
