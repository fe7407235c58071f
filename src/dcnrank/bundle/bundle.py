"""`Bundle`: a loaded, ready-to-score model with its vocabularies, config and metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcnrank.data.vocabulary import OOV_INDEX, Vocabulary
from dcnrank.models.config import DCNConfig
from dcnrank.models.dcn import DCN

__all__ = ["Bundle", "BundleConfig"]


@dataclass(frozen=True)
class BundleConfig:
    """What `config.json` holds.

    Args:
        model: the architecture.
        feature_names: the model's input columns, in order.
        vocabulary_sizes: per feature, its table size including the OOV row.
        train: the configuration the model was trained with, as written by the trainer
            (for `dcnrank train`, `TrainRunConfig.to_dict()`); may be empty.
        dcnrank_version: the dcnrank version that wrote the bundle.
        format_version: the bundle format version.
    """

    model: DCNConfig
    feature_names: tuple[str, ...]
    vocabulary_sizes: tuple[int, ...]
    train: dict[str, Any] = field(default_factory=dict)
    dcnrank_version: str = ""
    format_version: int = 0


class Bundle:
    """A trained DCN with everything needed to score raw feature values.

    Load one with `dcnrank.bundle.load(path)` once, then call :meth:`predict` per
    request: encoding is a vectorised vocabulary lookup, and scoring runs under
    `torch.inference_mode` in batches.

    Args:
        model: the DCN; it is put in eval mode and its parameters are frozen.
        config: the bundle's config.
        vocabularies: feature name -> vocabulary, in `config.feature_names` order.
        metrics: what was measured when the model was trained.
        path: the folder it was loaded from, if any.

    Example:
        >>> from dcnrank.models import build_dcn
        >>> vocabularies = {"movie_id": Vocabulary.fit([10, 20]), "user_id": Vocabulary.fit([1])}
        >>> config = BundleConfig(DCNConfig(embedding_dim=2, deep_units=(4,)), ("movie_id", "user_id"), (3, 2))
        >>> bundle = Bundle(build_dcn(config.model, vocabulary_sizes=[3, 2]), config, vocabularies)
        >>> bundle.encode({"movie_id": [20, 99], "user_id": [1, 1]}).tolist()
        [[2, 1], [0, 1]]
        >>> bundle.predict({"movie_id": [20, 99], "user_id": [1, 1]}).shape
        torch.Size([2])
    """

    def __init__(
        self,
        model: DCN,
        config: BundleConfig,
        vocabularies: Mapping[str, Vocabulary],
        metrics: Mapping[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
        names = tuple(vocabularies)
        if names != config.feature_names:
            raise ValueError(
                "`vocabularies` must name the config's features in order. "
                f"Received: {list(names)}, expected {list(config.feature_names)}"
            )
        sizes = tuple(v.size for v in vocabularies.values())
        if sizes != config.vocabulary_sizes:
            raise ValueError(
                "`vocabularies` sizes must match the config's vocabulary_sizes. "
                f"Received: {list(sizes)}, expected {list(config.vocabulary_sizes)}"
            )
        self.model = model.eval().requires_grad_(False)
        self.config = config
        self.vocabularies = dict(vocabularies)
        self.metrics = dict(metrics or {})
        self.path = path
        self._sizes = torch.tensor(config.vocabulary_sizes, dtype=torch.int64)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.config.feature_names

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return f"Bundle({self.config.model.structure}, features={list(self.feature_names)}{where})"

    def encode(self, columns: Mapping[str, Any], *, missing_as_oov: bool = False) -> torch.Tensor:
        """Turn raw feature values into the model's `(N, F)` index tensor.

        Args:
            columns: feature name -> N raw values (ints or strings, as the feature's
                vocabulary holds); unseen values map to the OOV index 0.
            missing_as_oov: bool, encode a feature absent from `columns` as OOV for every
                row (e.g. a user nobody knows). Defaults to `False`: absence is an error.

        Returns:
            An int64 tensor `(N, F)` in `feature_names` order.

        Raises:
            ValueError: on a column that is not a feature, a missing feature (unless
                `missing_as_oov`), columns of different lengths, or values of the wrong
                kind (the message names the feature).
        """
        unknown = [name for name in columns if name not in self.vocabularies]
        if unknown:
            raise ValueError(
                f"unknown feature(s) {', '.join(map(repr, unknown))}; this model's features "
                f"are {', '.join(self.feature_names)}"
            )
        missing = [name for name in self.feature_names if name not in columns]
        if missing and not missing_as_oov:
            raise ValueError(
                f"missing feature(s) {', '.join(map(repr, missing))}; give every feature of "
                f"{', '.join(self.feature_names)} (or missing_as_oov=True)"
            )
        if not columns:
            raise ValueError("`columns` must hold at least one feature. Received: {}")
        lengths = {name: len(np.atleast_1d(np.asarray(values))) for name, values in columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"all columns must have the same length. Received lengths: {lengths}")
        rows = next(iter(lengths.values()))
        out = np.full((rows, len(self.feature_names)), OOV_INDEX, dtype=np.int64)
        for j, name in enumerate(self.feature_names):
            if name not in columns:
                continue
            values = np.atleast_1d(np.asarray(columns[name]))
            if values.ndim != 1:
                raise ValueError(f"feature {name!r} must be 1-D. Received: shape={values.shape}")
            try:
                out[:, j] = self.vocabularies[name].encode(values)
            except ValueError as error:
                raise ValueError(f"feature {name!r}: {error}") from None
        return torch.from_numpy(out)

    def check_indices(self, indices: torch.Tensor) -> None:
        """Raise unless `indices` is an int64 `(N, F)` tensor with every column in range.

        An out-of-range index would silently read another feature's embedding rows, so
        :meth:`predict` checks every tensor it is given.

        Raises:
            ValueError: naming the first bad feature and its range.
        """
        if not isinstance(indices, torch.Tensor) or indices.dtype != torch.int64:
            raise ValueError(
                "`features` must be an int64 tensor of indices (or a mapping of raw values). "
                f"Received: {type(indices).__name__} {getattr(indices, 'dtype', '')}"
            )
        if indices.dim() != 2 or indices.shape[1] != len(self.feature_names):
            raise ValueError(
                f"`features` must have shape (N, {len(self.feature_names)}). Received: shape={tuple(indices.shape)}"
            )
        if indices.numel() == 0:
            return
        bad = (indices < 0) | (indices >= self._sizes.to(indices.device))
        if bad.any():
            column = int(bad.any(dim=0).nonzero()[0])
            name = self.feature_names[column]
            raise ValueError(
                f"`features` column {column} ({name!r}) must hold indices in "
                f"0..{self.config.vocabulary_sizes[column] - 1}. "
                f"Received: {int(indices[bad.any(dim=1), column][0])}"
            )

    @torch.inference_mode()
    def predict(
        self,
        features: torch.Tensor | Mapping[str, Any],
        *,
        batch_size: int = 16384,
        missing_as_oov: bool = False,
    ) -> torch.Tensor:
        """Predicted ratings for N rows.

        Args:
            features: an int64 `(N, F)` index tensor (as from :meth:`encode`), or raw
                values by feature name (encoded with :meth:`encode`).
            batch_size: int ≥ 1, rows per forward pass. Defaults to 16384.
            missing_as_oov: passed to :meth:`encode` for raw values.

        Returns:
            A float32 tensor `(N,)`.

        Raises:
            ValueError: if `features` is malformed (see :meth:`encode`,
                :meth:`check_indices`) or `batch_size` is not a positive int.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}")
        if isinstance(features, Mapping):
            features = self.encode(features, missing_as_oov=missing_as_oov)
        self.check_indices(features)
        if len(features) == 0:
            return torch.zeros(0, dtype=torch.float32)
        return torch.cat([self.model(features[i : i + batch_size]) for i in range(0, len(features), batch_size)])
