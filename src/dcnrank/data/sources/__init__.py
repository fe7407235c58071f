"""Data sources: raw data turned into one Arrow table plus its feature spec and named splits.

from dcnrank.data.sources import load_movielens_source
source = load_movielens_source("movielens-100k")       # or a release folder
train_rows, test_rows = source.split_rows("u1")
train_table(config, source.spec, source.table.take(train_rows), "runs/ml")
"""

from dcnrank.data.sources.movielens import (
    DATASETS,
    RELEASES,
    MovieLensSource,
    detect_release,
    load_movielens_source,
    movielens_spec,
)

__all__ = ["DATASETS", "RELEASES", "MovieLensSource", "detect_release", "load_movielens_source", "movielens_spec"]
