"""The documentation cannot rot: README is a front page, every Python code block of README.md and
docs/ runs and prints what the page quotes, every quoted command output comes from
``docs/generate.py``, every formula F1-F28 has its heading and its links both ways, and the verify
reports name each check's formula page."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from fnnjax import verify
from fnnjax.cli import main
from fnnjax.verify import Check, Outcome, all_checks, formula_page, select_checks

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _load_generate():
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_generate"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


generate = _load_generate()
RUNNABLE = [page for page in generate.PAGES if generate.python_blocks(page)]

# ------------------------------------------------------------------------------------------------
# README


def test_readme_is_a_front_page_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert 'python3 -m venv .venv && .venv/bin/pip install ".[dev,docs]" && .venv/bin/fnnjax verify' in text
    assert ".venv/bin/python -m pytest -q -n 2\n" in text
    assert text.count("```bash") == 2  # exactly two commands for a fresh machine
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\npython -m pytest -q -n 2\n" in ci  # README's test command is the one CI runs
    assert 'pip install -q ".[dev,docs]"' in ci  # in the environment README's first command builds


def test_relative_links_of_readme_and_docs_resolve():
    """Links in the Markdown sources (as a code host shows them) point to files that exist, and a
    #fN anchor to a formula heading that exists."""
    broken = []
    for page in ["README.md", "CONTRIBUTING.md", *(p for p in generate.PAGES if p != "README.md")]:
        text = re.sub(r"```.*?```", "", (ROOT / page).read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = ((ROOT / page).parent / path).resolve() if path else ROOT / page
            if "benchmarks/results/" in resolved.as_posix():  # plots: the site takes them from the repository
                resolved = ROOT / "benchmarks" / "results" / resolved.as_posix().split("benchmarks/results/", 1)[1]
            if not resolved.exists():
                broken.append(f"{page}: {target}")
            elif anchor and re.fullmatch(r"f\d+", anchor) and "{#" + anchor + "}" not in resolved.read_text():
                broken.append(f"{page}: {target} (no heading {{#{anchor}}})")
    assert not broken, "\n".join(broken)


# ------------------------------------------------------------------------------------------------
# Code blocks and their outputs


@pytest.mark.parametrize("page", RUNNABLE)
def test_code_blocks_run_and_print_what_the_page_shows(page):
    with generate.docs_environment():
        results = generate.run_page(page)
    for block, out in results:
        if block.output:
            expected = (DOCS / block.output).read_text()
            assert out == expected, (
                f"{page} line {block.line} printed something else than "
                f"docs/{block.output}: run python docs/generate.py --pages"
            )


def test_every_python_block_is_found_and_few_are_not_run():
    all_python = [b for page in generate.PAGES for b in generate.blocks(page) if b.lang == "python"]
    not_run = [b for b in all_python if b.code.startswith(generate.NOT_RUN)]
    assert len(all_python) >= 25 and len(not_run) <= 1, [f"{b.page}:{b.line}" for b in not_run]


def test_the_block_runner_reports_the_page_and_line_of_a_failing_block(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\nx = 1\n```\n\n```python\nraise ValueError('boom')\n```\n")
    monkeypatch.setattr(generate, "ROOT", tmp_path)
    with pytest.raises(RuntimeError, match=r"page\.md line 7: the code block raised ValueError: boom"):
        generate.run_page("page.md")


def test_snippets_are_the_scripts_and_unchanged():
    """Every file in docs/snippets/ was written by docs/generate.py (its checksum is in the manifest),
    each quoted command is the one the script runs now, and every included snippet exists."""
    manifest = json.loads((DOCS / "snippets" / "MANIFEST.json").read_text())
    files = {
        p.relative_to(DOCS / "snippets").as_posix()
        for p in (DOCS / "snippets").rglob("*")
        if p.is_file() and p.name != "MANIFEST.json"
    }
    assert files == set(manifest), f"not written by docs/generate.py: {sorted(files ^ set(manifest))}"
    for name, entry in manifest.items():
        text = (DOCS / "snippets" / name).read_text()
        assert hashlib.sha256(text.encode()).hexdigest() == entry["sha256"], f"docs/snippets/{name} was edited"
    for cmd in generate.COMMANDS:
        assert manifest[cmd.name]["command"] == cmd.shown, f"re-run: python docs/generate.py {cmd.name}"
        assert (DOCS / "snippets" / cmd.name).read_text().startswith(f"$ {cmd.shown}\n")
    included = set()
    for page in generate.PAGES:
        included |= set(re.findall(r'--8<-- "snippets/([^"]+)"', (ROOT / page).read_text()))
    assert included <= set(manifest), sorted(included - set(manifest))


@pytest.mark.parametrize("cmd", [c for c in generate.COMMANDS if c.exact], ids=lambda c: c.name)
def test_quick_command_outputs_are_reproduced(cmd):
    assert generate.command_output(cmd) == (DOCS / "snippets" / cmd.name).read_text(), (
        f"re-run: python docs/generate.py {cmd.name}"
    )


def test_sessions_are_the_ones_the_script_runs_now():
    """Each recorded session shows, in order, the commands and comments its entry in docs/generate.py
    runs now; the Gradescope excerpt comes from the command the script runs now."""
    manifest = json.loads((DOCS / "snippets" / "MANIFEST.json").read_text())
    for session in generate.SESSIONS:
        assert manifest[session.name]["command"] == session.shown, f"re-run: python docs/generate.py {session.name}"
        text = (DOCS / "snippets" / session.name).read_text()
        assert [line for line in text.splitlines() if line.startswith(("$ ", "# "))] == session.shown.splitlines()
    assert manifest[generate.GRADESCOPE_EXCERPT]["command"] == generate.GRADESCOPE_SHOWN


def _python(code: str, status: bool = False):
    return generate.Command("", (sys.executable, "-c", code), status=status)


def test_a_session_shows_commands_comments_outputs_and_exit_statuses():
    cwd = "import os, sys; print(os.getcwd() + '/note.txt', open('note.txt').read()); sys.exit(2)"
    ready = "import pathlib, time; print('started', flush=True); pathlib.Path('ready').touch(); time.sleep(60)"
    session = generate.Session(
        "demo.txt",
        (
            _python("print(open('note.txt').read())"),
            generate.Edit("note.txt rewritten", lambda folder: (folder / "note.txt").write_text("rewritten")),
            _python(cwd, status=True),
            generate.Start(_python(ready)),
            generate.Once("ready"),
            generate.Kill(),
            generate.Wait(),
        ),
        files=(("note.txt", "as written"),),
    )
    assert session.shown.splitlines() == [
        "$ python -c print(open('note.txt').read())",
        "# note.txt rewritten",
        f"$ python -c {cwd}",
        "$ echo $?",
        f"$ python -c {ready} &",
        "# once ready exists:",
        "$ kill -TERM $!",
        "$ wait $!; echo $?",
    ]
    expected = [
        "$ python -c print(open('note.txt').read())",
        "as written",
        "# note.txt rewritten",
        f"$ python -c {cwd}",
        "note.txt rewritten",  # the session's folder is the current one, shown as such
        "$ echo $?",
        "2",
        f"$ python -c {ready} &",
        "# once ready exists:",
        "$ kill -TERM $!",
        "$ wait $!; echo $?",
        "started",
        "143",  # ended by SIGTERM: 128 + 15, as the shell reports it
    ]
    assert generate.session_output(session) == "\n".join(expected) + "\n"


def test_a_session_that_goes_otherwise_stops_the_script():
    with pytest.raises(RuntimeError, match=r"^python -c import sys; sys\.exit\(1\) failed with status 1"):
        generate.session_output(generate.Session("failed.txt", (_python("import sys; sys.exit(1)"),)))
    with pytest.raises(RuntimeError, match=r"^quiet\.txt: the session went otherwise \(no match for \['loud'\]\)"):
        generate.session_output(generate.Session("quiet.txt", (_python("print('quiet')"),), expect=("loud",)))
    with pytest.raises(RuntimeError, match=r"^the background command ended before ready appeared"):
        generate.session_output(
            generate.Session("early.txt", (generate.Start(_python("pass")), generate.Once("ready")))
        )


def test_formula_check_lists_come_from_the_recorded_run_of_the_current_checks():
    report_text = (DOCS / "snippets" / generate.VERIFY_REPORT).read_text()
    report = json.loads(report_text)
    recorded = [(c["id"], c["claim"], c["method"]) for c in report["checks"]]
    assert recorded == [(c.id, c.claim, c.method) for c in all_checks()], (
        "the checks changed since the recorded run: python docs/generate.py verify"
    )
    assert report["failed"] == 0 and not report["quick"]
    for name, text in generate.report_files(report_text).items():
        assert (DOCS / "snippets" / name).read_text() == text, name


# ------------------------------------------------------------------------------------------------
# Formulas <-> functions <-> checks


@pytest.mark.parametrize("n", range(1, 29))
def test_each_formula_has_its_heading_api_links_and_checks(n):
    page, anchor = str(formula_page(n)).split("#")
    text = (ROOT / page).read_text()
    section = re.search(rf"^## F{n} .*\{{#{anchor}\}}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"no heading '## F{n} ... {{#{anchor}}}' in {page}"
    body = section.group(1)
    assert f'--8<-- "snippets/checks/F{n}.md"' in body, f"F{n} does not list its checks"
    assert re.search(r"\]\[(fnnjax|verify)\.[\w.]+\]", body), f"F{n} links to no API entry"
    assert any(c.number == n for c in all_checks()), f"no verify check for F{n}"


def test_formula_pages_split_as_documented():
    assert formula_page(1) == "docs/formulas/forward.md#f1"
    assert formula_page("F10-softmax-ce") == "docs/formulas/backprop.md#f10"
    assert formula_page("F17") == "docs/formulas/activations.md#f17"
    assert formula_page(19) == "docs/formulas/differentiation.md#f19"
    assert formula_page(27) == "docs/formulas/generalisation.md#f27"
    assert formula_page(28) == "docs/formulas/pretraining.md#f28"
    assert formula_page(29) is None and formula_page(99) is None
    with pytest.raises(ValueError, match=r"'G7' is not a formula or check ID; use e\.g\. 'F10'"):
        formula_page("G7")
    assert all_checks()[0].formula_page == "docs/formulas/forward.md#f1"


def test_fnnjax_docstring_says_where_f_numbers_are_defined():
    import fnnjax

    doc = fnnjax.__doc__ or ""
    assert "docs/formulas/" in doc and "F1" in doc


def test_verify_list_prints_each_checks_formula_page(capsys):
    assert main(["verify", "--list", "--only", "F10,F28"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:2] == ["F10-softmax-ce", "docs/formulas/backprop.md#f10"]
    assert lines[-1].split()[:2] == ["F28-layerwise-autoencoders", "docs/formulas/pretraining.md#f28"]


@pytest.fixture(scope="module")
def small_result():
    return verify.run_suite(select_checks(all_checks(), "F3"), quick=True, progress=False)


def test_reports_name_the_formula_page(small_result):
    table = verify.render_table(small_result, width=120).splitlines()
    row = next(i for i, line in enumerate(table) if line.startswith("F3-linear-collapse"))
    assert table[row + 1].startswith("  forward.md#f3 ")
    assert "docs/formulas/<page>#f<number>" in table[1]
    data = json.loads(verify.to_json(small_result))
    assert list(data["checks"][0])[:2] == ["id", "formula_page"]
    assert data["checks"][0]["formula_page"] == "docs/formulas/forward.md#f3"
    md = verify.render_markdown(small_result)
    assert "| ID | Formula |" in md and "| F3-linear-collapse | `docs/formulas/forward.md#f3` |" in md


def test_a_failed_check_names_its_formula_page():
    failing = Check("F11-wrong", "a claim", "a method", lambda *, seed, quick: Outcome({"x": 2}, "x == 1", False))
    table = verify.render_table(verify.run_suite([failing], progress=False))
    assert "    formula:  docs/formulas/backprop.md#f11" in table
