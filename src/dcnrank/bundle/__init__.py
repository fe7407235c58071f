"""Bundles: a trained model as a folder (safetensors weights, JSON config, vocabularies and
metrics) that loads without unpickling and scores raw feature values.

    bundle = dcnrank.bundle.load("runs/model")        # once
    bundle.predict({"movie_id": [1, 50], "user_id": [42, 42], ...})   # per request
"""

from dcnrank.bundle.bundle import Bundle, BundleConfig
from dcnrank.bundle.errors import BundleError
from dcnrank.bundle.format import (
    BUNDLE_FILES,
    CONFIG_FILE,
    FORMAT_VERSION,
    METRICS_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
)
from dcnrank.bundle.load import load
from dcnrank.bundle.save import save

__all__ = [
    "BUNDLE_FILES",
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "METRICS_FILE",
    "VOCAB_FILE",
    "WEIGHTS_FILE",
    "Bundle",
    "BundleConfig",
    "BundleError",
    "load",
    "save",
]
