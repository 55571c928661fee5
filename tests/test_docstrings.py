"""Every runnable example in every docstring of the package, the verify suite and the benchmarks
runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("fnnjax",)
"""``fnnjax`` holds the verify suite and the benchmarks too (``fnnjax.verify``, ``fnnjax.benchmarks``):
each module's examples run once, under the name users import it by."""


def all_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return sorted(names)


def test_the_walk_covers_the_suite_the_grader_and_the_benchmarks():
    names = all_modules()
    for package in ("fnnjax.verify.formulas", "fnnjax.verify.grader", "fnnjax.benchmarks"):
        assert any(n.startswith(package + ".") for n in names), package


@pytest.mark.parametrize("name", all_modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
