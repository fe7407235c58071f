"""The layout of a bundle folder and the version of its format."""

from __future__ import annotations

# A bundle is a folder holding exactly these files.
WEIGHTS_FILE = "weights.safetensors"  # the model's state dict, safetensors (never pickle)
CONFIG_FILE = "config.json"  # model config, features, training config, versions, checksums
VOCAB_FILE = "vocab.json"  # feature name -> {"kind": "int" | "str", "values": [...]}
METRICS_FILE = "metrics.json"  # whatever the run measured, e.g. {"test": {"rmse": ...}}
BUNDLE_FILES = (WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE, METRICS_FILE)

FORMAT_NAME = "dcnrank.bundle"
# A model trained on a table (`dcnrank train --data --spec`): the same four files, but
# config.json holds the feature `spec` and `numeric` statistics instead of `features`, and
# vocab.json the vocabularies of its categorical and multi-hot columns. Its own name makes
# a dcnrank that predates table bundles refuse one instead of misreading it.
TABLE_FORMAT_NAME = "dcnrank.table_bundle"
# Bump when a reader of the old format could misread the new one.
FORMAT_VERSION = 1
