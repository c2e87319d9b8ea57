"""The examples in the docstrings and in README.md run and print what they show."""

import doctest
import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import vcalc

README = Path(__file__).resolve().parent.parent / "README.md"
MODULES = sorted(
    m.name
    for m in pkgutil.iter_modules(vcalc.__path__, "vcalc.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("modname", ["vcalc", *MODULES])
def test_docstring_examples(modname):
    module = importlib.import_module(modname)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0


def test_public_functions_have_runnable_examples():
    for name in vcalc.__all__:
        obj = getattr(vcalc, name)
        if callable(obj):
            assert ">>> " in (obj.__doc__ or ""), f"{name} has no example"


@pytest.mark.skipif(not README.exists(), reason="README.md not beside the tests")
def test_readme_quickstart():
    np.set_printoptions(legacy=False)
    result = doctest.testfile(
        str(README), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0
    assert result.failed == 0
