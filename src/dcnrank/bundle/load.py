"""`load`: read and validate a bundle folder into a ready-to-score `Bundle`. Never unpickles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from dcnrank.bundle.bundle import Bundle
from dcnrank.bundle.catalog import Catalog, CatalogTensorError
from dcnrank.bundle.errors import BundleError
from dcnrank.bundle.format import (
    BUNDLE_FILES,
    CATALOG_FILE,
    CATALOG_FILES,
    CATALOG_TENSORS_FILE,
    CONFIG_FILE,
    DATA_FILES,
    FORMAT_NAME,
    KNOWN_FORMATS,
    MANIFEST_FILE,
    METRICS_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
)
from dcnrank.bundle.manifest import Manifest, parse_json, read_bytes, read_manifest, refusal, verify_files
from dcnrank.bundle.save import catalog_counts, has_histories
from dcnrank.bundle.weights import expected_tensors, weight_problems
from dcnrank.config.errors import ConfigError
from dcnrank.config.model_config import DCNConfig
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.models.size import MemoryCheck
from dcnrank.models.table_inputs import build_table_dcn

__all__ = ["load"]

# A loaded bundle scores: it needs memory for its weights, not for gradients and optimizer state.
_SCORING = MemoryCheck(training=False)


@dataclass(frozen=True)
class _Files:
    """The decoded files of a complete, intact bundle: config, vocabularies, metrics,
    weights and, when it has one, the catalogue (JSON and tensors)."""

    folder: Path
    config: dict
    vocab: Any
    metrics: Any
    tensors: dict
    catalog: tuple[Any, dict] | None = None


def load(path: str | Path) -> Bundle:
    """Load a bundle written by `dcnrank.bundle.save` (`dcnrank train`).

    Every file is checked before the model is built: all files present, the format name
    and version in `manifest.json` the ones this dcnrank reads, each other file's SHA-256
    (`config.json`'s included) equal to the one the manifest records, the JSON
    well-formed, the feature spec, the numeric statistics and the vocabularies agreeing
    with each other and with the recorded table sizes, the catalogue (`catalog.json`,
    `catalog.safetensors`) when `config.json` records one (its columns, value kinds,
    lengths and the ranges of its user -> item pairs), and the weights holding exactly
    the tensors the architecture needs, with their shapes. Weights are read with
    safetensors, never with pickle. A model with user or item histories gets them from
    the catalogue's pairs (`model.set_histories`).

    Args:
        path: the bundle folder.

    Returns:
        The bundle, its model in eval mode.

    Raises:
        BundleError: naming the folder or file and the problem: a missing folder or
            files (all listed), a bundle of an older dcnrank (a dataset model, or a
            table bundle of format ``dcnrank.table_bundle``: retrain it, the message says
            how) or of a newer one (upgrade dcnrank), a truncated or corrupt file, a
            checksum mismatch, a malformed config, spec, vocabulary or catalogue, and
            missing or unexpected tensors or shape mismatches (all listed, with expected
            and found shapes).

    Example:
        >>> import tempfile
        >>> from dcnrank.bundle import save
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, CategoricalColumn
        >>> spec = FeatureSpec((CategoricalColumn("c"),), label="y", task="binary")
        >>> encoder = TableEncoder.fit(spec, {"c": ["a", "b"], "y": [0, 1]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> folder = save(build_table_dcn(config, spec, encoder.table_sizes), tempfile.mkdtemp() + "/b",
        ...                model_config=config, encoder=encoder)
        >>> load(folder).predict({"c": ["a", "zz"]}).shape
        torch.Size([2])
    """
    files = _read_checked(path)
    folder, raw, raw_vocab, metrics, tensors = files.folder, files.config, files.vocab, files.metrics, files.tensors
    path_config = folder / CONFIG_FILE
    absent = [key for key in ("model", "spec", "numeric", "table_sizes", "train", "catalog") if key not in raw]
    if absent:
        raise BundleError(f"{path_config}: missing key(s) {', '.join(absent)}")
    model_config = _model_config(path_config, raw["model"])
    if not isinstance(raw["train"], dict):
        raise BundleError(f"{path_config}: `train` must be a JSON object. Received: {raw['train']!r:.200}")
    if not isinstance(raw_vocab, dict):
        raise BundleError(f"{folder / VOCAB_FILE}: must hold a JSON object. Received: {raw_vocab!r:.200}")
    try:
        encoder = TableEncoder.from_dict({"spec": raw["spec"], "numeric": raw["numeric"], "vocabularies": raw_vocab})
    except ConfigError as error:
        raise BundleError(f"{path_config}: invalid `spec`: " + _one_line("; ".join(error.errors), 600)) from None
    except (ValueError, OverflowError) as error:  # OverflowError: an int beyond 64 bits
        raise BundleError(f"{path_config} and {VOCAB_FILE}: {_one_line(error)}") from None
    if raw["table_sizes"] != encoder.table_sizes:
        raise BundleError(
            f"{folder / VOCAB_FILE}: the vocabularies give table sizes {encoder.table_sizes!r:.300}, but {CONFIG_FILE} "
            f"records table_sizes={raw['table_sizes']!r:.300}"
        )
    _check_metrics(folder, metrics)
    catalog = _parse_catalog(folder, raw["catalog"], files.catalog, encoder)
    _check_layer_count(folder, model_config, tensors)
    expected = _architecture(folder, lambda: expected_tensors(model_config, encoder.spec, encoder.table_sizes))
    _check_weights(folder, weight_problems(expected, tensors))
    with torch.random.fork_rng(devices=[]):
        model = build_table_dcn(model_config, encoder.spec, encoder.table_sizes, memory_check=_SCORING)
    model.load_state_dict(tensors, strict=True)
    if has_histories(model):
        if catalog is None:
            raise BundleError(
                f"{path_config}: the model has user or item histories, but the bundle holds no catalogue "
                f"({CATALOG_FILE}, {CATALOG_TENSORS_FILE}) to fill them from"
            )
        model.set_histories(catalog.interactions)
    return Bundle(
        model,
        model_config,
        encoder,
        raw["train"],
        metrics,
        path=folder,
        dcnrank_version=str(raw.get("dcnrank_version", "")),
        catalog=catalog,
    )


def _read_checked(path: str | Path) -> _Files:
    """The decoded files of a complete, intact bundle of the format this dcnrank reads."""
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(f"{folder}: bundle folder not found")
    missing = [name for name in BUNDLE_FILES if not (folder / name).is_file()]
    if MANIFEST_FILE in missing:
        _refuse_without_manifest(folder)
    if missing:
        raise BundleError(
            f"{folder}: not a complete bundle: missing {', '.join(missing)} (a bundle holds {', '.join(BUNDLE_FILES)})"
        )
    manifest = read_manifest(folder)  # refuses an older or newer format
    names = _file_names(folder, manifest)
    contents = {name: read_bytes(folder / name) for name in names}
    # Decode everything first (a truncated file says so), then compare checksums (a file
    # changed in a way that still decodes), then check meaning.
    raw_config = parse_json(folder / CONFIG_FILE, contents[CONFIG_FILE])
    raw_vocab = parse_json(folder / VOCAB_FILE, contents[VOCAB_FILE])
    metrics = parse_json(folder / METRICS_FILE, contents[METRICS_FILE])
    tensors = _safetensors(folder / WEIGHTS_FILE, contents[WEIGHTS_FILE])
    catalog = None
    if CATALOG_FILE in contents:
        catalog = (
            parse_json(folder / CATALOG_FILE, contents[CATALOG_FILE]),
            _safetensors(folder / CATALOG_TENSORS_FILE, contents[CATALOG_TENSORS_FILE]),
        )
    verify_files(folder, manifest, contents)
    if not isinstance(raw_config, dict):
        raise BundleError(f"{folder / CONFIG_FILE}: must hold a JSON object. Received: {raw_config!r:.200}")
    recorded = (raw_config.get("format"), raw_config.get("format_version"))
    if recorded != (manifest.format, manifest.format_version):
        raise BundleError(
            f"{folder / CONFIG_FILE}: records format {recorded[0]!r} version {recorded[1]!r}, but {MANIFEST_FILE} "
            f"says {manifest.format!r} version {manifest.format_version}"
        )
    return _Files(folder, raw_config, raw_vocab, metrics, tensors, catalog)


def _file_names(folder: Path, manifest: Manifest) -> tuple[str, ...]:
    """The files to read and check: the data files, and the catalogue's when the manifest
    lists them (both or neither, and present)."""
    if not any(name in manifest.sha256 for name in CATALOG_FILES):
        return DATA_FILES
    absent = [name for name in CATALOG_FILES if name not in manifest.sha256 or not (folder / name).is_file()]
    if absent:
        raise BundleError(
            f"{folder}: not a complete bundle: missing {', '.join(absent)} (its {MANIFEST_FILE} records a catalogue, "
            f"which is {' and '.join(CATALOG_FILES)})"
        )
    return (*DATA_FILES, *CATALOG_FILES)


def _safetensors(path: Path, data: bytes) -> dict:
    try:
        return safetensors.torch.load(data)
    except Exception as error:  # safetensors raises its own SafetensorError, or others
        raise BundleError(f"{path}: truncated or corrupt safetensors file ({_printable(error)})") from None


def _parse_catalog(
    folder: Path, recorded: Any, files: tuple[Any, dict] | None, encoder: TableEncoder
) -> Catalog | None:
    """The catalogue `config.json` records, from its files, checked against the spec and table sizes."""
    if recorded is None and files is None:
        return None
    if files is None:
        raise BundleError(
            f"{folder / CONFIG_FILE}: records a catalogue ({recorded!r:.100}), but {MANIFEST_FILE} lists no "
            f"{CATALOG_FILE} and {CATALOG_TENSORS_FILE}"
        )
    if recorded is None:
        raise BundleError(
            f"{folder / CONFIG_FILE}: records no catalogue (catalog=null), but {MANIFEST_FILE} lists {CATALOG_FILE}"
        )
    spec = encoder.spec
    if spec.user is None or spec.item is None:
        raise BundleError(
            f"{folder / CATALOG_FILE}: a catalogue needs a spec naming a user and an item; the spec in "
            f"{CONFIG_FILE} has user={spec.user!r}, item={spec.item!r}"
        )
    raw, tensors = files
    try:
        catalog = Catalog.from_parts(raw, tensors, spec, encoder.table_sizes)
    except CatalogTensorError as error:
        raise BundleError(f"{folder / CATALOG_TENSORS_FILE}: {_one_line(error)}") from None
    except (ValueError, OverflowError) as error:
        raise BundleError(f"{folder / CATALOG_FILE}: {_one_line(error)}") from None
    if recorded != catalog_counts(catalog):
        raise BundleError(
            f"{folder / CATALOG_FILE}: holds {catalog_counts(catalog)}, but {CONFIG_FILE} records "
            f"catalog={recorded!r:.200}"
        )
    return catalog


def _refuse_without_manifest(folder: Path) -> None:
    """Say what a folder without a manifest is, when its `config.json` tells: not a dcnrank
    bundle at all, or a bundle of format version 1 (from before manifests)."""
    config = folder / CONFIG_FILE
    try:
        raw = parse_json(config, config.read_bytes())
    except (OSError, BundleError):
        return
    if not isinstance(raw, dict):
        return
    if raw.get("format") not in KNOWN_FORMATS:
        raise BundleError(
            f"{config}: not a dcnrank bundle config: `format` must be {FORMAT_NAME!r}. "
            f"Received: format={raw.get('format')!r:.200}"
        )
    version = raw.get("format_version")
    if version == 1 and not isinstance(version, bool):
        raise BundleError(f"{folder}: {refusal(raw['format'], 1, raw.get('dcnrank_version'))}")


def _check_metrics(folder: Path, metrics: Any) -> None:
    if not isinstance(metrics, dict):
        raise BundleError(f"{folder / METRICS_FILE}: must hold a JSON object. Received: {metrics!r:.200}")


def _check_layer_count(folder: Path, model: DCNConfig, tensors: dict) -> None:
    """Refuse more cross layers than the weights hold tensors (each layer has at least
    one) before the architecture is built: a config claiming 2**31 layers would
    otherwise take hours and gigabytes to build, even on the meta device."""
    layers = model.num_cross_layers
    if model.uses_cross and isinstance(layers, int) and not isinstance(layers, bool) and layers > len(tensors):
        raise BundleError(
            f"{folder / WEIGHTS_FILE}: does not match the architecture in {CONFIG_FILE}: "
            f"num_cross_layers={layers} needs at least one tensor per layer, the file holds {len(tensors)}"
        )


def _architecture(folder: Path, expected: Callable[[], dict]) -> dict:
    """`expected()`, the tensors of the architecture `config.json` describes; a setting
    that no model can have (a zero or 2**63 width, a dropout that is text...) is refused
    naming the file, as the layers' constructors or torch word it."""
    try:
        return expected()
    except (TypeError, ValueError, OverflowError, RuntimeError) as error:
        raise BundleError(f"{folder / CONFIG_FILE}: cannot build the model it describes: {_one_line(error)}") from None


def _one_line(message: BaseException | str, limit: int = 300) -> str:
    """The first line of `message` (an error's), at most `limit` characters: torch's run
    on for lines, and any may echo a hostile file's values at length."""
    lines = str(message).strip().splitlines() or [type(message).__name__]
    return lines[0] if len(lines[0]) <= limit else lines[0][:limit] + "…"


def _printable(message: BaseException | str, limit: int = 300) -> str:
    """`message` on one line, its line breaks and other unprintable characters escaped (as
    `repr` writes them) and cut to `limit` characters: safetensors' messages echo the
    tensor names of a hostile header as they are."""
    text = str(message)
    text = text if text.isprintable() else repr(text)[1:-1]
    return text if len(text) <= limit else text[:limit] + "…"


def _check_weights(folder: Path, problems: list[str]) -> None:
    if problems:
        raise BundleError(
            f"{folder / WEIGHTS_FILE}: does not match the architecture in {CONFIG_FILE}: " + "; ".join(problems)
        )


def _model_config(path: Path, raw_model: Any) -> DCNConfig:
    try:
        return DCNConfig(**raw_model)
    except (TypeError, ValueError) as error:
        raise BundleError(f"{path}: invalid `model`: {_one_line(error)}") from None
