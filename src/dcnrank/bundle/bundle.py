"""`Bundle`: a loaded model trained on a table, with its feature spec, vocabularies,
statistics and catalogue, scoring raw tables (files, DataFrames, Arrow tables, column mappings)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dcnrank.bundle.catalog import Catalog
from dcnrank.config.model_config import DCNConfig
from dcnrank.data.encoding.table_encoder import EncodedRows, TableEncoder
from dcnrank.data.sources.table_readers import read_table
from dcnrank.data.spec.feature_spec import FeatureSpec
from dcnrank.models.dcn import DCN
from dcnrank.training.tasks import task_predictions

__all__ = ["Bundle"]


class Bundle:
    """A DCN trained on a table, ready to score new rows of that table's layout.

    Load one with `dcnrank.bundle.load(path)`; :meth:`predict` encodes raw rows
    with the training vocabularies and statistics and scores them under
    `torch.inference_mode`.

    Args:
        model: the DCN (`build_table_dcn`); put in eval mode, parameters frozen.
        model_config: its architecture.
        encoder: the fitted spec, vocabularies and statistics.
        train: the configuration it was trained with (`TrainRunConfig.to_dict()`).
        metrics: what was measured when it was trained.
        path: the folder it was loaded from, if any.
        dcnrank_version: the dcnrank version that wrote it.
        catalog: the users and items of the fit rows (for a spec with user and item
            roles), which `recommend` and `/rank` rank from; None when absent.

    Example:
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((NumericColumn("x"),), label="clicked", task="binary")
        >>> encoder = TableEncoder.fit(spec, {"x": [1.0, 2.0], "clicked": [0, 1]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> bundle = Bundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder)
        >>> probabilities = bundle.predict({"x": [1.5, None]})
        >>> probabilities.shape, bool(((probabilities > 0) & (probabilities < 1)).all())
        (torch.Size([2]), True)
    """

    def __init__(
        self,
        model: DCN,
        model_config: DCNConfig,
        encoder: TableEncoder,
        train: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        path: Path | None = None,
        dcnrank_version: str = "",
        catalog: Catalog | None = None,
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        self.model_config = model_config
        self.encoder = encoder
        self.train = dict(train or {})
        self.metrics = dict(metrics or {})
        self.path = path
        self.dcnrank_version = dcnrank_version
        self.catalog = catalog

    @property
    def spec(self) -> FeatureSpec:
        return self.encoder.spec

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return (
            f"Bundle({self.model_config.structure}, task={self.spec.task!r}, "
            f"columns={list(self.spec.input_names)}{where})"
        )

    def encode(self, data: Any, *, source: str | None = None) -> EncodedRows:
        """Encode raw rows: a CSV/Parquet path, a DataFrame, an Arrow table or a column mapping.

        Raises:
            TableDataError: if a spec column is missing or a cell does not fit (see
                `TableEncoder.encode`).
        """
        if isinstance(data, str | Path):
            source = source or str(data)
            data = read_table(data)
        return self.encoder.encode(data, source=source)

    @torch.inference_mode()
    def outputs(self, rows: EncodedRows, *, batch_size: int = 16384) -> torch.Tensor:
        """Raw model outputs `(N,)` (logits for a binary task) of encoded rows."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}")
        features = rows.features
        if len(features) == 0:
            return torch.zeros(0, dtype=torch.float32)
        return torch.cat([self.model(features[i : i + batch_size]) for i in range(0, len(features), batch_size)])

    def predict(self, data: Any, *, batch_size: int = 16384, source: str | None = None) -> torch.Tensor:
        """Predictions for raw rows: click probabilities for a binary task, values for regression.

        Args:
            data: a CSV/Parquet path, DataFrame, Arrow table or column mapping holding
                the spec's input columns (the label may be absent).
            batch_size: int ≥ 1, rows per forward pass.
            source: the table's name in messages.

        Returns:
            A float32 tensor `(N,)`.

        Raises:
            TableDataError: on missing columns or cells that do not fit the spec.
            ValueError: if `batch_size` is not a positive int.
        """
        return self.predictions(self.encode(data, source=source), batch_size=batch_size)

    def predictions(self, rows: EncodedRows, *, batch_size: int = 16384) -> torch.Tensor:
        """Predictions `(N,)` of encoded rows: probabilities for a binary task, values for regression."""
        return task_predictions(self.spec.task, self.outputs(rows, batch_size=batch_size))
