"""Bundles: a trained model as a folder (safetensors weights, JSON config, vocabularies,
metrics, and a manifest of their SHA-256 sums) that loads without unpickling, checked
file by file, and scores raw feature values.

    bundle = dcnrank.bundle.load("runs/model")        # once
    bundle.predict({"movie_id": [1, 50], "user_id": [42, 42], ...})   # per request

A model trained on one's own table (`dcnrank train --data --spec`) is a table bundle,
which also holds the feature spec and the numeric statistics:

    bundle = dcnrank.bundle.load_table("runs/ctr")
    bundle.predict("new_rows.parquet")                # or a DataFrame, an Arrow table
"""

from dcnrank.bundle.bundle import Bundle, BundleConfig
from dcnrank.bundle.errors import BundleError
from dcnrank.bundle.format import (
    BUNDLE_FILES,
    CONFIG_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    METRICS_FILE,
    TABLE_FORMAT_NAME,
    VOCAB_FILE,
    WEIGHTS_FILE,
)
from dcnrank.bundle.load import load, load_any, load_table
from dcnrank.bundle.save import save, save_table
from dcnrank.bundle.table_bundle import TableBundle
from dcnrank.bundle.target import check_bundle_target

__all__ = [
    "BUNDLE_FILES",
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "TABLE_FORMAT_NAME",
    "VOCAB_FILE",
    "WEIGHTS_FILE",
    "Bundle",
    "BundleConfig",
    "BundleError",
    "TableBundle",
    "check_bundle_target",
    "load",
    "load_any",
    "load_table",
    "save",
    "save_table",
]
