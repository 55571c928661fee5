"""The command line's one rule for errors: the user's input is exit 2, a bug is exit 3, each in
one line that says which (``FNNJAX_DEBUG=1`` shows the traceback instead)."""

import errno

import pytest

import fnnjax.verify.cli
from fnnjax import cli
from fnnjax.errors import DataError, InputError, UsageError


def failing_with(error):
    def run(args):
        raise error

    return run


@pytest.mark.parametrize(
    "error, status, line",
    [
        (
            UsageError("--epochs 0 must be a positive integer"),
            2,
            "fnnjax verify: error: --epochs 0 must be a positive integer",
        ),
        (
            DataError("checksum mismatch for train-images-idx3-ubyte.gz"),
            2,
            "fnnjax verify: error: checksum mismatch for train-images-idx3-ubyte.gz",
        ),
        (
            InputError("checkpoint 3 is damaged: W1 does not match its checksum"),
            2,
            "fnnjax verify: error: checkpoint 3 is damaged",
        ),
        (FileNotFoundError("no such file: runs/x/params.npz"), 2, "fnnjax verify: error: no such file"),
        (
            OSError(errno.ENOSPC, "No space left on device"),
            2,
            "fnnjax verify: error: [Errno 28] No space left on device",
        ),
        (
            ValueError("operands could not be broadcast\nsecond line"),
            3,
            "fnnjax verify: internal error (a bug in fnnjax, please report it): ValueError: operands could "
            "not be broadcast; rerun with FNNJAX_DEBUG=1 for the traceback",
        ),
        (
            TypeError("unhashable type: 'list'"),
            3,
            "internal error (a bug in fnnjax, please report it): TypeError: unhashable type",
        ),
    ],
)
def test_errors_are_sorted_into_input_and_bugs(error, status, line, monkeypatch, capsys):
    monkeypatch.delenv("FNNJAX_DEBUG", raising=False)
    monkeypatch.setattr(fnnjax.verify.cli, "run", failing_with(error))
    assert cli.main(["verify"]) == status
    err = capsys.readouterr().err
    assert line in err
    assert err.count("\n") == 1  # one line


@pytest.mark.parametrize("error", [UsageError("bad option"), ValueError("a bug")])
def test_debug_shows_the_traceback(error, monkeypatch):
    monkeypatch.setenv("FNNJAX_DEBUG", "1")
    monkeypatch.setattr(fnnjax.verify.cli, "run", failing_with(error))
    with pytest.raises(type(error)):
        cli.main(["verify"])


def test_interrupt_is_130(monkeypatch, capsys):
    monkeypatch.setattr(fnnjax.verify.cli, "run", failing_with(KeyboardInterrupt()))
    assert cli.main(["verify"]) == 130
    assert "fnnjax verify: interrupted" in capsys.readouterr().err
