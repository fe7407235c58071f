"""The interpreter that runs Keras-RS for the reference and parity tests."""

from __future__ import annotations

import os
import sys

import pytest


def reference_python() -> str:
    """`KERAS_REFERENCE_PYTHON` (a virtualenv with the `bench` extra: keras, keras-rs, jax)
    when set, else this interpreter if keras_rs imports here; the calling test skips otherwise."""
    python = os.environ.get("KERAS_REFERENCE_PYTHON")
    if python:
        return python
    pytest.importorskip("keras_rs")
    return sys.executable
