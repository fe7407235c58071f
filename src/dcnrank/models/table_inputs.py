"""`TableInputs`: a table's encoded columns (`TableBatch`) to a DCN's input x0, one block
per column (plus the user and item histories); `build_table_dcn`, the DCN on top of it with
the recipe's levers; and `table_dcn_size`, its size unbuilt."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from dcnrank.config.model_config import LEVER_FLAGS, DCNConfig
from dcnrank.data.encoding.interactions import Interactions
from dcnrank.data.encoding.table_batch import TableBatch
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.models.bias_terms import OutputLevers
from dcnrank.models.dcn import DCN, build_dcn
from dcnrank.models.feature_embedding import FeatureEmbedding
from dcnrank.models.interaction_history import InteractionHistory
from dcnrank.models.size import (
    INDEX_BYTES,
    TRAINING_ON_CPU,
    MemoryCheck,
    ModelSize,
    SizePart,
    builds_on_meta,
    check_model_fits,
    history_part,
    network_parts,
)

__all__ = ["TableInputs", "TableLevers", "build_table_dcn", "network_config", "table_dcn_size", "table_levers"]

log = logging.getLogger(__name__)


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

    - user history (`user_history`, SVD++'s implicit feedback): for the row's user `u`
      and item `i` (the spec's `user` and `item` columns, read at
      `spec.role_positions()`), `Σ_{j ∈ N(u), j ≠ i} y_j / sqrt(max(1, |N(u) \\ {i}|))`
      over the items `N(u)` the user interacted with in the fit rows
      (`InteractionHistory`), `E` wide;
    - item history (`item_history`): the same over the users who interacted with the
      item, the row's user left out, `E` wide.

    Blocks are laid out categorical columns first (grouped by width, each group in
    spec order), then numeric, then multi-hot columns, then the user and item
    histories; :attr:`blocks` lists them. The histories are empty until
    :meth:`set_histories` fills them.

    Args:
        spec: the feature spec.
        table_sizes: embedding rows (OOV row included) of every categorical and
            multi-hot column (`TableEncoder.table_sizes`).
        embedding_dim: int ≥ 1, the width `E` of numeric blocks and of every column
            whose spec leaves `embedding_dim` unset.
        user_history: bool, append the user history block. Defaults to `False`.
        item_history: bool, append the item history block. Defaults to `False`.
        numeric_buckets: int, 0 or ≥ 2: each numeric block also adds the embedding of
            the value's bucket among `numeric_buckets` bins (`numeric_edges`, standard
            normal quantiles of the standardised value until :meth:`fit_numeric_buckets`
            sets the fit rows' quantiles). Defaults to 0 (none).

    Shape:
        `TableBatch` of B rows -> `(B, d)`, `d = Σ block widths`.

    Raises:
        ValueError: if a size is missing or not a positive int, or `embedding_dim` is not,
            or a history is asked for without the spec's `user` and `item` roles.

    Example:
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn, CategoricalColumn
        >>> spec = FeatureSpec((NumericColumn("x"), CategoricalColumn("c", embedding_dim=3)), label="y", task="binary")
        >>> inputs = TableInputs(spec, {"c": 5}, embedding_dim=2)
        >>> inputs.blocks, inputs.out_features
        ((('c', 3), ('x', 2)), 5)
        >>> batch = TableBatch(torch.tensor([[4], [0]]), torch.zeros(2, 1), torch.tensor([[False], [True]]))
        >>> inputs(batch).shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        spec: FeatureSpec,
        table_sizes: Mapping[str, int],
        embedding_dim: int,
        user_history: bool = False,
        item_history: bool = False,
        numeric_buckets: int = 0,
    ) -> None:
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
        self.numeric_buckets = numeric_buckets if numeric else 0
        if self.numeric_buckets:
            levels = torch.arange(1, numeric_buckets, dtype=torch.float64) / numeric_buckets
            edges = torch.special.ndtri(levels).to(torch.float32).expand(len(numeric), -1).clone()
            self.register_buffer("numeric_edges", edges)  # (Fn, buckets − 1), sorted
            self.bucket_embedding = nn.Parameter(torch.empty(len(numeric), numeric_buckets, embedding_dim))
        self.bags = nn.ModuleList(
            nn.EmbeddingBag(sizes[c.name] + 1, width(c), mode=c.pooling, padding_idx=sizes[c.name]) for c in multi_hot
        )
        blocks += [(c.name, width(c)) for c in multi_hot]
        self.user_history: InteractionHistory | None = None
        self.item_history: InteractionHistory | None = None
        if user_history or item_history:
            roles = spec.role_positions()
            if spec.user is None or spec.item is None:
                raise ValueError(
                    "`user_history` and `item_history` need the spec's `user` and `item` roles. "
                    f"Received: user={spec.user!r}, item={spec.item!r}"
                )
            self._user_position, self._item_position = roles["user"], roles["item"]
            users, items = sizes[spec.user], sizes[spec.item]
            if user_history:
                self.user_history = InteractionHistory(users, items, embedding_dim)
                blocks.append((f"history of {spec.user}", embedding_dim))
            if item_history:
                self.item_history = InteractionHistory(items, users, embedding_dim)
                blocks.append((f"history of {spec.item}", embedding_dim))
        self.blocks: tuple[tuple[str, int], ...] = tuple(blocks)
        self.reset_parameters()

    @property
    def out_features(self) -> int:
        """`d`, the width of x0."""
        return sum(width for _, width in self.blocks)

    @property
    def categorical_width(self) -> int:
        """How many leading columns of x0 are the categorical columns' embedding rows (their blocks come first)."""
        return sum(cast(FeatureEmbedding, embedding).out_features for embedding in self.embeddings)

    def categorical_embeddings(self) -> list[FeatureEmbedding]:
        """The categorical columns' embeddings, one per width group (`DCN`'s `embedding_l2` penalises them)."""
        return [cast(FeatureEmbedding, embedding) for embedding in self.embeddings]

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
        if self.numeric_buckets:
            nn.init.uniform_(self.bucket_embedding, -0.05, 0.05)
        for bag in self._bag_list():
            nn.init.uniform_(bag.weight, -0.05, 0.05)
            with torch.no_grad():
                bag.weight[cast(int, bag.padding_idx)].zero_()
        for history in (self.user_history, self.item_history):
            if history is not None:
                history.reset_parameters()

    @torch.no_grad()
    def set_histories(self, interactions: Interactions) -> None:
        """Fill the user history with the fit rows' user → item `interactions` and the
        item history with their transpose (each when present; a no-op without them).

        Raises:
            ValueError: if the interactions are not users × items of the spec's tables.

        Example:
            >>> from dcnrank.data.spec.feature_spec import FeatureSpec, CategoricalColumn
            >>> spec = FeatureSpec((CategoricalColumn("u"), CategoricalColumn("i")), label="y", task="regression",
            ...                    user="u", item="i")
            >>> inputs = TableInputs(spec, {"u": 3, "i": 4}, embedding_dim=2, item_history=True)
            >>> inputs.set_histories(Interactions.from_pairs(torch.tensor([1, 2]), torch.tensor([3, 3]), 3, 4))
            >>> inputs.item_history.interactions.pairs()  # item 3's users
            (tensor([3, 3]), tensor([1, 2]))
        """
        if self.user_history is not None:
            self.user_history.set_history(interactions)
        if self.item_history is not None:
            self.item_history.set_history(interactions.transpose())

    @torch.no_grad()
    def fit_numeric_buckets(self, numeric: torch.Tensor, missing: torch.Tensor, max_rows: int = 1_000_000) -> None:
        """Set each numeric column's bucket edges to the quantiles of its present values among
        the (first `max_rows`) fit rows; a column with none keeps its edges. A no-op without buckets.

        Args:
            numeric: `(N, Fn)` standardised values of the fit rows (`TableBatch.numeric`).
            missing: `(N, Fn)` bool, which are missing.
            max_rows: int, at most this many rows are read (the fit rows come in a random order).

        Example:
            >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn
            >>> inputs = TableInputs(FeatureSpec((NumericColumn("x"),), label="y", task="binary"), {}, 2,
            ...                      numeric_buckets=4)
            >>> inputs.fit_numeric_buckets(torch.arange(8.0).unsqueeze(1), torch.zeros(8, 1, dtype=torch.bool))
            >>> inputs.numeric_edges.tolist()
            [[1.75, 3.5, 5.25]]
        """
        if not self.numeric_buckets:
            return
        levels = torch.arange(1, self.numeric_buckets, dtype=torch.float64) / self.numeric_buckets
        edges = cast(torch.Tensor, self.numeric_edges)
        for j in range(self.num_numeric):
            present = numeric[:max_rows, j][~missing[:max_rows, j]].double()
            if len(present):
                edges[j] = torch.quantile(present[:16_000_000], levels).to(edges.dtype)

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
            if self.numeric_buckets:
                edges = cast(torch.Tensor, self.numeric_edges)  # (Fn, buckets − 1)
                bucket = (batch.numeric.unsqueeze(-1) > edges).sum(-1)  # (B, Fn) in [0, buckets)
                columns = torch.arange(self.num_numeric, device=bucket.device)
                present = (~batch.missing).to(blocks.dtype).unsqueeze(-1)  # (B, Fn, 1)
                blocks = blocks + self.bucket_embedding[columns, bucket] * present  # (B, Fn, E)
            parts.append(blocks.flatten(1))  # (B, Fn·E)
        for bag, items in zip(self._bag_list(), batch.multi_hot, strict=True):
            rows = torch.where(items < 0, cast(int, bag.padding_idx), items)  # (B, L)
            parts.append(bag(rows))  # (B, E_c)
        if self.user_history is not None or self.item_history is not None:
            users = batch.categorical[:, self._user_position]  # (B,)
            items = batch.categorical[:, self._item_position]  # (B,)
            if self.user_history is not None:
                parts.append(self.user_history(users, items))  # (B, E) the user's other items
            if self.item_history is not None:
                parts.append(self.item_history(items, users))  # (B, E) the item's other users
        return torch.cat(parts, dim=-1)  # (B, d)


def _positive(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True)
class TableLevers:
    """Which of `DCNConfig`'s levers a table model gets, and why the others are off.

    Args:
        user_history: bool, the user history block (needs the `user` and `item` roles).
        item_history: bool, the item history block (the same roles).
        bias_terms: bool, offset and bias terms (need a categorical column).
        clip: bool, the eval-mode clamp to the label range (regression only).
        notices: one line for each lever the config asks for that the spec cannot have.
    """

    user_history: bool
    item_history: bool
    bias_terms: bool
    clip: bool
    notices: tuple[str, ...]


def table_levers(config: DCNConfig, spec: FeatureSpec) -> TableLevers:
    """The levers of `config` that `spec` allows, so a table without roles trains with the same config.

    - `user_history`, `item_history`: need the spec's `user` and `item` columns;
    - `use_bias_terms`: needs at least one categorical column;
    - `clip_output`: regression only (a binary model outputs logits).

    Example:
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn
        >>> spec = FeatureSpec((NumericColumn("x"),), label="y", task="binary")
        >>> levers = table_levers(DCNConfig(user_history=True, clip_output=True), spec)
        >>> levers.user_history, levers.clip, len(levers.notices)
        (False, False, 2)
    """
    notices = []
    roles = spec.user is not None and spec.item is not None
    missing = " and ".join(f"`{key}`" for key in ("user", "item") if getattr(spec, key) is None)
    for flag in ("user_history", "item_history"):
        if getattr(config, flag) and not roles:
            notices.append(f"model.{flag}=true: the spec names no {missing} column; built without the {flag}")
    categorical = any(isinstance(c, CategoricalColumn) for c in spec.columns)
    if config.use_bias_terms and not categorical:
        notices.append("model.use_bias_terms=true: the spec has no categorical column; built without bias terms")
    regression = spec.task == "regression"
    if config.clip_output and not regression:
        notices.append(f"model.clip_output=true applies to regression; off for task={spec.task!r}")
    return TableLevers(
        user_history=config.user_history and roles,
        item_history=config.item_history and roles,
        bias_terms=config.use_bias_terms and categorical,
        clip=config.clip_output and regression,
        notices=tuple(notices),
    )


def table_dcn_size(config: DCNConfig, spec: FeatureSpec, table_sizes: Mapping[str, int]) -> ModelSize:
    """The size of `build_table_dcn(config, spec, table_sizes)`, counted without building it.

    One part per categorical and multi-hot column (its rows × its width, named by the
    spec's `hash_buckets` or the column's vocabulary, and the `embedding_dim` that
    applies), one for the numeric columns, one per history (its member embeddings and
    CSR offsets, `history_part`), one for the bias terms (a scalar per categorical row)
    and one for the label range, then the cross, deep and head parts of
    `network_parts`. A malformed size counts nothing: the builder refuses it.

    Args:
        config: the architecture.
        spec: the feature spec.
        table_sizes: embedding rows per categorical and multi-hot column.

    Returns:
        The model's parts.

    Example:
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, CategoricalColumn
        >>> spec = FeatureSpec((CategoricalColumn("c", hash_buckets=2_000_000_000),), label="y", task="binary")
        >>> size = table_dcn_size(DCNConfig(embedding_dim=4096), spec, {"c": 2_000_000_001})
        >>> size.parts[0].setting
        'columns.c.hash_buckets=2000000000 × model.embedding_dim=4096'
    """
    dim = _positive(config.embedding_dim)
    levers = table_levers(config, spec)
    parts = []
    width = 0
    widths_used: list[str] = []
    categorical = [c for c in spec.columns if isinstance(c, CategoricalColumn)]
    categorical_widths = {c.embedding_dim or dim for c in categorical}
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
        if config.numeric_buckets:
            buckets = config.numeric_buckets
            parts.append(
                SizePart(
                    f"{numeric} numeric columns × model.numeric_buckets={buckets} × model.embedding_dim={dim}",
                    numeric * buckets * dim,
                    4 * numeric * (buckets - 1),
                )
            )
        width += numeric * dim
        widths_used.append(f"model.embedding_dim={config.embedding_dim}")
    if levers.user_history or levers.item_history:
        users = _positive(table_sizes.get(cast(str, spec.user)))
        items = _positive(table_sizes.get(cast(str, spec.item)))
        for flag, owners, members, kind in (
            ("user_history", users, items, "users × items"),
            ("item_history", items, users, "items × users"),
        ):
            if getattr(levers, flag):
                parts.append(history_part(config, flag, owners, members, kind))
                width += dim
                widths_used.append(f"model.{flag}=true")
    if levers.bias_terms:
        rows = sum(_positive(table_sizes.get(c.name)) for c in categorical)
        # the fused vector, its row offsets and the offset scalar
        parts.append(SizePart(f"model.use_bias_terms=true ({rows:,} biases)", rows, INDEX_BYTES * len(categorical) + 4))
    if levers.clip:
        parts.append(SizePart("model.clip_output=true (the label range)", 0, 8))
    note = f"{len(spec.columns)} columns: " + ", ".join(dict.fromkeys(widths_used))
    return ModelSize((*parts, *network_parts(network_config(config, width)[0], width, note)))


def network_config(config: DCNConfig, width: int) -> tuple[DCNConfig, str | None]:
    """The cross and deep networks' settings for an x0 `width` wide, and a notice if one changed.

    The levers are the table model's own (`TableInputs`, `OutputLevers`), so they are
    off here. A `projection_dim` of a matrix or mixture cross at or above `width` is
    no low-rank factorisation at all (and the layer refuses it): such a cross is built
    full rank, so the same configuration (the recipe's r = 16) fits narrow tables too.

    Example:
        >>> network_config(DCNConfig(projection_dim=16, use_bias_terms=True), 10)[0].projection_dim is None
        True
        >>> network, notice = network_config(DCNConfig(projection_dim=16), 64)
        >>> network.projection_dim, notice
        (16, None)
    """
    levers_off: dict[str, Any] = dict.fromkeys(LEVER_FLAGS, False)
    network = dataclasses.replace(config, **levers_off)
    rank = config.projection_dim
    if rank is None or config.cross_type == "vector" or not config.uses_cross or rank < width:
        return network, None
    notice = f"model.projection_dim={rank} is not below the input width {width}: the cross layers are full rank"
    return dataclasses.replace(network, projection_dim=None), notice


def build_table_dcn(
    config: DCNConfig,
    spec: FeatureSpec,
    table_sizes: Mapping[str, int],
    memory_check: MemoryCheck | None = TRAINING_ON_CPU,
) -> DCN:
    """A DCN reading a table: `DCN(inputs=TableInputs(...), in_features=d, cross, deep, structure, output)`.

    The cross and deep networks are the ones `build_dcn` makes for `d` dense inputs,
    so every structure and cross type of `DCNConfig` works here. The levers of
    `config` that `spec` allows (`table_levers`; one `log.info` notice for each it does
    not) are:

    - `user_history`, `item_history`: blocks of `TableInputs`, empty until
      `model.set_histories(interactions)` fills them from the fit rows;
    - `use_bias_terms`, `clip_output`: an `OutputLevers` around the head,
      `y = clamp(offset + Σ b + head(...), low, high)`, the offset and range set by
      `model.set_label_statistics(offset, low, high)` from the fit rows' labels.

    `embedding_l2` penalises the categorical columns' embedding tables and the bias
    terms (`DCN.regularization_loss`); `deep_norm` normalises the deep layers (`MLP`).

    Before anything is allocated, the size (`table_dcn_size`) is checked against memory
    (`check_model_fits`); a meta-device build is never refused, and logs nothing.

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
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn
        >>> spec = FeatureSpec((NumericColumn("x"), NumericColumn("z")), label="y", task="regression")
        >>> model = build_table_dcn(DCNConfig(structure="cross_only", embedding_dim=4), spec, {})
        >>> no_categories, missing = torch.zeros(3, 0, dtype=torch.long), torch.zeros(3, 2, dtype=torch.bool)
        >>> batch = TableBatch(no_categories, torch.randn(3, 2), missing)
        >>> model(batch).shape
        torch.Size([3])
    """
    on_meta = builds_on_meta()
    if memory_check is not None and not on_meta:
        check_model_fits(table_dcn_size(config, spec, table_sizes), memory_check)
    levers = table_levers(config, spec)
    if not on_meta:  # bundle checks build on the meta device: no notice for them
        for notice in levers.notices:
            log.debug(notice)  # `train_table` says it once, at training time
    inputs = TableInputs(
        spec, table_sizes, config.embedding_dim, levers.user_history, levers.item_history, config.numeric_buckets
    )
    width = inputs.out_features
    network, full_rank = network_config(config, width)
    if full_rank and not on_meta:
        log.debug(full_rank)
    skeleton = build_dcn(network, dense_features=width, memory_check=None)  # checked whole above
    output = None
    if levers.bias_terms or levers.clip:
        bias_sizes = [int(table_sizes[c.name]) for c in spec.columns if isinstance(c, CategoricalColumn)]
        output = OutputLevers(bias_sizes if levers.bias_terms else None, levers.clip)
    return DCN(
        inputs,
        width,
        skeleton.cross,
        skeleton.deep,
        config.structure,
        output=output,
        embedding_l2=config.embedding_l2,
        embedding_l2_scope=config.embedding_l2_scope,
    )
