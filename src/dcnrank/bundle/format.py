"""The layout of a bundle folder and the version of its format."""

from __future__ import annotations

import re

# A bundle is a folder holding exactly these files.
WEIGHTS_FILE = "weights.safetensors"  # the model's state dict, safetensors (never pickle)
CONFIG_FILE = "config.json"  # model config, feature spec, statistics, table sizes, training config, versions
VOCAB_FILE = "vocab.json"  # column name -> {"kind": "int" | "str", "values": [...]}
METRICS_FILE = "metrics.json"  # whatever the run measured, e.g. {"test": {"rmse": ...}}
# The format name and version and the SHA-256 of every file above: written last, it vouches
# for them all (config.json included), and marks the folder as dcnrank's own.
MANIFEST_FILE = "manifest.json"
# The files the manifest vouches for, in the order they are checked.
DATA_FILES = (WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE, METRICS_FILE)
BUNDLE_FILES = (*DATA_FILES, MANIFEST_FILE)
# A bundle whose spec names a user and an item also holds its catalogue: the items and
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
# Bump when a reader of the old format could misread the new one; config.json records the
# version too, so an older reader refuses a newer bundle. Version 2 added manifest.json
# (version 1 kept the sums in an unchecked config.json); version 3 made every bundle a model
# trained on a table: config.json holds the feature `spec`, the `numeric` statistics, the
# embedding `table_sizes` and the `catalog`, vocab.json the vocabularies of the categorical
# and multi-hot columns. This dcnrank reads version 3 only.
FORMAT_VERSION = 3
# What older dcnranks wrote: "dcnrank.bundle" of versions 1 and 2 (models of one public dataset), and
# "dcnrank.table_bundle" (models trained on a table). Loading refuses them (retrain), but
# they are dcnrank's own: a save may replace a folder holding one.
OLD_TABLE_FORMAT_NAME = "dcnrank.table_bundle"
KNOWN_FORMATS = (FORMAT_NAME, OLD_TABLE_FORMAT_NAME)


def is_bundle_file(name: str) -> bool:
    """Whether dcnrank writes a file of this name into a bundle folder.

    Example:
        >>> [is_bundle_file(n) for n in ("config.json", "catalog.json", "interactions_layer1.png", "NOTES.md")]
        [True, True, True, False]
    """
    return name in BUNDLE_FILES or name in CATALOG_FILES or EXTRA_FILES.fullmatch(name) is not None
