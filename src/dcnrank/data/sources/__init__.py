"""Data sources: CSV, TSV and Parquet files and DataFrames read as Arrow tables
(`read_table`), and MovieLens (100K, 1M, 10M, latest) found, verified, parsed and turned
into one Arrow table plus its feature spec and named splits (`load_movielens_source`).

from dcnrank.data.sources import load_movielens_source
source = load_movielens_source("movielens-100k")       # or a release folder
train_rows, test_rows = source.split_rows("u1")
train_table(config, source.spec, source.table.take(train_rows), "runs/ml")
"""

from dcnrank.data.sources.checksums import MOVIELENS_100K_SHA256, MOVIELENS_100K_URL, sha256_file, verify_checksums
from dcnrank.data.sources.download import default_cache_dir, download_movielens, install_movielens_zip
from dcnrank.data.sources.errors import (
    ChecksumMismatchError,
    MovieLensDownloadError,
    MovieLensFormatError,
    MovieLensNotFoundError,
)
from dcnrank.data.sources.movielens import (
    DATASETS,
    RELEASES,
    SPEC_FILE,
    USER_COLUMNS,
    MovieLensSource,
    detect_release,
    load_movielens_source,
    movielens_spec,
)
from dcnrank.data.sources.movielens_100k import (
    DATA_ENV_VAR,
    SPLIT_FILE_NAMES,
    load_movielens,
    locate_movielens,
    read_split_file,
)
from dcnrank.data.sources.ratings import AGE_BUCKETS, GENRE_NAMES, Ratings, bucketize_age
from dcnrank.data.sources.splits import Split, split_indices
from dcnrank.data.sources.table_readers import (
    TABLE_FORMATS,
    as_arrow_table,
    check_text_file,
    check_unique_columns,
    read_table,
    source_name,
    table_format,
    utf8_columns,
)

__all__ = [
    "AGE_BUCKETS",
    "DATASETS",
    "DATA_ENV_VAR",
    "GENRE_NAMES",
    "MOVIELENS_100K_SHA256",
    "MOVIELENS_100K_URL",
    "RELEASES",
    "SPEC_FILE",
    "SPLIT_FILE_NAMES",
    "TABLE_FORMATS",
    "USER_COLUMNS",
    "ChecksumMismatchError",
    "MovieLensDownloadError",
    "MovieLensFormatError",
    "MovieLensNotFoundError",
    "MovieLensSource",
    "Ratings",
    "Split",
    "as_arrow_table",
    "bucketize_age",
    "check_text_file",
    "check_unique_columns",
    "default_cache_dir",
    "detect_release",
    "download_movielens",
    "install_movielens_zip",
    "load_movielens",
    "load_movielens_source",
    "locate_movielens",
    "movielens_spec",
    "read_split_file",
    "read_table",
    "sha256_file",
    "source_name",
    "split_indices",
    "table_format",
    "utf8_columns",
    "verify_checksums",
]
