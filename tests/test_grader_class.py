"""``fnnjax verify --class``: a whole class at once.

Discovery of the students (folders, zips, notebooks, files; Canvas, Moodle and Blackboard flat
exports grouped by student), the outputs (grades.csv with formula cells neutralised, report.md,
report.html escaped, mistakes.png), reruns that skip unchanged submissions, the reference cache, the
command's errors, and one real class of Nielsen submissions (right, wrong, hostile, hanging,
crashing) whose every score equals that submission's single ``--backprop --gradescope`` grading.
"""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest

from fnnjax.cli import main
from fnnjax.verify.grader import _class, _grading
from fnnjax.verify.grader._class import ClassError, Graded, discover, grade_class, lms_name
from fnnjax.verify.grader._class_report import mistakes, render_markdown, safe_cell, write_report

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
NIELSEN = (SUBMISSIONS / "functions" / "nielsen_right" / "network.py").read_text()
ANCHOR = "    def backprop(self, x, y):\n"


def nielsen(code: str = "") -> str:
    """Nielsen's network.py with ``code`` run first thing in backprop."""
    assert ANCHOR in NIELSEN
    return NIELSEN.replace(ANCHOR, ANCHOR + code, 1)


# ----------------------------------------------------------------------------------------------
# Finding the students


@pytest.mark.parametrize(
    "filename, expected",
    [
        ("smith_john_12345_67890_fc_net.py", ("smith_john", "fc_net.py", "")),
        ("smith_john_LATE_12345_67890_fc_net.py", ("smith_john", "fc_net.py", "")),
        ("smithjohn_12345_67890_fc_net-2.py", ("smithjohn", "fc_net.py", "")),
        ("John Smith_1234_assignsubmission_file_network.py", ("John Smith", "network.py", "")),
        (
            "Homework 2_jsmith_attempt_2024-03-01-10-00-00_dnn.ipynb",
            ("jsmith", "dnn.ipynb", "2024-03-01-10-00-00"),
        ),
        ("Homework 2_jsmith_attempt_2024-03-01-10-00-00.txt", ("jsmith", "", "2024-03-01-10-00-00")),
        ("fc_net.py", None),
        ("alice.ipynb", None),
        ("my_work_v2.py", None),
    ],
)
def test_learning_management_system_names_are_read(filename, expected):
    assert lms_name(filename) == expected


def test_each_entry_is_one_students_and_exports_are_grouped(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    (root / "alice").mkdir()
    (root / "alice" / "network.py").write_text(NIELSEN)
    with zipfile.ZipFile(root / "bob.zip", "w") as zf:
        zf.writestr("bob/network.py", NIELSEN)
    (root / "carol.ipynb").write_text("{}")
    (root / "dave.py").write_text(NIELSEN)
    (root / "notes.txt").write_text("not a submission")
    (root / ".DS_Store").write_text("")
    (root / "__MACOSX").mkdir()
    # Canvas: two files of one student, a late one of another
    (root / "smith_john_111_222_fc_net.py").write_text("x = 1\n")
    (root / "smith_john_111_223_layers.py").write_text("y = 2\n")
    (root / "doe_jane_LATE_333_444_network.py").write_text(NIELSEN)
    # Moodle
    (root / "Mary Major_555_assignsubmission_file_network.py").write_text(NIELSEN)
    # Blackboard: two attempts; the latest is graded
    (root / "HW2_rroe_attempt_2024-01-01-10-00-00_network.py").write_text("old = 1\n")
    (root / "HW2_rroe_attempt_2024-02-01-10-00-00_network.py").write_text(NIELSEN)
    (root / "HW2_rroe_attempt_2024-02-01-10-00-00.txt").write_text("Name: R. Roe")
    out = root / "report"
    out.mkdir()  # the report folder inside the class folder is no submission
    students, ignored = discover(root, exclude=out)
    by_name = {s.name: s for s in students}
    assert sorted(by_name) == sorted(
        ["alice", "bob", "carol", "dave", "smith_john", "doe_jane", "Mary Major", "rroe"]
    ), by_name
    assert [by_name[k].kind for k in ("alice", "bob", "carol", "dave")] == ["folder", "zip", "notebook", "file"]
    assert by_name["smith_john"].kind == "export"
    assert by_name["smith_john"].names == ("fc_net.py", "layers.py")
    assert by_name["rroe"].names == ("network.py",)
    assert by_name["rroe"].paths[0].name.startswith("HW2_rroe_attempt_2024-02-01")
    assert ignored == ["notes.txt"]


def test_an_export_is_graded_as_a_folder_of_its_own_files(tmp_path):
    student = _class.Student(
        "smith_john",
        "export",
        (tmp_path / "smith_john_1_2_fc_net.py", tmp_path / "smith_john_1_3_layers.py"),
        ("fc_net.py", "layers.py"),
    )
    for p in student.paths:
        p.write_text("pass\n")
    with _class._materialised(student) as spec:
        assert sorted(p.name for p in Path(spec).iterdir()) == ["fc_net.py", "layers.py"]
    assert not Path(spec).exists()


def test_a_missing_empty_or_file_class_folder_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(ClassError, match="no such folder"):
        discover(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(ClassError, match=r"found no submission in .*readme\.txt.*Canvas.*Moodle.*Blackboard"):
        discover(tmp_path / "empty")
    (tmp_path / "a.py").write_text("")
    assert main(["verify", "--class", str(tmp_path / "empty"), "--report", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "found no submission" in err and "a folder, a .zip, an .ipynb or a .py" in err
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "klass").mkdir()
    (tmp_path / "klass" / "alice.py").write_text(NIELSEN)
    assert main(["verify", "--class", str(tmp_path / "klass"), "--report", str(tmp_path / "a.py")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fnnjax: ") or "--report" in err
    assert "--report" in err and "is a file" in err
    assert main(["verify", "--class", str(tmp_path / "missing"), "--report", str(tmp_path / "out")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["verify", "--class", str(tmp_path / "klass")]) == 2
    assert "needs --report" in capsys.readouterr().err
    assert main(["verify", "--report", str(tmp_path / "out")]) == 2
    assert "add --class" in capsys.readouterr().err
    assert main(["verify", "--class", str(tmp_path / "klass"), "--report", str(tmp_path / "o"), "-j", "0"]) == 2
    assert "-j 0" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# The outputs, from synthetic grades


def graded(student, score, parts) -> Graded:
    return Graded(student, student, "k", score, 4.0, parts, 1.0)


def part(status, codes=(), diagnosis="", score=0.0, name="network.py"):
    return {
        "part": name,
        "score": score,
        "max_score": 4.0,
        "status": status,
        "codes": [list(c) for c in codes],
        "diagnosis": diagnosis,
        "example": [diagnosis],
    }


HOSTILE = '<script>alert("x")</script> =HYPERLINK("http://evil.example","click") \x1b[31mred\x1b[0m'


@pytest.fixture
def synthetic(tmp_path):
    rows = [
        graded("alice", 4.0, [part("pass", score=4.0)]),
        graded("bob", 2.0, [part("fail", [("missing-l2", 1, ""), ("missing-l2", 2, "")], "dW lacks reg·W", 2.0)]),
        graded("carol", 0.0, [part("fail", [("missing-l2", 2, "")], "dW2 lacks reg·W")]),
        graded('=cmd|" /C calc"!A0', 0.0, [part("fail", [("raised", None, "")], HOSTILE)]),
        graded("<b>eve</b>", 0.0, [part("timeout", [("timeout", None, "")], "timed out")]),
    ]
    result = _class.ClassResult(str(tmp_path / "klass"), rows, [], 0, 1.0, {"seed": 0, "timeout": 10.0})
    return result


def test_mistakes_are_counted_per_submission_by_kind_and_by_layer(synthetic):
    by_kind = {m.label: m.submissions for m in mistakes(synthetic.graded, by_layer=False)}
    assert by_kind == {"missing-l2": 2, "raised": 1, "timeout": 1}
    by_layer = {m.label: m.submissions for m in mistakes(synthetic.graded, by_layer=True)}
    assert by_layer["missing-l2 (layer 2)"] == 2 and by_layer["missing-l2 (layer 1)"] == 1
    text = render_markdown(synthetic)
    assert "| `missing-l2` | 2 of 5 |" in text and "| `missing-l2 (layer 2)` | 2 of 5 |" in text
    assert "dW lacks reg·W" in text  # one example each


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("fine", "fine"),
        (3.5, 3.5),
        ("a\x1b[31mred\x1b[0m\x07", "ared"),
    ],
)
def test_a_cell_never_runs_as_a_formula(value, expected):
    assert safe_cell(value) == expected


def test_grades_csv_html_and_markdown_escape_what_submissions_wrote(synthetic, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    paths = write_report(synthetic, out)
    assert [p.name for p in paths] == ["grades.csv", "report.md", "report.html", "mistakes.png"]
    assert paths[3].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(paths[0].open(encoding="utf-8")))
    assert [r["submission"] for r in rows] == ["alice", "bob", "carol", '\'=cmd|" /C calc"!A0', "<b>eve</b>"]
    assert list(rows[0]) == ["submission", "part", "score", "max_score", "status", "codes", "diagnosis"]
    for row in rows:
        for cell in row.values():
            assert cell[:1] not in ("=", "+", "-", "@"), row
            assert "\x1b" not in cell
    assert rows[1]["codes"] == "missing-l2 (layer 1); missing-l2 (layer 2)"
    page = paths[2].read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>eve</b>" not in page and "&lt;b&gt;eve&lt;/b&gt;" in page
    assert '<img src="mistakes.png"' in page
    md = paths[1].read_text()
    assert "<script>" not in md and "<b>" not in md


# ----------------------------------------------------------------------------------------------
# Reruns, and the reference cache


def test_a_rerun_skips_unchanged_submissions_and_force_regrades(tmp_path, monkeypatch):
    root = tmp_path / "klass"
    root.mkdir()
    for name in ("alice", "bob", "carol"):
        (root / f"{name}.py").write_text(f"# {name}\n")
    calls = []

    def fake(spec, options, *, points=None, visibility="visible", shown=None):
        calls.append(Path(spec).name)
        results = {"score": 1.0, "tests": [{"score": 1.0, "max_score": 1.0}], "extra_data": {}}
        return results, [part("pass", score=1.0, name=shown or "")], None

    monkeypatch.setattr(_class, "grade_one", fake)
    out = tmp_path / "out"
    opts = {"seed": 0, "timeout": 10.0, "sandbox": None}
    first = grade_class(root, out, options=opts, jobs=2)
    assert sorted(calls) == ["alice.py", "bob.py", "carol.py"] and first.skipped == 0
    calls.clear()
    again = grade_class(root, out, options=opts, jobs=2)
    assert calls == [] and again.skipped == 3
    assert [g.score for g in again.graded] == [g.score for g in first.graded]
    (root / "bob.py").write_text("# bob, changed\n")
    grade_class(root, out, options=opts, jobs=2)
    assert calls == ["bob.py"]
    calls.clear()
    grade_class(root, out, options=opts | {"seed": 1}, jobs=2)  # another seed: everything again
    assert sorted(calls) == ["alice.py", "bob.py", "carol.py"]
    calls.clear()
    grade_class(root, out, options=opts | {"seed": 1}, jobs=1, force=True)
    assert sorted(calls) == ["alice.py", "bob.py", "carol.py"]
    manifest = json.loads((out / _class.MANIFEST).read_text())
    assert sorted(manifest["submissions"]) == ["alice", "bob", "carol"]


def test_references_are_computed_once_per_case_and_seed(monkeypatch):
    from fnnjax.verify.grader._conventions import CONVENTIONS

    computed = []
    monkeypatch.setattr(_grading, "_compute", lambda conv, p: computed.append(p.case) or object())
    monkeypatch.setattr(_grading, "_cache", type(_grading._cache)())
    conv = CONVENTIONS["nielsen"]
    entry = _class_entry()
    conv = conv.configured(entry, conv.options)
    cases = conv.cases(entry)
    first = _grading.references(conv, _grading.prepare(conv, cases, 5))
    assert len(computed) == len(cases)
    again = _grading.references(conv, _grading.prepare(conv, cases, 5))  # another submission, same seed
    assert len(computed) == len(cases) and all(a is b for a, b in zip(first, again))
    _grading.references(conv, _grading.prepare(conv, cases, 6))  # another seed: other inputs, computed
    assert len(computed) == 2 * len(cases)
    other = CONVENTIONS["deeplearning-ai"]
    dl_cases = other.cases(_class_entry("deeplearning-ai"))
    _grading.references(other, _grading.prepare(other, dl_cases, 5))  # another convention: computed
    assert len(computed) == 2 * len(cases) + len(dl_cases)


def _class_entry(convention="nielsen"):
    from fnnjax.verify.grader._convention import Entry

    if convention == "nielsen":
        return Entry("nielsen", "class", "Network", (), "test")
    return Entry("deeplearning-ai", "module", "L_model_backward", (), "test")


# ----------------------------------------------------------------------------------------------
# A real class: every score equals the single grading's


@pytest.fixture(scope="module")
def real_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    root.chmod(0o755)
    root.parent.chmod(0o755)
    (root / "alice").mkdir()
    (root / "alice" / "network.py").write_text(NIELSEN)
    wrong = SUBMISSIONS / "functions" / "nielsen_wrong_cost_derivative" / "network.py"
    (root / "bob.py").write_text(wrong.read_text())
    (root / "carol_hangs.py").write_text(nielsen("        while True:\n            pass\n"))
    (root / "dave_kills.py").write_text(
        nielsen(
            "        import os, signal\n"
            "        for pid in (os.getppid(), 1):\n"
            "            try:\n"
            "                os.kill(pid, signal.SIGKILL)\n"
            "            except OSError:\n"
            "                pass\n"
            "        os._exit(3)\n"
        )
    )
    # a name a spreadsheet would run, and markup and terminal escapes in what it raises
    (root / "=eve.py").write_text((SUBMISSIONS / "attacks" / "injection.py").read_text())
    out = tmp_path_factory.mktemp("out")
    args = ["verify", "--class", str(root), "--report", str(out), "--seed", "3", "--timeout", "1", "-j", "2"]
    status = main(args)
    return root, out, status


def test_a_class_writes_its_grades_report_and_chart(real_class, capsys):
    root, out, status = real_class
    assert status == 1
    for name in ("grades.csv", "report.md", "report.html", "mistakes.png"):
        assert (out / name).stat().st_size > 0
    rows = {r["submission"]: r for r in csv.DictReader((out / "grades.csv").open(encoding="utf-8"))}
    assert set(rows) == {"alice", "bob", "carol_hangs", "dave_kills", "'=eve"}
    assert rows["alice"]["status"] == "pass" and rows["alice"]["score"] == rows["alice"]["max_score"]
    assert rows["bob"]["status"] == "fail" and "sign-flip" in rows["bob"]["codes"], rows["bob"]
    assert rows["carol_hangs"]["status"] == "timeout" and rows["carol_hangs"]["codes"] == "timeout"
    assert rows["dave_kills"]["status"] in ("crash", "exit"), rows["dave_kills"]
    assert float(rows["'=eve"]["score"]) == 0.0 and "raised" in rows["'=eve"]["codes"]
    page = (out / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    md = (out / "report.md").read_text()
    assert "sign-flip" in md and "timeout" in md


def test_each_class_score_equals_the_single_grading(real_class, tmp_path):
    root, out, _ = real_class
    rows = list(csv.DictReader((out / "grades.csv").open(encoding="utf-8")))
    scores = {}
    for r in rows:
        scores[r["submission"].lstrip("'")] = scores.get(r["submission"].lstrip("'"), 0.0) + float(r["score"])
    for entry in sorted(root.iterdir()):
        results = tmp_path / f"{entry.stem}.json"
        main(["verify", "--backprop", str(entry), "--gradescope", str(results), "--seed", "3", "--timeout", "1"])
        single = json.loads(results.read_text())["score"]
        assert scores[entry.stem] == pytest.approx(single), entry.name


def test_a_rerun_of_the_real_class_grades_nothing_again(real_class, capsys):
    root, out, _ = real_class
    args = ["verify", "--class", str(root), "--report", str(out), "--seed", "3", "--timeout", "1", "-j", "2"]
    assert main(args) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert "graded 0 in" in lines[-2] and "5 unchanged since the last run" in lines[-2]
    assert lines[-1] == f"wrote {out.resolve()}/: grades.csv, report.md, report.html, mistakes.png"


def test_compiled_programs_are_saved_in_the_compilation_cache_and_read_back(tmp_path):
    import functools
    import os

    import jax
    import numpy as np

    from fnnjax.verify.grader import _programs

    @functools.partial(jax.jit, static_argnums=(0,))
    def program(power, x):
        return {"y": x**power, "n": x.shape[0]}

    x = np.arange(4.0)
    assert _programs.folder() is None or "fnnjax-programs" in str(_programs.folder())
    with _class.compilation_cache(tmp_path / "jax"):
        where = _programs.folder()
        assert where is not None and where == tmp_path / "jax" / _programs.SUBFOLDER
        assert os.stat(where).st_mode & 0o077 == 0  # the grader's alone
        first = _programs.run(program, (3,), (x,), "test")
        saved = sorted(where.glob("*.pkl"))
        assert len(saved) == 1 and np.array_equal(first["y"], x**3)
        _programs._loaded.clear()
        again = _programs.run(program, (3,), (x,), "test")  # read back, not traced
        assert np.array_equal(again["y"], first["y"])
        _programs._loaded.clear()
        saved[0].write_bytes(b"not a program")  # a broken file: compiled again, replaced
        assert np.array_equal(_programs.run(program, (3,), (x,), "test")["y"], first["y"])
        assert saved[0].read_bytes() != b"not a program"
        _programs.run(program, (2,), (x,), "test")  # another static argument: another program
        assert len(list(where.glob("*.pkl"))) == 2
    after = _programs.folder()
    assert after is None or tmp_path not in after.parents


def test_the_benchmarks_class_folder_holds_each_kind_of_submission(tmp_path):
    from fnnjax.benchmarks.grading import HOSTILE, KINDS, make_class

    counts = dict.fromkeys([*KINDS, *HOSTILE], 1)
    written = make_class(tmp_path, counts, zipped=1)
    assert [kind for _, kind in written] == list(counts)
    assert (tmp_path / f"{written[0][0]}.zip").is_file()
    import zipfile

    with zipfile.ZipFile(tmp_path / f"{written[0][0]}.zip") as zf:
        sources = {written[0][1]: zf.read(f"{written[0][0]}/fc_net.py").decode()}
    for name, kind in written[1:]:
        text = (tmp_path / name / "fc_net.py").read_text()
        compile(text, name, "exec")  # every kind is Python that imports; its mistake is at run time
        assert (tmp_path / name / "layers.py").is_file()
        sources[kind] = text
    assert len(set(sources.values())) == len(sources)  # each kind differs from the others (and from right)
