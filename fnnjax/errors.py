"""The errors that mean "the input is wrong", as opposed to a bug.

fnnjax's command line sorts every exception into one of two kinds and says which:

- **the user's input or environment** (exit status 2, one line on stderr): :class:`UsageError`
  (a wrong option or argument), :class:`InputError` and its subclasses (a data set, checkpoint or
  params file that cannot be used), and ``OSError`` (a missing file, no permission, a full disk);
- **a bug in fnnjax** (exit status 3): any other exception, reported as an internal error with
  the advice to rerun with ``FNNJAX_DEBUG=1`` for the traceback.

Subcommand modules (``fnnjax.verify.cli``, ``fnnjax.benchmarks.cli``, ``fnnjax``'s own ``train``/``predict``)
raise :class:`UsageError`; they import it from here, so no subcommand imports the ``fnnjax.cli``
entry point that registers them.
"""

from __future__ import annotations

__all__ = ["DataError", "InputError", "UsageError"]


class UsageError(Exception):
    """Bad input on the command line: printed as one line, exit status 2.

    Example:
      >>> from fnnjax.errors import UsageError
      >>> str(UsageError("--epochs 0 must be a positive integer"))
      '--epochs 0 must be a positive integer'
    """


class InputError(ValueError):
    """A file or data the user supplied cannot be used (the base of :class:`DataError` and of
    :class:`fnnjax.CheckpointError`). A ``ValueError``, so ``except ValueError`` still catches it.

    Example:
      >>> from fnnjax.errors import DataError, InputError
      >>> issubclass(DataError, InputError) and issubclass(InputError, ValueError)
      True
    """


class DataError(InputError):
    """A data set that cannot be used: a checksum mismatch, a corrupt or inconsistent IDX file.

    Example:
      >>> import fnnjax
      >>> fnnjax.data.DataError is fnnjax.errors.DataError
      True
    """
