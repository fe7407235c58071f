"""The feature spec: which columns of a table feed a model, as what type, in which role
(`user`, `item`, `user_columns`, `item_columns`), and what it predicts (`FeatureSpec`)."""

from dcnrank.data.spec.feature_spec import (
    COLUMN_TYPES,
    POOLINGS,
    ROLE_KEYS,
    TASKS,
    CategoricalColumn,
    Column,
    FeatureSpec,
    MultiHotColumn,
    NumericColumn,
    load_feature_spec,
)

__all__ = [
    "COLUMN_TYPES",
    "POOLINGS",
    "ROLE_KEYS",
    "TASKS",
    "CategoricalColumn",
    "Column",
    "FeatureSpec",
    "MultiHotColumn",
    "NumericColumn",
    "load_feature_spec",
]
