"""Every docstring example in the package runs and prints what it says (one runner for all modules)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest
import torch

import dcnrank

MODULES = sorted(
    name
    for _, name, is_package in pkgutil.walk_packages(dcnrank.__path__, prefix="dcnrank.")
    if not name.endswith("__main__")
)


def test_the_walk_finds_the_package() -> None:
    assert "dcnrank.layers.feature_cross" in MODULES
    assert len(MODULES) > 50


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    # examples may use `torch` and `np` without importing them, as the tests' own examples do
    result = doctest.testmod(
        module, extraglobs={"torch": torch, "np": np}, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
