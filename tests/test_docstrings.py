"""Every runnable example in the core's docstrings runs and prints what it says."""

import doctest
import importlib

import pytest

MODULES = ["fnnjax._activations", "fnnjax._model", "fnnjax._losses", "fnnjax._backprop",
           "fnnjax._differentiate"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
    assert result.attempted > 0
