"""Bundles: a model trained on a table as a folder (safetensors weights, JSON config with
the feature spec and the numeric statistics, vocabularies, the catalogue of its users and
items, metrics, and a manifest of their SHA-256 sums) that loads without unpickling,
checked file by file, and scores raw rows.

    bundle = dcnrank.bundle.load("runs/ctr")          # once
    bundle.predict("new_rows.parquet")                # or a DataFrame, an Arrow table, a column mapping

A bundle whose spec names a user and an item also holds its catalogue (`bundle.catalog`),
from which `dcnrank.bundle.ranking.rank_items` ranks items for a user.
"""

from dcnrank.bundle.bundle import Bundle
from dcnrank.bundle.catalog import Catalog
from dcnrank.bundle.errors import BundleError
from dcnrank.bundle.format import (
    BUNDLE_FILES,
    CATALOG_FILE,
    CATALOG_TENSORS_FILE,
    CONFIG_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    METRICS_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
)
from dcnrank.bundle.load import load
from dcnrank.bundle.save import save
from dcnrank.bundle.target import check_bundle_target

__all__ = [
    "BUNDLE_FILES",
    "CATALOG_FILE",
    "CATALOG_TENSORS_FILE",
    "CONFIG_FILE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "VOCAB_FILE",
    "WEIGHTS_FILE",
    "Bundle",
    "BundleError",
    "Catalog",
    "check_bundle_target",
    "load",
    "save",
]
