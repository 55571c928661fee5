"""The release as a user gets it: one statement of the version, a changelog, the benchmarks and the
documentation using only public names, dependencies where they are used, the README's speed claim
generated from the committed results, and the wheel holding one import name (CI goes further:
``.ci/wheel`` installs it in a fresh environment and runs it away from the checkout)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import fnnjax

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# An import of a private name of another package: fnnjax._x, from fnnjax import _x, and the private
# modules of fnnjax.verify's subpackages (each package may use its own private modules).
PRIVATE_IMPORT = re.compile(
    r"^\s*(?:from\s+(?P<from>[\w.]+)\s+import\s+(?P<names>[^\n#]+)|import\s+(?P<module>[\w.]+))", re.M
)
ALLOWED: set[tuple[str, str]] = set()  # (path, module) pairs excused from the rule; none today


def _private_imports(path: Path, own_package: str) -> list[str]:
    found = []
    for m in PRIVATE_IMPORT.finditer(path.read_text()):
        if m["module"]:
            modules = [m["module"]]
        elif m["from"].startswith("."):
            continue  # relative: the package's own modules
        else:
            names = [n.strip().split(" as ")[0] for n in m["names"].strip("() \\").split(",")]
            modules = [m["from"]] + [f"{m['from']}.{n}" for n in names if n.startswith("_")]
        for module in modules:
            parts = module.split(".")
            if parts[0] in ("verify", "benchmarks"):
                parts = ["fnnjax", *parts]
            private = [i for i, p in enumerate(parts) if p.startswith("_") and not p.startswith("__")]
            if private and not ".".join(parts).startswith(own_package + "."):
                found.append(".".join(parts[: private[0] + 1]))
    return found


def test_benchmarks_and_docs_import_only_public_names():
    found = set()
    for path in sorted([*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "docs").glob("*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        own = "fnnjax.benchmarks" if rel.startswith("benchmarks/") else "docs"
        found |= {(rel, name) for name in _private_imports(path, own)}
    assert sorted(found - ALLOWED) == [], "private names imported across packages"
    assert sorted(ALLOWED - found) == [], "no longer imported: remove from ALLOWED"


def test_the_private_import_finder_finds_each_form(tmp_path):
    src = tmp_path / "x.py"
    src.write_text(
        "from fnnjax._presets import PRESETS\nfrom fnnjax import _train, data\nimport fnnjax._cli_train\n"
        "    from fnnjax.verify.formulas._report import format_value\nfrom fnnjax.benchmarks._harness import x\n"
        "from . import _harness\nfrom fnnjax.presets import PRESETS\n"
    )
    assert _private_imports(src, "fnnjax.benchmarks") == [
        "fnnjax._presets",
        "fnnjax._train",
        "fnnjax._cli_train",
        "fnnjax.verify.formulas._report",
    ]


def test_the_version_is_stated_once():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "fnnjax.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", fnnjax.__version__)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{fnnjax.__version__}]" in changelog, "CHANGELOG.md has no section for this version"


def test_chex_is_a_test_dependency_only():
    runtime = " ".join(PYPROJECT["project"]["dependencies"])
    assert "chex" not in runtime and any(
        d.startswith("chex") for d in PYPROJECT["project"]["optional-dependencies"]["dev"]
    )
    users = [
        p
        for d in ("fnnjax", "verify", "benchmarks")
        for p in (ROOT / d).rglob("*.py")
        if "import chex" in p.read_text()
    ]
    assert users == []


def test_the_speed_claim_is_the_committed_result():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import generate
    finally:
        sys.path.remove(str(ROOT / "docs"))
    results = json.loads((ROOT / "benchmarks" / "results" / "train_cpu.json").read_text())
    sentence = generate.speed_sentence(results)
    speedup = results["targets"]["fit_vs_fastest_peer"]["speedup"]
    assert sentence.startswith(f"{speedup:.2f}× faster per epoch on a CPU than the fastest of its peers (")
    for page in generate.SPEED_PAGES:
        text = re.sub(r"\s+", " ", page.read_text())
        assert sentence in text, f"{page.name}: rerun python docs/generate.py speed"
        assert "2× faster" not in text and "twice as fast" not in text


@pytest.mark.slow
def test_the_wheel_holds_one_import_name(tmp_path):
    """The wheel (built as CI builds it, ``python -m build``): the package and its two products
    under ``fnnjax``, nothing else at the top level, the version from ``fnnjax.__version__``."""
    pytest.importorskip("build")
    run = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    (wheel,) = tmp_path.glob("fnnjax-*.whl")
    assert wheel.name.startswith(f"fnnjax-{fnnjax.__version__}-py3-none-any")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"fnnjax", f"fnnjax-{fnnjax.__version__}.dist-info"}
    for module in (
        "fnnjax/presets.py",
        "fnnjax/verify/cli.py",
        "fnnjax/verify/formulas/_registry.py",
        "fnnjax/verify/grader/_worker.py",
        "fnnjax/benchmarks/backprop.py",
        "fnnjax/gradcheck/__init__.py",
    ):
        assert module in names
    metadata = zipfile.ZipFile(wheel).read(f"fnnjax-{fnnjax.__version__}.dist-info/METADATA").decode()
    chex = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: chex")]
    assert chex and all("extra ==" in line for line in chex), chex
