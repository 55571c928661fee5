"""The errors fnnjax's command line reports as one line.

:class:`UsageError` is bad input on the command line (a wrong option, a missing file, data that do
not fit): ``fnnjax`` prints it as one line on stderr and exits with status 2. Subcommand modules
(``verify.cli``, ``benchmarks.cli``, ``fnnjax``'s own ``train``/``predict``) raise it; they import it
from here, so no subcommand imports the ``fnnjax.cli`` entry point that registers them.
"""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """Bad input on the command line: printed as one line, exit status 2.

    Example:
      >>> from fnnjax.errors import UsageError
      >>> str(UsageError("--epochs 0 must be a positive integer"))
      '--epochs 0 must be a positive integer'
    """
