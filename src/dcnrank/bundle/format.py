"""The layout of a bundle folder and the version of its format."""

from __future__ import annotations

import re

# A bundle is a folder holding exactly these files.
WEIGHTS_FILE = "weights.safetensors"  # the model's state dict, safetensors (never pickle)
CONFIG_FILE = "config.json"  # model config, features, training config, versions
VOCAB_FILE = "vocab.json"  # feature name -> {"kind": "int" | "str", "values": [...]}
METRICS_FILE = "metrics.json"  # whatever the run measured, e.g. {"test": {"rmse": ...}}
# The format name and version and the SHA-256 of every file above: written last, it vouches
# for them all (config.json included), and marks the folder as dcnrank's own.
MANIFEST_FILE = "manifest.json"
# The files the manifest vouches for, in the order they are checked.
DATA_FILES = (WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE, METRICS_FILE)
BUNDLE_FILES = (*DATA_FILES, MANIFEST_FILE)
# A table bundle whose spec names a user and an item also holds its catalogue: the items and
# users of the fit rows with their columns' raw values (JSON), and which items each user
# interacted with (CSR, safetensors). The manifest vouches for them too; `config.json`'s
# `catalog` records that they are there.
CATALOG_FILE = "catalog.json"
CATALOG_TENSORS_FILE = "catalog.safetensors"
CATALOG_FILES = (CATALOG_FILE, CATALOG_TENSORS_FILE)
# What dcnrank itself may add to a bundle folder besides: the cross-layer heatmaps of
# `dcnrank train --data` and `dcnrank explain` (`interactions.png`, `interactions_layerN.png`).
# load ignores them; a save may replace a folder that holds them.
EXTRA_FILES = re.compile(r"interactions(?:_layer[0-9]+)?\.png")

FORMAT_NAME = "dcnrank.bundle"
# A model trained on a table (`dcnrank train --data --spec`): the same files, but
# config.json holds the feature `spec` and `numeric` statistics instead of `features`, and
# vocab.json the vocabularies of its categorical and multi-hot columns. Its own name makes
# a dcnrank that predates table bundles refuse one instead of misreading it.
TABLE_FORMAT_NAME = "dcnrank.table_bundle"
FORMAT_NAMES = (FORMAT_NAME, TABLE_FORMAT_NAME)
# Bump when a reader of the old format could misread the new one. Version 2 added
# manifest.json (version 1 kept the sums of the other files in an unchecked config.json);
# config.json still records the version, so a version-1 reader refuses a version-2 bundle.
FORMAT_VERSION = 2
# Table bundles: version 3 added the catalogue (and the spec's roles, which the model's
# levers read), so a dcnrank reading version 2 refuses it rather than serve without it,
# and this dcnrank refuses a version-2 table bundle (retrain it).
TABLE_FORMAT_VERSION = 3
# The format version each format name is written with (and the only one read).
FORMAT_VERSIONS = {FORMAT_NAME: FORMAT_VERSION, TABLE_FORMAT_NAME: TABLE_FORMAT_VERSION}


def is_bundle_file(name: str) -> bool:
    """Whether dcnrank writes a file of this name into a bundle folder.

    Example:
        >>> [is_bundle_file(n) for n in ("config.json", "catalog.json", "interactions_layer1.png", "NOTES.md")]
        [True, True, True, False]
    """
    return name in BUNDLE_FILES or name in CATALOG_FILES or EXTRA_FILES.fullmatch(name) is not None
