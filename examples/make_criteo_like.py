"""Write a synthetic click-through table in Criteo's layout, with planted feature crosses.

Columns, as in the Criteo display-advertising data: `label` (1 = click), `I1`…`I13`
(counts, some missing, `I2` may be −1 as in Criteo) and `C1`…`C26` (8-hex-digit
category hashes of very different cardinalities, Zipf-distributed, some missing).

The click logit is a sum of main effects and four planted crosses that a linear model
cannot represent but a cross layer can (`x0 ⊙ (W x)` holds every product of two input
blocks):

- C1 × C2: a rank-4 bilinear form `u[C1] · v[C2]` ("publisher" × "advertiser");
- I1 × I3: the product of the two standardised `log1p` counts;
- I5 × C9: the count's slope flips sign with C9's value;
- C14 × C20: a table of effects per (C14, C20) pair.

The "world" (cardinalities, effects, hex codes) depends only on `--world-seed`, so a
training file and a test file drawn with different `--sample-seed`s share it:

    python examples/make_criteo_like.py --rows 200000 --out data/train.parquet
    python examples/make_criteo_like.py --rows 50000 --sample-seed 1 --out data/test.parquet

The format follows the extension: .parquet, .csv or .tsv (optionally .gz). Rows are drawn
and written `--chunk-rows` at a time (Parquet row groups of `--row-group-rows`), so a file of
tens of millions of rows takes little memory:

    python examples/make_criteo_like.py --rows 10000000 --out data/big.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

# So that the script runs from a source checkout without installing dcnrank.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dcnrank.data.sources.table_readers import table_format  # noqa: E402
from dcnrank.data.streaming.table_writer import TableWriter  # noqa: E402
from dcnrank.metrics.classification import auc, logloss  # noqa: E402

NUMERIC = tuple(f"I{i}" for i in range(1, 14))
CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))
# Distinct values per categorical column: a few tiny, most in the hundreds to thousands,
# some large enough that min_count or hash_buckets matter.
CARDINALITIES = (
    800, 400, 20000, 3000, 200, 24, 6000, 500, 3, 12000, 2500, 9000, 1500,
    27, 5000, 15000, 10, 2000, 1200, 4, 8000, 15, 12, 4000, 60, 3000,
)  # fmt: skip
NUMERIC_MISSING = (0.45, 0.0, 0.2, 0.2, 0.03, 0.2, 0.04, 0.0, 0.04, 0.45, 0.04, 0.75, 0.2)
CATEGORICAL_MISSING = (
    0.0, 0.0, 0.03, 0.03, 0.0, 0.12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.03, 0.0,
    0.0, 0.0, 0.03, 0.0, 0.0, 0.44, 0.44, 0.03, 0.76, 0.0, 0.03, 0.44, 0.44,
)  # fmt: skip
TARGET_CTR = 0.25


def make_world(seed: int) -> dict:
    """Everything that is fixed across samples: codes, effects, crosses."""
    rng = np.random.default_rng(seed)
    world: dict = {"codes": [], "main": [], "log_mu": rng.uniform(0.5, 3.0, len(NUMERIC))}
    for cardinality in CARDINALITIES:
        codes = rng.choice(2**32, size=cardinality, replace=False)
        world["codes"].append(np.array([f"{c:08x}" for c in codes]))
        world["main"].append(rng.normal(0.0, 0.25, cardinality))
    world["numeric_weight"] = rng.normal(0.0, 0.2, len(NUMERIC))
    world["u"] = rng.normal(0.0, 0.6, (CARDINALITIES[0], 4))  # C1
    world["v"] = rng.normal(0.0, 0.6, (CARDINALITIES[1], 4))  # C2
    world["c9_slope"] = np.array([1.0, -1.0, 0.0])  # I5 × C9
    world["c14_c20"] = rng.normal(0.0, 0.9, (CARDINALITIES[13], CARDINALITIES[19]))
    return world


def zipf_ids(rng: np.random.Generator, cardinality: int, n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, cardinality + 1) ** 1.05
    return rng.choice(cardinality, size=n, p=weights / weights.sum())


def make_table(
    rows: int, world: dict, seed: int | np.random.Generator, calibration: dict | None = None
) -> tuple[pa.Table, np.ndarray, dict]:
    """`rows` impressions drawn from `world`, each one's true click probability, and the
    calibration (count standardisation, logit shift) to reuse for later chunks."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ids = [zipf_ids(rng, cardinality, rows) for cardinality in CARDINALITIES]
    counts = np.floor(np.expm1(np.abs(rng.normal(world["log_mu"], 1.0, (rows, len(NUMERIC)))))).astype(np.float64)
    counts[:, 1] -= (rng.random(rows) < 0.1).astype(np.float64) * (counts[:, 1] + 1)  # I2 is sometimes -1
    numeric_missing = rng.random((rows, len(NUMERIC))) < np.array(NUMERIC_MISSING)
    categorical_missing = rng.random((rows, len(CATEGORICAL))) < np.array(CATEGORICAL_MISSING)

    scaled = np.log1p(np.maximum(counts, 0.0))
    if calibration is None:
        calibration = {"mean": scaled.mean(axis=0), "std": scaled.std(axis=0)}
    scaled = (scaled - calibration["mean"]) / calibration["std"]
    scaled[numeric_missing] = 0.0  # a missing count contributes nothing
    logit = scaled @ world["numeric_weight"]
    for j, column_ids in enumerate(ids):
        logit += np.where(categorical_missing[:, j], 0.0, world["main"][j][column_ids])
    logit += 1.5 * np.einsum("nk,nk->n", world["u"][ids[0]], world["v"][ids[1]])  # C1 × C2
    logit += 0.8 * scaled[:, 0] * scaled[:, 2]  # I1 × I3
    logit += 0.8 * scaled[:, 4] * world["c9_slope"][ids[8]]  # I5 × C9
    logit += np.where(categorical_missing[:, 19], 0.0, world["c14_c20"][ids[13], ids[19]])  # C14 × C20
    # Shift so that the mean click-through rate is close to Criteo's (found on the first chunk).
    if "shift" not in calibration:
        low, high = -10.0, 10.0
        for _ in range(50):
            middle = (low + high) / 2
            low, high = (middle, high) if (1 / (1 + np.exp(-(logit + middle)))).mean() < TARGET_CTR else (low, middle)
        calibration["shift"] = low
    probability = 1 / (1 + np.exp(-(logit + calibration["shift"])))
    label = (rng.random(rows) < probability).astype(np.int64)

    columns: dict[str, pa.Array] = {"label": pa.array(label)}
    for j, name in enumerate(NUMERIC):
        columns[name] = pa.array(counts[:, j].astype(np.int64), mask=numeric_missing[:, j])
    for j, name in enumerate(CATEGORICAL):
        columns[name] = pa.array(world["codes"][j][ids[j]], mask=categorical_missing[:, j])
    return pa.table(columns), probability, calibration


def write_chunks(args: argparse.Namespace) -> tuple[int, np.ndarray, np.ndarray]:
    """Draw and write the rows chunk by chunk; the labels and true probabilities of all rows."""
    world, rng = make_world(args.world_seed), np.random.default_rng(args.sample_seed)
    labels, probabilities, calibration = [], [], None
    written = 0
    with TableWriter(args.out, row_group_rows=args.row_group_rows) as writer:
        while written < args.rows:
            rows = min(args.chunk_rows, args.rows - written)
            table, probability, calibration = make_table(rows, world, rng, calibration)
            writer.write(table)
            labels.append(table.column("label").to_numpy().astype(np.int8))
            probabilities.append(probability.astype(np.float32))
            written += rows
    return written, np.concatenate(labels), np.concatenate(probabilities)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="impressions to write (default: 200000)")
    parser.add_argument("--out", required=True, help="output file: .parquet, .csv or .tsv (optionally .gz)")
    parser.add_argument("--world-seed", type=int, default=0, help="seeds codes, effects and crosses (default: 0)")
    parser.add_argument("--sample-seed", type=int, default=0, help="seeds the rows drawn (default: 0)")
    parser.add_argument("--chunk-rows", type=int, default=500_000, help="rows drawn at a time (default: 500000)")
    parser.add_argument(
        "--row-group-rows", type=int, default=131_072, help="rows per Parquet row group (default: 131072)"
    )
    args = parser.parse_args(argv)
    for name in ("rows", "chunk_rows", "row_group_rows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    table_format(args.out)  # an unknown suffix fails before any work
    rows, label, probability = write_chunks(args)
    columns = 1 + len(NUMERIC) + len(CATEGORICAL)
    print(f"wrote {rows:,} rows × {columns} columns to {args.out} (click rate {label.mean():.3f})")
    # What a perfect model (the true probabilities) scores on these rows: the ceiling.
    ceiling = f"AUC {auc(label, probability):.4f}, logloss {logloss(label, probability):.4f}"
    print(f"the true click probabilities score {ceiling}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
