"""Data layer: the feature spec (`spec/`), sources that read files and MovieLens into Arrow
tables (`sources/`), the encoder that turns a table into tensors (`encoding/`), chunked
reads and writes for tables larger than memory (`streaming/`), and the validation hold-out
(`holdout`)."""

from dcnrank.config.data_config import SPLIT_NAMES
from dcnrank.data.encoding.interactions import Interactions
from dcnrank.data.encoding.table_batch import TableBatch
from dcnrank.data.encoding.table_encoder import EncodedRows, TableEncoder, fit_and_encode
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.encoding.vocabulary import OOV_INDEX, Vocabulary
from dcnrank.data.holdout import validation_split
from dcnrank.data.sources.checksums import (
    MOVIELENS_100K_SHA256,
    MOVIELENS_100K_URL,
    sha256_file,
    verify_checksums,
)
from dcnrank.data.sources.download import default_cache_dir, download_movielens, install_movielens_zip
from dcnrank.data.sources.errors import (
    ChecksumMismatchError,
    MovieLensDownloadError,
    MovieLensFormatError,
    MovieLensNotFoundError,
)
from dcnrank.data.sources.movielens import MovieLensSource, load_movielens_source
from dcnrank.data.sources.movielens_100k import (
    DATA_ENV_VAR,
    SPLIT_FILE_NAMES,
    load_movielens,
    locate_movielens,
    read_split_file,
)
from dcnrank.data.sources.ratings import AGE_BUCKETS, GENRE_NAMES, Ratings, bucketize_age
from dcnrank.data.sources.splits import Split, split_indices
from dcnrank.data.sources.table_readers import read_table
from dcnrank.data.spec.feature_spec import FeatureSpec, load_feature_spec
from dcnrank.data.streaming.streamed_table import StreamedTable
from dcnrank.data.streaming.table_stream import TableStream
from dcnrank.data.streaming.table_writer import TableWriter, write_table

__all__ = [
    "AGE_BUCKETS",
    "DATA_ENV_VAR",
    "GENRE_NAMES",
    "MOVIELENS_100K_SHA256",
    "MOVIELENS_100K_URL",
    "OOV_INDEX",
    "SPLIT_FILE_NAMES",
    "SPLIT_NAMES",
    "ChecksumMismatchError",
    "EncodedRows",
    "FeatureSpec",
    "Interactions",
    "MovieLensDownloadError",
    "MovieLensFormatError",
    "MovieLensNotFoundError",
    "MovieLensSource",
    "Ratings",
    "Split",
    "StreamedTable",
    "TableBatch",
    "TableDataError",
    "TableEncoder",
    "TableStream",
    "TableWriter",
    "Vocabulary",
    "bucketize_age",
    "default_cache_dir",
    "download_movielens",
    "fit_and_encode",
    "install_movielens_zip",
    "load_feature_spec",
    "load_movielens",
    "load_movielens_source",
    "locate_movielens",
    "read_split_file",
    "read_table",
    "sha256_file",
    "split_indices",
    "validation_split",
    "verify_checksums",
    "write_table",
]
