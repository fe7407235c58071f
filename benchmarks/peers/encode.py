"""The peers' shared table: a Criteo-layout file encoded once into per-column integer ids.

Every one of the 39 columns (I1…I13 counts, C1…C26 categories) is categorical: the raw
value is the token (a count as it is, no bucketing), a missing cell is one more token, and
each column's vocabulary is built over the training rows (the first 80%) alone. Tokens seen
fewer than `min_count` times there map to the column's out-of-vocabulary id 0; the others get
ids 1 … V_c − 1, the most frequent first (ties: first seen first), so the ids are per column.

Run by the driver (`bench_peers.py`) with the project's `.venv` (pyarrow); the runners read
only the numpy files it writes (`common.load_data`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from common import train_rows

ROOT = Path(__file__).resolve().parents[2]
MAKE_TABLE = ROOT / "examples" / "make_criteo_like.py"
COLUMNS = tuple(f"I{i}" for i in range(1, 14)) + tuple(f"C{i}" for i in range(1, 27))
MIN_COUNT = 3


def encode_column(values: pa.ChunkedArray | pa.Array, fit_rows: int, min_count: int = MIN_COUNT) -> np.ndarray:
    """Ids of one column: a vocabulary of the tokens seen ≥ `min_count` times in its first
    `fit_rows` cells (missing is a token), ids 1… by frequency, 0 for everything else.

    Example:
        >>> encode_column(pa.array(["b", "a", "b", "a", "b", "a", None, "b", "c", "c", "c"]), 9).tolist()
        [1, 2, 1, 2, 1, 2, 0, 1, 0, 0, 0]
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    missing_code = len(encoded.dictionary)  # the missing cells' token
    codes = np.where(encoded.is_null().to_numpy(zero_copy_only=False), missing_code, codes).astype(np.int64)
    counts = np.bincount(codes[:fit_rows], minlength=missing_code + 1)
    first_seen = np.full(missing_code + 1, fit_rows, dtype=np.int64)
    np.minimum.at(first_seen, codes[:fit_rows], np.arange(min(fit_rows, len(codes))))
    kept = np.flatnonzero(counts >= min_count)
    kept = kept[np.lexsort((first_seen[kept], -counts[kept]))]  # most frequent first, then first seen
    ids = np.zeros(missing_code + 1, dtype=np.int32)
    ids[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
    return ids[codes]


def encode_table(table: pa.Table, columns: tuple[str, ...] = COLUMNS, min_count: int = MIN_COUNT) -> dict:
    """`ids` int32 `(N, len(columns))`, `labels` float32 `(N,)`, `vocabulary_sizes` (OOV id
    included) and `train_rows` of a table with a `label` column.

    Raises:
        ValueError: naming a missing column.
    """
    absent = [name for name in ("label", *columns) if name not in table.column_names]
    if absent:
        raise ValueError(f"the table lacks column(s) {', '.join(absent)}; it has {', '.join(table.column_names)}")
    fit_rows = train_rows(table.num_rows)
    ids = np.stack([encode_column(table.column(name), fit_rows, min_count) for name in columns], axis=1)
    labels = table.column("label").to_numpy().astype(np.float32)
    sizes = [int(ids[:, j].max()) + 1 for j in range(ids.shape[1])]
    return {"ids": ids, "labels": labels, "vocabulary_sizes": sizes, "train_rows": fit_rows}


def write_encoded(encoded: dict, folder: Path, columns: tuple[str, ...] = COLUMNS) -> None:
    """Write `ids.npy`, `labels.npy` and, last (it marks the folder complete), `vocab.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "ids.npy", encoded["ids"])
    np.save(folder / "labels.npy", encoded["labels"])
    meta = {
        "vocabulary_sizes": encoded["vocabulary_sizes"],
        "columns": list(columns),
        "train_rows": encoded["train_rows"],
        "rows": len(encoded["labels"]),
        "min_count": MIN_COUNT,
    }
    (folder / "vocab.json").write_text(json.dumps(meta, indent=1) + "\n")


def data_folder(cache: Path, rows: int) -> Path:
    """The cache folder of a table of `rows` rows (the row count is in the name)."""
    return cache / f"criteo_like_{rows}"


def ensure_data(cache: Path, rows: int, python: str = sys.executable) -> Path:
    """The encoded folder for `rows` rows: reused when its `vocab.json` exists, else the table is
    drawn with `examples/make_criteo_like.py` (run by `python`) and encoded.

    Raises:
        subprocess.CalledProcessError: if the table could not be drawn.
    """
    folder = data_folder(cache, rows)
    if (folder / "vocab.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    table_file = folder / "criteo_like.parquet"
    if not table_file.is_file():
        partial = folder / "criteo_like.partial.parquet"
        subprocess.run([python, str(MAKE_TABLE), "--rows", str(rows), "--out", str(partial)], check=True)
        partial.rename(table_file)
    write_encoded(encode_table(pq.read_table(table_file)), folder)
    return folder
