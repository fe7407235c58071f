"""Train on a table file larger than memory: one streaming pass fits the encoder and
holds out validation rows, then every epoch streams the training rows through a
bounded shuffle buffer.

Memory holds one chunk, the shuffle buffer, the validation rows (at most
`validation_max_rows`) and the vocabularies; it does not grow with the file's rows.

The hold-out is `data.validation_split`'s ``"random"`` policy (`held_out`), decided row by
row from the row's number in the file and a seed, so it is the same in every pass, on
every rank, whatever order the chunks are read in, and the same as a run that reads the
file whole: a row is held out when its hash falls below `validation_fraction`, until
`validation_max_rows` rows are held out; every later row trains.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from dcnrank.data.encoding.table_encoder import EncodedRows, TableEncoder, checked_groups, checked_labels, parse_columns
from dcnrank.data.encoding.table_statistics import LabelRange, TableStatistics
from dcnrank.data.holdout import check_held_out, held_out
from dcnrank.data.spec.feature_spec import FeatureSpec
from dcnrank.data.streaming.table_stream import DEFAULT_BLOCK_ROWS, TableStream
from dcnrank.prefetch import prefetched
from dcnrank.progress import progress_enabled
from dcnrank.row_messages import rows_from
from dcnrank.world import World

__all__ = ["StreamedTable", "TrainingStream", "prefetched", "shuffled_batches"]

T = TypeVar("T")


def shuffled_batches(
    chunks: Iterable[EncodedRows], batch_size: int, buffer_rows: int, generator: torch.Generator | None
) -> Generator[EncodedRows, None, None]:
    """Batches of `batch_size` rows from `chunks`, shuffled through a buffer of `buffer_rows` rows.

    The buffer fills with the first rows; then each chunk of `n` rows swaps places
    with `n` rows drawn at random from the buffer, which leave as batches (each row is
    copied in once and out once). At the end the buffer leaves in a random order, the
    last batch possibly smaller. Without a generator rows keep their order.

    Example:
        >>> from dcnrank.data.encoding.table_batch import TableBatch
        >>> def rows(a, b):
        ...     n = b - a
        ...     return EncodedRows(TableBatch(torch.arange(a, b).view(-1, 1), torch.zeros(n, 0),
        ...                                   torch.zeros(n, 0, dtype=torch.bool)), torch.zeros(n))
        >>> out = list(shuffled_batches([rows(0, 5), rows(5, 10)], 4, 4, torch.Generator().manual_seed(0)))
        >>> [len(b) for b in out], sorted(torch.cat([b.features.categorical for b in out]).view(-1).tolist())
        ([4, 4, 2], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    """
    buffer: EncodedRows | None = None
    pending: EncodedRows | None = None  # rows that left, fewer than a batch

    def leave(rows: EncodedRows) -> Iterator[EncodedRows]:
        nonlocal pending
        if pending is not None:
            rows = EncodedRows.concat([pending, rows])
        full = len(rows) // batch_size * batch_size
        for start in range(0, full, batch_size):
            yield rows[start : start + batch_size]
        pending = rows[full:] if full < len(rows) else None

    for chunk in chunks:
        if generator is None:
            yield from leave(chunk)
            continue
        if buffer is None or len(buffer) < buffer_rows:  # filling
            buffer = chunk if buffer is None else EncodedRows.concat([buffer, chunk])
            if len(buffer) > buffer_rows:
                order = torch.randperm(len(buffer), generator=generator)
                yield from leave(buffer.take(order[buffer_rows:]))
                buffer = buffer.take(order[:buffer_rows])
            continue
        for start in range(0, len(chunk), buffer_rows):  # swap in at most a buffer at a time
            part = chunk[start : start + buffer_rows]
            slots = torch.randperm(buffer_rows, generator=generator)[: len(part)]
            leaving = buffer.take(slots)
            buffer = buffer.put(slots, part)
            yield from leave(leaving)
    if buffer is not None:
        yield from leave(buffer.take(torch.randperm(len(buffer), generator=generator)))
    if pending is not None:
        yield pending


@dataclass(frozen=True, eq=False)
class StreamedTable:
    """What one streaming pass over a table file learned.

    Build it with :meth:`scan`; :meth:`training` then gives the per-epoch batches.

    Args:
        stream: the file.
        spec: the feature spec.
        encoder: vocabularies and statistics of the training rows.
        validation: the held-out rows, encoded.
        fraction, seed: the hold-out draw (see :func:`held_out`).
        holdout_end: rows from this one on all train (the validation cap was reached).
        unit_train_rows: training rows in each unit of the file.
        label_mean: the mean label over all rows of the file.
        fit_label_mean: the mean label over the training rows (the levers' offset).
        label_min, label_max: the smallest and largest training label (the clamp's range).
    """

    stream: TableStream
    spec: FeatureSpec
    encoder: TableEncoder
    validation: EncodedRows
    fraction: float
    seed: int
    holdout_end: int
    unit_train_rows: tuple[int, ...]
    label_mean: float
    fit_label_mean: float
    label_min: float
    label_max: float

    @property
    def train_rows(self) -> int:
        return sum(self.unit_train_rows)

    @property
    def rows(self) -> int:
        return self.train_rows + len(self.validation)

    @classmethod
    def scan(
        cls,
        spec: FeatureSpec,
        path: str | Path,
        *,
        validation_fraction: float = 0.1,
        validation_max_rows: int = 100_000,
        seed: int = 0,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        progress: bool | None = False,
    ) -> StreamedTable:
        """Read `path` once: check every cell against `spec`, hold out validation rows,
        count vocabularies and numeric statistics over the training rows.

        Raises:
            FileNotFoundError, ValueError: for a missing file or an unknown suffix.
            TableDataError: on a missing column or a cell that breaks the spec, naming
                its row in the file.
            ValueError: if no row is held out or none is left to train on.
        """
        stream = TableStream(path, block_rows=block_rows)
        source = str(stream.path)
        spec.check_columns(stream.column_names, source, need_label=True)
        stream.columns = list(spec.training_columns)
        statistics = TableStatistics(spec)
        validation_parts: list[pa.Table] = []
        held = 0
        label_sum = 0.0
        fit_labels = LabelRange()
        holdout_end: int | None = None
        unit_rows: dict[int, int] = {}  # training rows per unit
        total_rows: dict[int, int] = {}  # all rows per unit
        total = stream.num_rows if stream.format == "parquet" else None
        shown = progress_enabled(progress)
        with (
            tqdm(total=total, desc="scan", unit="rows", unit_scale=True, leave=False, disable=not shown) as bar,
            closing(stream.chunks()) as chunks,  # an error in a chunk closes the file at once
        ):
            for chunk in chunks:
                n = chunk.table.num_rows
                with rows_from(chunk.first_row):
                    parsed = parse_columns(spec, chunk.table, source, with_label=True)
                    labels = checked_labels(spec, parsed[spec.label], source)  # type: ignore[arg-type]
                    label_sum += float(labels.sum())
                    if spec.group is not None:
                        checked_groups(spec.group, parsed[spec.group], source)  # type: ignore[arg-type]
                    hold = held_out(chunk.first_row, n, validation_fraction, seed)
                    if holdout_end is not None:
                        hold[:] = False
                    elif held + int(hold.sum()) >= validation_max_rows:
                        last = np.flatnonzero(hold)[validation_max_rows - held - 1]
                        hold[last + 1 :] = False
                        holdout_end = chunk.first_row + int(last) + 1
                    held += int(hold.sum())
                    statistics.add(parsed, ~hold, source)
                    fit_labels.add(labels[~hold])
                if hold.any():
                    validation_parts.append(chunk.table.filter(pa.array(hold)))
                unit_rows[chunk.unit] = unit_rows.get(chunk.unit, 0) + n - int(hold.sum())
                total_rows[chunk.unit] = total_rows.get(chunk.unit, 0) + n
                bar.update(n)
        check_held_out(held + statistics.rows, held, validation_fraction, what=source)
        encoder = TableEncoder.from_statistics(statistics, source)
        validation = encoder.encode(pa.concat_tables(validation_parts), source=f"{source} (validation rows)")
        unit_count = max(total_rows) + 1
        stream.remember_unit_rows([total_rows.get(u, 0) for u in range(unit_count)])
        units = tuple(unit_rows.get(u, 0) for u in range(unit_count))
        end = holdout_end if holdout_end is not None else held + statistics.rows
        label_mean = label_sum / (held + statistics.rows)
        return cls(
            stream, spec, encoder, validation, validation_fraction, seed, end, units, label_mean,
            fit_labels.mean, fit_labels.low, fit_labels.high,
        )  # fmt: skip

    def training(
        self, batch_size: int, *, shuffle: bool, shuffle_buffer: int, seed: int, world: World | None = None
    ) -> TrainingStream:
        """The training rows as a `BatchStream` for this rank (see `TrainingStream`)."""
        return TrainingStream(self, batch_size, shuffle, shuffle_buffer, seed, world or World())


class TrainingStream:
    """The training rows of a `StreamedTable`, epoch by epoch, for one rank (a `BatchStream`).

    Each epoch reads the file's units (Parquet row groups in a seeded shuffled order,
    CSV blocks front to back); unit `k` of the order goes to rank `k mod world.size`.
    A rank encodes its units' training rows chunk by chunk and shuffles them through a
    buffer of `shuffle_buffer` rows into batches of `batch_size / world.size` rows.
    Every rank runs the same number of batches per epoch, the fewest any rank has, so
    DDP's gradient averages line up; the rows past it (less than a batch per unit
    imbalance) wait for the next epoch's order.

    Raises:
        ValueError: if `batch_size` is not a multiple of the world size, or the file
            has fewer units than ranks.
    """

    def __init__(
        self, table: StreamedTable, batch_size: int, shuffle: bool, shuffle_buffer: int, seed: int, world: World
    ) -> None:
        if batch_size % world.size:
            raise ValueError(
                f"train.batch_size={batch_size} (the global batch) must be a multiple of the {world.size} ranks"
            )
        if len(table.unit_train_rows) < world.size:
            raise ValueError(
                f"{table.stream.path} has {len(table.unit_train_rows)} row group(s)/block(s) to share among "
                f"{world.size} ranks; write it with more row groups (or use fewer ranks)"
            )
        self.table, self.shuffle, self.shuffle_buffer, self.seed, self.world = (
            table, shuffle, shuffle_buffer, seed, world,
        )  # fmt: skip
        self.local_batch = batch_size // world.size

    def _epoch_seed(self, epoch: int) -> int:
        return int(hashlib.sha256(f"epoch:{self.seed}:{epoch}".encode()).hexdigest()[:15], 16)

    def _units(self, epoch: int, rank: int) -> list[int]:
        order = self.table.stream.unit_order(self._epoch_seed(epoch) if self.shuffle else None)
        return order[rank :: self.world.size]

    def num_batches(self, epoch: int) -> int:
        rows = [sum(self.table.unit_train_rows[u] for u in self._units(epoch, r)) for r in range(self.world.size)]
        return min(math.ceil(r / self.local_batch) for r in rows)

    def batches(self, epoch: int, skip: int) -> Iterator[tuple[Any, torch.Tensor, float]]:
        generator = None
        if self.shuffle:
            generator = torch.Generator().manual_seed(self._epoch_seed(epoch) + self.world.rank)
        chunks = prefetched(self._chunks(epoch))
        rows = shuffled_batches(chunks, self.local_batch, self.shuffle_buffer, generator)
        with closing(chunks), closing(rows):  # on any exit: stop the prefetch thread and close the file
            for batch in itertools.islice(rows, skip, self.num_batches(epoch)):
                if batch.labels is None:  # pragma: no cover - the scan requires the label column
                    raise ValueError("training rows without labels")
                yield batch.features, batch.labels, 1.0

    def _chunks(self, epoch: int) -> Generator[EncodedRows, None, None]:
        table = self.table
        source = str(table.stream.path)
        units = self._units(epoch, self.world.rank)
        if table.stream.format != "parquet":
            units = sorted(units)
        with closing(table.stream.chunks(units)) as chunks:
            for chunk in chunks:
                n = chunk.table.num_rows
                train = ~held_out(chunk.first_row, n, table.fraction, table.seed)
                train[max(0, table.holdout_end - chunk.first_row) :] = True
                with rows_from(chunk.first_row):
                    encoded = table.encoder.encode(chunk.table, source=source)
                yield encoded if train.all() else encoded.take(torch.from_numpy(np.flatnonzero(train)))

    def fingerprint(self) -> dict[str, Any]:
        stream = self.table.stream
        encoder = hashlib.sha256(json.dumps(self.table.encoder.to_dict(), sort_keys=True).encode()).hexdigest()
        return {
            "file": stream.path.name,
            "bytes": stream.path.stat().st_size,
            "unit_train_rows": list(self.table.unit_train_rows),
            "encoder": encoder,
            "holdout": [self.table.fraction, self.table.seed, self.table.holdout_end],
            "shuffle": [self.shuffle, self.shuffle_buffer, self.seed],
            "world": self.world.size,
        }
