"""`TableInputs`: a table's encoded columns (`TableBatch`) to a DCN's input x0, one block
per column; `build_table_dcn`, the DCN on top of it; and `table_dcn_size`, its size unbuilt."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import cast

import torch
from torch import nn

from dcnrank.data.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.data.table_batch import TableBatch
from dcnrank.models.config import DCNConfig
from dcnrank.models.dcn import DCN, build_dcn
from dcnrank.models.feature_embedding import FeatureEmbedding
from dcnrank.models.size import (
    INDEX_BYTES,
    TRAINING_ON_CPU,
    MemoryCheck,
    ModelSize,
    SizePart,
    builds_on_meta,
    check_model_fits,
    network_parts,
)

__all__ = ["TableInputs", "build_table_dcn", "table_dcn_size"]


class TableInputs(nn.Module):
    """Maps a `TableBatch` to `x0 (B, d)`: one embedding-sized block per input column.

    - categorical column `c`: its embedding row, `E_c` wide. Columns of one width
      share one fused `FeatureEmbedding` table (one gather for all of them).
    - numeric column `j` with standardised value `v` and missing flag `m`:
      `e_j = v'·w_j + m·u_j + b_j` with `v' = m ? default_j : v`, `E` wide. The
      learned `default_j` replaces a missing value and `u_j` lets the flag itself
      move the block; each numeric column gets its own block, so the cross layer's
      `W` keeps one `E × E` sub-block per pair of columns.
    - multi-hot column: `nn.EmbeddingBag(mode=pooling)` over its items' rows,
      padding excluded (an empty row gives zeros), `E_c` wide.

    Blocks are laid out categorical columns first (grouped by width, each group in
    spec order), then numeric, then multi-hot columns; :attr:`blocks` lists them.

    Args:
        spec: the feature spec.
        table_sizes: embedding rows (OOV row included) of every categorical and
            multi-hot column (`TableEncoder.table_sizes`).
        embedding_dim: int ≥ 1, the width `E` of numeric blocks and of every column
            whose spec leaves `embedding_dim` unset.

    Shape:
        `TableBatch` of B rows -> `(B, d)`, `d = Σ block widths`.

    Raises:
        ValueError: if a size is missing or not a positive int, or `embedding_dim` is not.

    Example:
        >>> from dcnrank.data.feature_spec import FeatureSpec, NumericColumn, CategoricalColumn
        >>> spec = FeatureSpec((NumericColumn("x"), CategoricalColumn("c", embedding_dim=3)), label="y", task="binary")
        >>> inputs = TableInputs(spec, {"c": 5}, embedding_dim=2)
        >>> inputs.blocks, inputs.out_features
        ((('c', 3), ('x', 2)), 5)
        >>> batch = TableBatch(torch.tensor([[4], [0]]), torch.zeros(2, 1), torch.tensor([[False], [True]]))
        >>> inputs(batch).shape
        torch.Size([2, 5])
    """

    def __init__(self, spec: FeatureSpec, table_sizes: Mapping[str, int], embedding_dim: int) -> None:
        super().__init__()
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"`embedding_dim` must be a positive int. Received: embedding_dim={embedding_dim!r}")
        wanted = [c.name for c in spec.columns if not isinstance(c, NumericColumn)]
        given = {name: table_sizes.get(name) for name in wanted}
        bad = {n: s for n, s in given.items() if isinstance(s, bool) or not isinstance(s, int) or s < 1}
        if bad or set(table_sizes) - set(wanted):
            raise ValueError(
                f"`table_sizes` must give a positive int for exactly the columns {wanted}. "
                f"Received: {dict(table_sizes)!r:.300}"
            )
        sizes = {name: int(table_sizes[name]) for name in wanted}
        self.embedding_dim = embedding_dim
        categorical = [c for c in spec.columns if isinstance(c, CategoricalColumn)]
        numeric = [c for c in spec.columns if isinstance(c, NumericColumn)]
        multi_hot = [c for c in spec.columns if isinstance(c, MultiHotColumn)]
        self.num_numeric = len(numeric)

        def width(column: CategoricalColumn | MultiHotColumn) -> int:
            return column.embedding_dim or embedding_dim

        # One fused table per distinct width; `positions` picks the group's columns of `categorical`.
        groups: dict[int, list[int]] = {}
        for j, column in enumerate(categorical):
            groups.setdefault(width(column), []).append(j)
        self.embeddings = nn.ModuleList()
        self._group_positions: list[str | None] = []
        blocks: list[tuple[str, int]] = []
        for g, (dim, positions) in enumerate(groups.items()):
            self.embeddings.append(FeatureEmbedding([sizes[categorical[j].name] for j in positions], dim))
            if positions == list(range(len(categorical))):
                self._group_positions.append(None)  # every column, in order: no gather needed
            else:
                name = f"_positions_{g}"
                self.register_buffer(name, torch.tensor(positions, dtype=torch.long), persistent=False)
                self._group_positions.append(name)
            blocks += [(categorical[j].name, dim) for j in positions]
        if numeric:
            self.numeric_weight = nn.Parameter(torch.empty(len(numeric), embedding_dim))  # w_j
            self.missing_weight = nn.Parameter(torch.empty(len(numeric), embedding_dim))  # u_j
            self.numeric_bias = nn.Parameter(torch.zeros(len(numeric), embedding_dim))  # b_j
            self.missing_default = nn.Parameter(torch.zeros(len(numeric)))  # default_j
            blocks += [(c.name, embedding_dim) for c in numeric]
        self.bags = nn.ModuleList(
            nn.EmbeddingBag(sizes[c.name] + 1, width(c), mode=c.pooling, padding_idx=sizes[c.name]) for c in multi_hot
        )
        blocks += [(c.name, width(c)) for c in multi_hot]
        self.blocks: tuple[tuple[str, int], ...] = tuple(blocks)
        self.reset_parameters()

    @property
    def out_features(self) -> int:
        """`d`, the width of x0."""
        return sum(width for _, width in self.blocks)

    def reset_parameters(self) -> None:
        """Embeddings `U(-0.05, 0.05)` as Keras' (padding rows zero); numeric projections
        Glorot-uniform for a `1 → E` dense kernel; biases and defaults zero."""
        for embedding in self.embeddings:
            cast(FeatureEmbedding, embedding).reset_parameters()
        if self.num_numeric:
            limit = math.sqrt(6.0 / (1 + self.embedding_dim))
            nn.init.uniform_(self.numeric_weight, -limit, limit)
            nn.init.uniform_(self.missing_weight, -limit, limit)
            nn.init.zeros_(self.numeric_bias)
            nn.init.zeros_(self.missing_default)
        for bag in self._bag_list():
            nn.init.uniform_(bag.weight, -0.05, 0.05)
            with torch.no_grad():
                bag.weight[cast(int, bag.padding_idx)].zero_()

    def _bag_list(self) -> list[nn.EmbeddingBag]:
        return [cast(nn.EmbeddingBag, bag) for bag in self.bags]

    def forward(self, batch: TableBatch) -> torch.Tensor:
        parts = []
        for embedding, positions in zip(self.embeddings, self._group_positions, strict=True):
            indices = batch.categorical if positions is None else batch.categorical[:, getattr(self, positions)]
            parts.append(embedding(indices))  # (B, F_g·E_g)
        if self.num_numeric:
            missing = batch.missing.to(batch.numeric.dtype)  # (B, Fn)
            values = torch.where(batch.missing, cast(torch.Tensor, self.missing_default), batch.numeric)  # (B, Fn)
            blocks = (
                values.unsqueeze(-1) * self.numeric_weight  # (B, Fn, E)
                + missing.unsqueeze(-1) * self.missing_weight
                + self.numeric_bias
            )
            parts.append(blocks.flatten(1))  # (B, Fn·E)
        for bag, items in zip(self._bag_list(), batch.multi_hot, strict=True):
            rows = torch.where(items < 0, cast(int, bag.padding_idx), items)  # (B, L)
            parts.append(bag(rows))  # (B, E_c)
        return torch.cat(parts, dim=-1)  # (B, d)


def _positive(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def table_dcn_size(config: DCNConfig, spec: FeatureSpec, table_sizes: Mapping[str, int]) -> ModelSize:
    """The size of `build_table_dcn(config, spec, table_sizes)`, counted without building it.

    One part per categorical and multi-hot column (its rows × its width, named by the
    spec's `hash_buckets` or the column's vocabulary, and the `embedding_dim` that
    applies), one for the numeric columns, then the cross, deep and head parts of
    `network_parts`. A malformed size counts nothing: the builder refuses it.

    Args:
        config: the architecture.
        spec: the feature spec.
        table_sizes: embedding rows per categorical and multi-hot column.

    Returns:
        The model's parts.

    Example:
        >>> from dcnrank.data.feature_spec import FeatureSpec, CategoricalColumn
        >>> spec = FeatureSpec((CategoricalColumn("c", hash_buckets=2_000_000_000),), label="y", task="binary")
        >>> size = table_dcn_size(DCNConfig(embedding_dim=4096), spec, {"c": 2_000_000_001})
        >>> size.parts[0].setting
        'columns.c.hash_buckets=2000000000 × model.embedding_dim=4096'
    """
    dim = _positive(config.embedding_dim)
    parts = []
    width = 0
    widths_used: list[str] = []
    categorical_widths = {c.embedding_dim or dim for c in spec.columns if isinstance(c, CategoricalColumn)}
    # a categorical column's row offset, and its position when the columns split into width groups
    index_bytes = INDEX_BYTES * (2 if len(categorical_widths) > 1 else 1)
    for column in spec.columns:
        if isinstance(column, NumericColumn):
            continue
        rows = _positive(table_sizes.get(column.name))
        column_dim = _positive(column.embedding_dim) or dim
        rows_setting = (
            f"columns.{column.name}.hash_buckets={column.hash_buckets}"
            if isinstance(column, CategoricalColumn) and column.hash_buckets is not None
            else f"column {column.name!r}'s {rows:,}-row vocabulary"
        )
        dim_setting = (
            f"columns.{column.name}.embedding_dim={column.embedding_dim}"
            if column.embedding_dim is not None
            else f"model.embedding_dim={config.embedding_dim}"
        )
        widths_used.append(dim_setting)
        multi_hot = isinstance(column, MultiHotColumn)
        rows += multi_hot  # a multi-hot bag's padding row
        parts.append(SizePart(f"{rows_setting} × {dim_setting}", rows * column_dim, 0 if multi_hot else index_bytes))
        width += column_dim
    numeric = sum(isinstance(column, NumericColumn) for column in spec.columns)
    if numeric:
        parts.append(
            SizePart(f"{numeric} numeric columns × model.embedding_dim={config.embedding_dim}", (3 * dim + 1) * numeric)
        )
        width += numeric * dim
        widths_used.append(f"model.embedding_dim={config.embedding_dim}")
    note = f"{len(spec.columns)} columns: " + ", ".join(dict.fromkeys(widths_used))
    return ModelSize((*parts, *network_parts(config, width, note)))


def build_table_dcn(
    config: DCNConfig,
    spec: FeatureSpec,
    table_sizes: Mapping[str, int],
    memory_check: MemoryCheck | None = TRAINING_ON_CPU,
) -> DCN:
    """A DCN reading a table: `DCN(inputs=TableInputs(...), in_features=d, cross, deep, structure)`.

    The cross and deep networks are the ones `build_dcn` makes for `d` dense inputs,
    so every structure and cross type of `DCNConfig` works here. Before anything is
    allocated, the size (`table_dcn_size`) is checked against memory
    (`check_model_fits`); a meta-device build is never refused.

    Args:
        config: the architecture; `embedding_dim` is the default block width.
        spec: the feature spec.
        table_sizes: embedding rows per categorical and multi-hot column
            (`TableEncoder.table_sizes`).
        memory_check: how to check the size against memory (`MemoryCheck`), or None
            for no check. Defaults to training on the CPU.

    Returns:
        A freshly initialised DCN taking `TableBatch` inputs and returning `(B,)`
        (logits for a binary task).

    Raises:
        ValueError: as `TableInputs`; also, naming the settings responsible, if the
            model does not fit in memory.

    Example:
        >>> from dcnrank.data.feature_spec import FeatureSpec, NumericColumn
        >>> spec = FeatureSpec((NumericColumn("x"), NumericColumn("z")), label="y", task="regression")
        >>> model = build_table_dcn(DCNConfig(structure="cross_only", embedding_dim=4), spec, {})
        >>> no_categories, missing = torch.zeros(3, 0, dtype=torch.long), torch.zeros(3, 2, dtype=torch.bool)
        >>> batch = TableBatch(no_categories, torch.randn(3, 2), missing)
        >>> model(batch).shape
        torch.Size([3])
    """
    if memory_check is not None and not builds_on_meta():
        check_model_fits(table_dcn_size(config, spec, table_sizes), memory_check)
    inputs = TableInputs(spec, table_sizes, config.embedding_dim)
    width = inputs.out_features
    skeleton = build_dcn(config, dense_features=width, memory_check=None)  # checked whole above
    return DCN(inputs, width, skeleton.cross, skeleton.deep, config.structure)
