"""A new user's first runs: offline, ``fnnjax train`` says so in one line naming the option as the
interface spells it and leaves nothing behind; progress bars appear only on a terminal; nothing is
written inside the installation."""

from __future__ import annotations

import dataclasses
import io
import os
import socket

import pytest

from fnnjax import _datasets, data
from fnnjax._runguard import LOCK_FILE, OutputLock
from fnnjax.cli import main, show_progress

OFFLINE_HOST = "fashion-mnist.offline.invalid"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No data set anywhere, an empty cache that does not exist yet, and mirrors unreachable: the
    first has a name no resolver knows (as offline), the second a local port nothing listens on."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == OFFLINE_HOST:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name, urls in (("fashion-mnist", (f"http://{OFFLINE_HOST}/",)), ("mnist", (f"http://127.0.0.1:{port}/",))):
        monkeypatch.setitem(_datasets.DATASETS, name, dataclasses.replace(_datasets.DATASETS[name], urls=urls))
    monkeypatch.delenv("FNNJAX_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_offline_train_is_one_line_naming_the_option_and_leaves_nothing(offline, capsys):
    assert main(["train", "--preset", "fast", "--out", "runs/fast"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "fnnjax train: error: cannot download Fashion-MNIST (no network: NameResolutionError): pass "
        "--data-dir DIR holding its four IDX files, or set FNNJAX_DATA to a folder holding fashion-mnist/; "
        "see docs/how-to/data-offline.md\n"
    )
    assert sorted(p.name for p in offline.iterdir()) == []  # no cache folder, no runs/fast, no lock file


def test_offline_python_names_the_argument_and_removes_only_what_it_created(offline):
    (offline / "cache").mkdir()
    with pytest.raises(data.DownloadError) as caught:
        data.load_mnist()
    assert isinstance(caught.value, FileNotFoundError)
    assert str(caught.value) == (
        "cannot download MNIST (no network: NewConnectionError): pass data_dir=DIR holding its four IDX "
        "files, or set FNNJAX_DATA to a folder holding mnist/; see docs/how-to/data-offline.md"
    )
    assert [p.name for p in offline.iterdir()] == ["cache"] and not any((offline / "cache").iterdir())


def test_a_failed_start_discards_the_lock_and_the_folder_it_created(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path / "new" / "run"), "--data-dir", str(tmp_path)]) == 2
    assert "--resume but there is no checkpoint" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

    kept = tmp_path / "kept"
    kept.mkdir()
    lock = OutputLock(kept).acquire()
    lock.discard()  # a folder that existed stays, without the lock file
    assert kept.is_dir() and list(kept.iterdir()) == []
    (kept / "notes.txt").write_text("mine")
    lock = OutputLock(kept).acquire()
    lock.discard()  # a folder that holds anything else keeps its lock file
    assert sorted(p.name for p in kept.iterdir()) == [LOCK_FILE, "notes.txt"]
    with OutputLock(kept):  # and the lock is free
        pass


def test_a_lock_taken_on_a_discarded_file_is_taken_again_on_the_new_one(tmp_path):
    from fnnjax import _runguard

    first = OutputLock(tmp_path).acquire()
    assert first._fd is not None and _runguard._same_file(first._fd, first.path)
    first.path.unlink()  # as discard does
    assert not _runguard._same_file(first._fd, first.path)
    first.release()
    with OutputLock(tmp_path) as second:
        assert second._fd is not None and _runguard._same_file(second._fd, second.path)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_only_on_a_terminal(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert show_progress(_Terminal()) and not show_progress(io.StringIO())
    for value, shown in (("1", False), ("true", False), ("0", True), ("", True)):
        monkeypatch.setenv("TQDM_DISABLE", value)
        assert show_progress(_Terminal()) is shown


def test_a_redirected_train_writes_lines_not_a_bar(tmp_path, capsys, fashion_lookalike):
    (tmp_path / "data").mkdir()
    folder = fashion_lookalike(tmp_path / "data", 64, 32)
    argv = ["train", "--data-dir", str(folder), "--sizes", "784,8,10", "--epochs", "2", "--batch-size", "32"]
    assert main([*argv, "--checkpoint-every", "0", "--out", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in err and "\r" not in out
    assert (
        out.rstrip("\n")
        .splitlines()[-1]
        .endswith(
            f"wrote {tmp_path / 'run' / 'history.json'}, "
            f"{tmp_path / 'run' / 'params.npz'}, {tmp_path / 'run' / 'curves.png'}"
        )
    )


# ----------------------------------------------------------------------------------------------
# fnnjax verify names what it wrote on its last line, as fnnjax train and fnnjax bench do


def _last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def test_verify_names_its_json_and_markdown_reports_last(tmp_path, capsys):
    (tmp_path / "md").mkdir()
    report, handout = tmp_path / "r.json", tmp_path / "md" / "r.md"
    assert main(["verify", "--only", "F3", "--quick", "--no-progress", "--json", str(report)]) == 0
    assert _last_line(capsys.readouterr().out) == f"wrote {tmp_path.resolve()}{os.sep}: r.json"
    argv = ["verify", "--only", "F3", "--quick", "--no-progress", "--json", str(report), "--markdown", str(handout)]
    assert main(argv) == 0
    assert _last_line(capsys.readouterr().out) == f"wrote {report.resolve()}, {handout.resolve()}"
    assert main(["verify", "--only", "F3", "--quick", "--no-progress"]) == 0
    assert not _last_line(capsys.readouterr().out).startswith("wrote")  # nothing written, nothing named


def test_verify_backprop_names_its_results_json_last_even_when_nothing_was_checked(tmp_path, monkeypatch, capsys):
    import fnnjax.verify.grader._user_backprop

    results = tmp_path / "results.json"  # a submission that cannot be checked still gets its results.json
    assert main(["verify", "--backprop", str(tmp_path / "absent.py"), "--gradescope", str(results)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-2].startswith("FAIL: ")
    assert _last_line(out) == f"wrote {tmp_path.resolve()}{os.sep}: results.json"

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(fnnjax.verify.grader._user_backprop, "check_user_backprop", broken)
    assert main(["verify", "--backprop", str(tmp_path / "absent.py"), "--gradescope", str(results)]) == 1
    out, err = capsys.readouterr()
    assert "RuntimeError: out of memory" in err  # the traceback first, then where the results are
    assert _last_line(out) == f"wrote {tmp_path.resolve()}{os.sep}: results.json" and results.is_file()
