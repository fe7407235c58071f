"""Data layer: feature specs, table readers and encoders; MovieLens found, parsed and split for its source."""

from dcnrank.data.checksums import (
    MOVIELENS_100K_SHA256,
    MOVIELENS_100K_URL,
    sha256_file,
    verify_checksums,
)
from dcnrank.data.download import default_cache_dir, download_movielens, install_movielens_zip
from dcnrank.data.errors import (
    ChecksumMismatchError,
    MovieLensDownloadError,
    MovieLensFormatError,
    MovieLensNotFoundError,
)
from dcnrank.data.movielens import (
    DATA_ENV_VAR,
    SPLIT_FILE_NAMES,
    load_movielens,
    locate_movielens,
    read_split_file,
)
from dcnrank.data.ratings import AGE_BUCKETS, GENRE_NAMES, Ratings, bucketize_age
from dcnrank.data.splits import SPLIT_NAMES, Split, split_indices
from dcnrank.data.vocabulary import OOV_INDEX, Vocabulary

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
    "MovieLensDownloadError",
    "MovieLensFormatError",
    "MovieLensNotFoundError",
    "Ratings",
    "Split",
    "Vocabulary",
    "bucketize_age",
    "default_cache_dir",
    "download_movielens",
    "install_movielens_zip",
    "load_movielens",
    "locate_movielens",
    "read_split_file",
    "sha256_file",
    "split_indices",
    "verify_checksums",
]
