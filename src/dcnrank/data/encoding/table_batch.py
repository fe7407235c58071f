"""`TableBatch`: the encoded feature tensors of N table rows, sliced and gathered like a tensor."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["INDEX_DTYPES", "PADDING", "TableBatch", "index_dtype"]

# Fills the multi-hot index matrices past a row's last item (0 is the OOV row, a real item).
PADDING = -1

# The dtypes of embedding rows: int32 where every table fits it (half the memory of int64).
INDEX_DTYPES = (torch.int32, torch.int64)


def index_dtype(largest_table: int) -> torch.dtype:
    """The dtype of embedding rows into tables of at most `largest_table` rows: int32 when
    they fit it, else int64.

    Example:
        >>> index_dtype(10_000_000), index_dtype(2**31)
        (torch.int32, torch.int64)
    """
    return torch.int32 if largest_table <= torch.iinfo(torch.int32).max else torch.int64


@dataclass(frozen=True, eq=False)
class TableBatch:
    """Encoded inputs of N rows, by feature type; what `TableInputs` takes.

    `Trainer` treats it as it treats a tensor: `len(batch)`, `batch[start:end]`,
    `batch[index_tensor]` and `batch.device`, each gathering the same rows of every
    tensor, so batches cost no per-row Python.

    Args:
        categorical: int32 or int64 `(N, Fc)` (:data:`INDEX_DTYPES`), embedding rows of
            the categorical columns (0 = out of vocabulary or missing).
        numeric: float32 `(N, Fn)`, standardised numeric values (0 where missing).
        missing: bool `(N, Fn)`, True where a numeric value is missing.
        multi_hot: per multi-hot column, int32 or int64 `(N, L_j)`: a row's item rows,
            then :data:`PADDING` (−1) up to the longest row's length `L_j ≥ 1`.

    Raises:
        ValueError: if a dtype or rank is wrong or the tensors disagree on N.

    Example:
        >>> batch = TableBatch(torch.tensor([[1], [2], [0]]), torch.zeros(3, 2), torch.zeros(3, 2, dtype=torch.bool),
        ...                    (torch.tensor([[1, -1], [2, 3], [-1, -1]]),))
        >>> len(batch[1:]), batch[torch.tensor([2, 0])].categorical.tolist()
        (2, [[0], [1]])
    """

    categorical: torch.Tensor
    numeric: torch.Tensor
    missing: torch.Tensor
    multi_hot: tuple[torch.Tensor, ...] = ()

    def __post_init__(self) -> None:
        multi_hot = tuple(self.multi_hot)
        object.__setattr__(self, "multi_hot", multi_hot)
        checks = [
            ("categorical", self.categorical, INDEX_DTYPES),
            ("numeric", self.numeric, (torch.float32,)),
            ("missing", self.missing, (torch.bool,)),
            *((f"multi_hot[{j}]", t, INDEX_DTYPES) for j, t in enumerate(multi_hot)),
        ]
        rows = None
        for name, tensor, dtypes in checks:
            if not isinstance(tensor, torch.Tensor) or tensor.dtype not in dtypes or tensor.dim() != 2:
                raise ValueError(
                    f"`{name}` must be a 2-D {' or '.join(map(str, dtypes))} tensor. Received: {type(tensor).__name__} "
                    f"{getattr(tensor, 'dtype', '')} shape={tuple(getattr(tensor, 'shape', ()))}"
                )
            if rows is None:
                rows = tensor.shape[0]
            elif tensor.shape[0] != rows:
                raise ValueError(
                    f"every tensor must have {rows} rows, as `categorical`. Received: `{name}` has {tensor.shape[0]}"
                )
        if self.missing.shape != self.numeric.shape:
            raise ValueError(
                f"`missing` must have the shape of `numeric` {tuple(self.numeric.shape)}. "
                f"Received: {tuple(self.missing.shape)}"
            )

    def __len__(self) -> int:
        return int(self.categorical.shape[0])

    def __getitem__(self, index: slice | torch.Tensor) -> TableBatch:
        """The rows at `index` (a slice, or a 1-D integer tensor or boolean mask) of every tensor."""
        return TableBatch(
            self.categorical[index],
            self.numeric[index],
            self.missing[index],
            tuple(t[index] for t in self.multi_hot),
        )

    @staticmethod
    def concat(parts: list[TableBatch]) -> TableBatch:
        """The rows of `parts`, one after the other; multi-hot matrices are padded to the widest.

        Example:
            >>> a = TableBatch(torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0),
            ...                torch.zeros(1, 0, dtype=torch.bool), (torch.tensor([[1]]),))
            >>> b = TableBatch(torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0),
            ...                torch.zeros(1, 0, dtype=torch.bool), (torch.tensor([[2, 3]]),))
            >>> TableBatch.concat([a, b]).multi_hot[0].tolist()
            [[1, -1], [2, 3]]
        """
        if not parts:
            raise ValueError("`parts` must hold at least one TableBatch. Received: []")
        multi_hot = []
        for j in range(len(parts[0].multi_hot)):
            width = max(p.multi_hot[j].shape[1] for p in parts)
            multi_hot.append(
                torch.cat(
                    [torch.nn.functional.pad(p.multi_hot[j], (0, width - p.multi_hot[j].shape[1]), value=PADDING)
                     for p in parts]
                )
            )  # fmt: skip
        return TableBatch(
            torch.cat([p.categorical for p in parts]),
            torch.cat([p.numeric for p in parts]),
            torch.cat([p.missing for p in parts]),
            tuple(multi_hot),
        )

    def put(self, index: torch.Tensor, other: TableBatch) -> TableBatch:
        """Overwrite the rows at `index` with `other`'s rows, in place where the shapes allow.

        A multi-hot matrix narrower than `other`'s is widened (a new tensor); the
        returned batch is the one to use afterwards.

        Example:
            >>> def rows(*values):
            ...     n = len(values)
            ...     no_numbers = torch.zeros(n, 0)
            ...     return TableBatch(torch.tensor(values).view(n, 1), no_numbers, no_numbers.bool())
            >>> batch, new = rows(1, 2, 3), rows(9)
            >>> batch.put(torch.tensor([1]), new).categorical.view(-1).tolist()
            [1, 9, 3]
        """
        multi_hot = []
        for mine, theirs in zip(self.multi_hot, other.multi_hot, strict=True):
            width = max(mine.shape[1], theirs.shape[1])
            if mine.shape[1] < width:  # a new, wider tensor
                mine = torch.nn.functional.pad(mine, (0, width - mine.shape[1]), value=PADDING)
            mine[index] = torch.nn.functional.pad(theirs, (0, width - theirs.shape[1]), value=PADDING)
            multi_hot.append(mine)
        self.categorical[index] = other.categorical
        self.numeric[index] = other.numeric
        self.missing[index] = other.missing
        return TableBatch(self.categorical, self.numeric, self.missing, tuple(multi_hot))

    @property
    def device(self) -> torch.device:
        return self.categorical.device

    def to(self, device: torch.device | str) -> TableBatch:
        """A copy whose tensors live on `device`."""
        return TableBatch(
            self.categorical.to(device),
            self.numeric.to(device),
            self.missing.to(device),
            tuple(t.to(device) for t in self.multi_hot),
        )
