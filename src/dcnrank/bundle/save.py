"""`save`: write a model trained on a table, its spec, vocabularies, statistics, catalogue,
config and metrics as a bundle folder."""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import safetensors.torch
from torch import nn

from dcnrank import __version__, atomic
from dcnrank.bundle.catalog import Catalog
from dcnrank.bundle.format import (
    CATALOG_FILE,
    CATALOG_TENSORS_FILE,
    CONFIG_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    METRICS_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
)
from dcnrank.bundle.manifest import manifest_bytes
from dcnrank.bundle.target import check_bundle_target
from dcnrank.bundle.weights import expected_tensors, weight_problems
from dcnrank.config.model_config import DCNConfig
from dcnrank.data.encoding.table_encoder import TableEncoder

__all__ = ["catalog_counts", "has_histories", "save"]

log = logging.getLogger(__name__)


def save(
    model: nn.Module,
    path: str | Path,
    *,
    model_config: DCNConfig,
    encoder: TableEncoder,
    train_config: Mapping[str, Any] | Any | None = None,
    metrics: Mapping[str, Any] | None = None,
    catalog: Catalog | None = None,
) -> Path:
    """Save a DCN trained on a table (`build_table_dcn`) as a bundle folder, atomically.

    The folder holds `weights.safetensors` (the state dict), `config.json` (the format
    name ``dcnrank.bundle`` and version :data:`~dcnrank.bundle.format.FORMAT_VERSION`,
    the dcnrank version, the model config, the feature `spec`, the `numeric` statistics
    (mean, std per numeric column), the embedding `table_sizes`, the training config and
    `catalog`: its users, items and pairs, or null), `vocab.json` (the vocabularies of the
    categorical and multi-hot columns), `metrics.json`, with a `catalog` `catalog.json`
    (its users and items with their columns' raw values) and `catalog.safetensors` (the
    user -> item pairs, CSR), and last `manifest.json` (the format and the SHA-256 of
    each other file). It is written into a hidden sibling folder, fsynced, then renamed
    over `path`; an existing bundle at `path` is moved aside first and deleted last, so a
    crash leaves either the old bundle or the new one. Only nothing, an empty folder or a
    dcnrank bundle (:func:`~dcnrank.bundle.target.check_bundle_target`) is ever replaced.
    Hidden temporary siblings that a killed save of `path` left are deleted first. Load
    it with `dcnrank.bundle.load`.

    Args:
        model: a DCN built by `build_table_dcn(model_config, encoder.spec, encoder.table_sizes)`.
        path: the bundle folder; its parent is created if needed.
        model_config: the model's architecture.
        encoder: the fitted spec, vocabularies and statistics.
        train_config: how the model was trained: a mapping or an object with `to_dict()`.
        metrics: what the run measured; a JSON-serialisable mapping without NaN.
        catalog: the users and items of the fit rows (`Catalog.build`), for a spec with
            `user` and `item` roles; required when the model has user or item histories
            (they are filled from its pairs when the bundle loads). Defaults to none.

    Returns:
        The bundle folder.

    Raises:
        ValueError: if an argument is of the wrong type, the model's tensors do not
            match the architecture (every mismatch listed), the metrics or training
            config are not JSON-serialisable, or `catalog` does not fit the spec and
            table sizes (or is missing for a model with histories).
        BundleError: if `path` is a file, a link or a folder that is not a dcnrank
            bundle (it is never replaced), or cannot be created.
        OSError: if writing fails; the previous bundle, if any, is left in place.

    Example:
        >>> import tempfile
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((NumericColumn("x"),), label="y", task="regression")
        >>> encoder = TableEncoder.fit(spec, {"x": [1.0, 2.0], "y": [0.0, 1.0]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> model = build_table_dcn(config, spec, encoder.table_sizes)
        >>> folder = save(model, tempfile.mkdtemp() + "/b", model_config=config, encoder=encoder)
        >>> sorted(p.name for p in folder.iterdir())
        ['config.json', 'manifest.json', 'metrics.json', 'vocab.json', 'weights.safetensors']
    """
    _check_model(model, model_config)
    if not isinstance(encoder, TableEncoder):
        raise ValueError(f"`encoder` must be a TableEncoder. Received: {type(encoder).__name__}")
    tensors = _tensors(model)
    problems = weight_problems(expected_tensors(model_config, encoder.spec, encoder.table_sizes), tensors)
    if problems:
        raise ValueError(
            "`model` does not match `model_config` and the encoder's spec and table sizes "
            f"{encoder.table_sizes}: " + "; ".join(problems)
        )
    fitted = encoder.to_dict()
    files = _data_files(tensors, fitted["vocabularies"], metrics)
    files.update(_catalog_files(model, encoder, catalog))
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "dcnrank_version": __version__,
        "model": model_config.to_dict(),
        "spec": fitted["spec"],
        "numeric": fitted["numeric"],
        "table_sizes": encoder.table_sizes,
        "train": _train_dict(train_config),
        "catalog": None if catalog is None else catalog_counts(catalog),
    }
    return _write_bundle(Path(path), files, config)



def catalog_counts(catalog: Catalog) -> dict[str, int]:
    """What `config.json`'s `catalog` records: how many users, items and pairs the catalogue holds."""
    return {"users": catalog.num_users, "items": catalog.num_items, "pairs": len(catalog.interactions.members)}


def has_histories(model: nn.Module) -> bool:
    """Whether `model`'s inputs have user or item histories, which a bundle's catalogue
    fills: they are not in the state dict."""
    inputs = getattr(model, "inputs", None)
    return any(getattr(inputs, name, None) is not None for name in ("user_history", "item_history"))


def _catalog_files(model: nn.Module, encoder: TableEncoder, catalog: Catalog | None) -> dict[str, bytes]:
    """`catalog.json` and `catalog.safetensors` of `catalog` (checked as loading checks them), or none."""
    if catalog is None:
        if has_histories(model):
            raise ValueError(
                "`catalog` is required for a model with user or item histories: loading fills them from its pairs. "
                "Received: catalog=None"
            )
        return {}
    if not isinstance(catalog, Catalog):
        raise ValueError(f"`catalog` must be a dcnrank.bundle.catalog.Catalog. Received: {type(catalog).__name__}")
    spec = encoder.spec
    if spec.user is None or spec.item is None:
        raise ValueError(
            f"`catalog` needs a spec naming a user and an item. Received: user={spec.user!r}, item={spec.item!r}"
        )
    document = catalog.to_dict()
    tensors = catalog.tensors()
    try:
        Catalog.from_parts(json.loads(_json_bytes(document, "catalog")), tensors, spec, encoder.table_sizes)
    except ValueError as error:
        raise ValueError(f"`catalog` does not fit the encoder's spec and table sizes: {error}") from None
    return {
        CATALOG_FILE: _json_bytes(document, "catalog"),
        CATALOG_TENSORS_FILE: safetensors.torch.save(tensors, metadata={"format": "pt"}),
    }


def _check_model(model: Any, model_config: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"`model` must be a torch.nn.Module. Received: {type(model).__name__}")
    if not isinstance(model_config, DCNConfig):
        raise ValueError(f"`model_config` must be a DCNConfig. Received: {type(model_config).__name__}")


def _tensors(model: nn.Module) -> dict[str, Any]:
    return {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}


def _train_dict(train_config: Mapping[str, Any] | Any | None) -> dict[str, Any]:
    if train_config is None or isinstance(train_config, Mapping):
        return dict(train_config or {})
    if hasattr(train_config, "to_dict"):
        return train_config.to_dict()
    raise ValueError(
        f"`train_config` must be a mapping or have a to_dict() method. Received: {type(train_config).__name__}"
    )


def _data_files(
    tensors: dict[str, Any], vocabularies: dict[str, Any], metrics: Mapping[str, Any] | None
) -> dict[str, bytes]:
    """Every file but config.json, as bytes."""
    return {
        WEIGHTS_FILE: safetensors.torch.save(tensors, metadata={"format": "pt"}),
        VOCAB_FILE: _json_bytes(vocabularies, "vocabularies"),
        METRICS_FILE: _json_bytes(dict(metrics or {}), "metrics"),
    }


def _write_bundle(target: Path, files: dict[str, bytes], config: dict[str, Any]) -> Path:
    """Add config.json and manifest.json (the SHA-256 of every other file), and swap the
    folder into place."""
    check_bundle_target(target)
    atomic.remove_stale_temporaries(target)  # what a killed save of this bundle left
    files = {**files, CONFIG_FILE: _json_bytes(config, "train_config")}
    files[MANIFEST_FILE] = manifest_bytes(files, __version__)  # last: it vouches for the others
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = atomic.staging_folder(target)
    try:
        for name, data in files.items():
            atomic.write_file(staged / name, data)
        atomic.fsync_folder(staged)
        atomic.replace_folder(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    log.debug("saved bundle %s", target)
    return target


def _json_bytes(value: Any, argument: str) -> bytes:
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False, default=_reject)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{argument}` must be JSON-serialisable without NaN: {error}") from None
    return (text + "\n").encode("utf-8")


def _reject(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        scalar = value.item()
        if isinstance(scalar, float) and not math.isfinite(scalar):
            raise ValueError(f"Out of range float values are not JSON compliant: {scalar!r}")
        return scalar
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable: {value!r:.100}")
