"""Nothing in the product points outside it: no text of the repository names a path of the machine it
was written on, a file that is not in the repository, an issue number, or how the work on it was
organised. A target is named for what it is ("the CPU speed target: 1.2x the PyTorch loop")."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "a path outside the repository": r"\.\./shared|/work/|shared/data",
    "a notes file that is not in the repository": r"FORMULAS\.md|DOCS-NOTES|GRADCHECK-NOTES|COURSES\.md",
    "an issue number": r"\bissues? (?:#?\d|\d)|\bissue #?\d|issues? \d+ and \d+",
    "how the work is organised": r"\btasks?\b|\blent\b|\blease\b|\bthe lead\b|device tool|\$OUT\b",
}
SUFFIXES = {".py", ".md", ".json", ".txt", ".toml", ".yml", ".yaml", ".cfg", ".sh", ".js", ".css"}
SKIP = {"tests/test_product_text.py"}  # this file states the patterns


def _product_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = []
    for name in listed:
        path = ROOT / name
        if (
            path.is_file()
            and (path.suffix in SUFFIXES or name == ".ci/run")
            and name not in SKIP
            and not name.startswith(("docs/javascripts/katex/", "docs/javascripts/iframe-worker/"))
        ):
            files.append(path)
    return files


def test_no_product_text_points_outside_the_product():
    found = []
    for path in _product_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            for what, pattern in FORBIDDEN.items():
                if re.search(pattern, line, flags=re.I):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {what}: {line.strip()[:120]}")
    assert not found, "\n".join(found)


def test_the_patterns_catch_what_they_are_for():
    samples = {
        "see ../shared/FORMULAS.md": 2,
        "issue 4's target": 1,
        "issues 4 and 5": 1,
        "no task so far was lent a GPU": 1,
        "FNNJAX_DATA=/work/shared/data": 1,
        "the CPU speed target: 1.2x the PyTorch loop": 0,
        "a classification problem": 0,
    }
    for text, hits in samples.items():
        got = sum(bool(re.search(p, text, flags=re.I)) for p in FORBIDDEN.values())
        assert got == hits, (text, got)
