"""Bundles: a trained model as a folder (safetensors weights, JSON config, vocabularies,
metrics, and a manifest of their SHA-256 sums) that loads without unpickling, checked
file by file, and scores raw feature values.

    bundle = dcnrank.bundle.load("runs/model")        # once
    bundle.predict({"movie_id": [1, 50], "user_id": [42, 42], ...})   # per request

A model trained on one's own table (`dcnrank train --data --spec`) is a table bundle,
which also holds the feature spec and the numeric statistics:

    bundle = dcnrank.bundle.load_table("runs/ctr")
    bundle.predict("new_rows.parquet")                # or a DataFrame, an Arrow table

A table bundle whose spec names a user and an item also holds its catalogue
(`bundle.catalog`), from which `dcnrank.bundle.ranking.rank_items` ranks items for a user.
"""

from dcnrank.bundle.bundle import Bundle, BundleConfig
from dcnrank.bundle.catalog import Catalog
from dcnrank.bundle.errors import BundleError
from dcnrank.bundle.format import (
    BUNDLE_FILES,
    CATALOG_FILE,
    CATALOG_TENSORS_FILE,
    CONFIG_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    METRICS_FILE,
    TABLE_FORMAT_NAME,
    TABLE_FORMAT_VERSION,
    VOCAB_FILE,
    WEIGHTS_FILE,
)
from dcnrank.bundle.load import load, load_any, load_table
from dcnrank.bundle.save import save, save_table
from dcnrank.bundle.table_bundle import TableBundle
from dcnrank.bundle.target import check_bundle_target

__all__ = [
    "BUNDLE_FILES",
    "CATALOG_FILE",
    "CATALOG_TENSORS_FILE",
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "TABLE_FORMAT_NAME",
    "TABLE_FORMAT_VERSION",
    "VOCAB_FILE",
    "WEIGHTS_FILE",
    "Bundle",
    "BundleConfig",
    "BundleError",
    "Catalog",
    "TableBundle",
    "check_bundle_target",
    "load",
    "load_any",
    "load_table",
    "save",
    "save_table",
]
