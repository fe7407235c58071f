"""Small table bundles for the serving, export, fuzz and reliability tests: one table with
user and item roles, a trained bundle of it (`train_bundle`, few epochs) and untrained,
seeded ones of any spec (`build_bundle`), so that each test file builds nothing of its own.

The table (`TABLE`, 60 rows): users 1..6, items 1..5 (ints, as MovieLens ids). Row `i`
belongs to user ``u = i % 6 + 1`` and, with ``k = i // 6``, item ``(u + k % 2) % 5 + 1``:
user u had exactly the items ``u % 5 + 1`` and ``(u + 1) % 5 + 1``, so user 1 had 2 and 3
and `/rank` offers it 1, 4 and 5. `age`, `zip` and `occupation` describe the user (its
first row's values are the catalogue's: user u is ``20 + u`` years old, zip
``f"{u - 1:05d}"``, except user 6, whose first age is missing), `genres` and `year`
the item, `device` is context. The 50 zip codes make a wide string vocabulary (a lookup
of one long string once promoted it all to that width).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dcnrank.bundle import Catalog, save
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.models import DCNConfig
from dcnrank.models.table_inputs import build_table_dcn

SPEC = FeatureSpec(
    (
        CategoricalColumn("user_id"),
        CategoricalColumn("item_id"),
        NumericColumn("age"),
        CategoricalColumn("zip"),
        CategoricalColumn("occupation"),
        MultiHotColumn("genres"),
        NumericColumn("year"),
        CategoricalColumn("device"),
    ),
    label="clicked",
    task="binary",
    user="user_id",
    item="item_id",
    user_columns=("age", "zip", "occupation"),
    item_columns=("genres", "year"),
)
ROWS = 60
GENRES = {1: "comedy|drama", 2: "action", 3: "drama", 4: "", 5: "action|comedy"}
OCCUPATIONS = ("engineer", "student", "writer")
DEVICES = ("phone", "web", "tablet")


def _user(i: int) -> int:
    return i % 6 + 1


def _item(i: int) -> int:
    return (_user(i) + (i // 6) % 2) % 5 + 1


TABLE: dict[str, list[Any]] = {
    "user_id": [_user(i) for i in range(ROWS)],
    "item_id": [_item(i) for i in range(ROWS)],
    "age": [None if i == 5 else float(20 + _user(i) + (i // 6) % 2) for i in range(ROWS)],
    "zip": [f"{i % 50:05d}" for i in range(ROWS)],
    "occupation": [OCCUPATIONS[_user(i) % 3] for i in range(ROWS)],
    "genres": [GENRES[_item(i)] for i in range(ROWS)],
    "year": [float(1990 + _item(i)) for i in range(ROWS)],
    "device": [DEVICES[i % 3] for i in range(ROWS)],
    "clicked": [(i // 3) % 2 for i in range(ROWS)],
}
HAD = {u: {u % 5 + 1, (u + 1) % 5 + 1} for u in range(1, 7)}  # user -> the items of its rows
# One valid `/predict` row: every input column of `SPEC`.
ROW = {"user_id": 1, "item_id": 2, "age": 21.0, "zip": "00000", "occupation": "student", "genres": "action",
       "year": 1992.0, "device": "web"}  # fmt: skip
CONFIG = DCNConfig(embedding_dim=2, num_cross_layers=2, deep_units=(4,))
# `dcnrank train` overrides for a quick run on `TABLE`: the last 10% of rows held out, so
# the catalogue's first rows are the table's.
QUICK_TRAIN = [
    "model.embedding_dim=2",
    "model.deep_units=[4]",
    "train.epochs=2",
    "train.batch_size=16",
    'data.validation="last"',
]


def build_bundle(
    path: str | Path,
    *,
    spec: FeatureSpec = SPEC,
    table: dict[str, list[Any]] | None = None,
    config: DCNConfig = CONFIG,
    seed: int = 0,
    catalog: bool = True,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """An untrained (seeded) bundle of `spec` fitted on `table` (default `TABLE`), with its
    catalogue when `catalog` and the spec names a user and an item."""
    table = TABLE if table is None else table
    encoder = TableEncoder.fit(spec, table)
    torch.manual_seed(seed)
    model = build_table_dcn(config, spec, encoder.table_sizes)
    built = Catalog.build(spec, encoder, table) if catalog and spec.user and spec.item else None
    return save(model, path, model_config=config, encoder=encoder, catalog=built, metrics=metrics)


def train_bundle(path: str | Path) -> Path:
    """A bundle trained by `train_table` on `TABLE` for two epochs (the recipe, made small)."""
    from dcnrank.experiments.recipe import load_recipe
    from dcnrank.workflows import train_table

    return train_table(load_recipe(QUICK_TRAIN), SPEC, TABLE, path).bundle_path


def candidate_rows(bundle: Any, user_id: Any, items: list[Any], user: dict[str, Any] | None = None,
                   context: dict[str, Any] | None = None) -> dict[str, list[Any]]:  # fmt: skip
    """The rows `/rank` scores for `user_id` and `items`, built by hand: the item columns
    from the catalogue (missing for an item it lacks), the user columns from `user`, else
    the catalogue's entry, the context from `context`."""
    catalog = bundle.catalog
    spec = bundle.spec
    at = catalog.user_position(user_id) if user_id is not None else None
    user_values = {name: (user or {}).get(name, None if at is None else catalog.users[name][at])
                   for name in spec.user_columns}  # fmt: skip
    columns: dict[str, list[Any]] = {name: [] for name in spec.input_names}
    for item in items:
        where = catalog.item_position(item)
        for name in spec.input_names:
            if name == spec.item:
                value = item
            elif name in spec.item_columns:
                value = None if where is None else catalog.items[name][where]
            elif name == spec.user:
                value = user_id
            elif name in spec.user_columns:
                value = user_values[name]
            else:
                value = (context or {}).get(name)
            columns[name].append(value)
    return columns


def memory_bundle(seed: int = 0) -> Any:
    """An untrained (seeded) `Bundle` of `SPEC` on `TABLE` with its catalogue, in memory (no folder)."""
    from dcnrank.bundle import Bundle

    encoder = TableEncoder.fit(SPEC, TABLE)
    torch.manual_seed(seed)
    model = build_table_dcn(CONFIG, SPEC, encoder.table_sizes)
    return Bundle(model, CONFIG, encoder, catalog=Catalog.build(SPEC, encoder, TABLE))
