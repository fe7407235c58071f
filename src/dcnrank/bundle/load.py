"""`load`: read and validate a bundle folder into a ready-to-score `Bundle`. Never unpickles."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from dcnrank.bundle.bundle import Bundle, BundleConfig
from dcnrank.bundle.errors import BundleError
from dcnrank.bundle.format import (
    BUNDLE_FILES,
    CONFIG_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    METRICS_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
)
from dcnrank.bundle.weights import expected_tensors, weight_problems
from dcnrank.data.vocabulary import Vocabulary
from dcnrank.models.config import DCNConfig
from dcnrank.models.dcn import build_dcn

__all__ = ["load"]


def load(path: str | Path) -> Bundle:
    """Load a bundle written by `dcnrank.bundle.save`.

    Every file is checked before the model is built: all four files present, the
    format name and version known, each file's SHA-256 equal to the one in
    `config.json`, the JSON well-formed, the vocabularies matching the features, and
    the weights holding exactly the tensors the architecture needs, with their shapes.
    Weights are read with safetensors, never with pickle.

    Args:
        path: the bundle folder.

    Returns:
        The bundle, its model in eval mode.

    Raises:
        BundleError: naming the folder or file and the problem: a missing folder or
            files (all listed), an unknown or newer format version, a truncated or
            corrupt file, a checksum mismatch, a malformed config or vocabulary, and
            missing or unexpected tensors or shape mismatches (all listed, with
            expected and found shapes).

    Example:
        >>> import tempfile
        >>> from dcnrank.bundle import save
        >>> from dcnrank.models import build_dcn
        >>> config = DCNConfig(embedding_dim=2, deep_units=(4,))
        >>> folder = save(build_dcn(config, vocabulary_sizes=[3]), tempfile.mkdtemp() + "/b",
        ...               model_config=config, vocabularies={"movie_id": Vocabulary.fit([10, 20])})
        >>> load(folder).predict({"movie_id": [10, 20, 30]}).shape
        torch.Size([3])
    """
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(f"{folder}: bundle folder not found")
    missing = [name for name in BUNDLE_FILES if not (folder / name).is_file()]
    if missing:
        raise BundleError(
            f"{folder}: not a complete bundle: missing {', '.join(missing)} "
            f"(a bundle holds {', '.join(BUNDLE_FILES)})"
        )
    raw_config = _read_json(folder / CONFIG_FILE)
    _check_format(folder / CONFIG_FILE, raw_config)
    contents = {name: (folder / name).read_bytes() for name in (WEIGHTS_FILE, VOCAB_FILE, METRICS_FILE)}
    # Decode everything first (a truncated file says so), then compare checksums (a file
    # changed in a way that still decodes), then check meaning.
    raw_vocab = _parse_json(folder / VOCAB_FILE, contents[VOCAB_FILE])
    metrics = _parse_json(folder / METRICS_FILE, contents[METRICS_FILE])
    try:
        tensors = safetensors.torch.load(contents[WEIGHTS_FILE])
    except Exception as error:  # safetensors raises its own SafetensorError, or others
        raise BundleError(
            f"{folder / WEIGHTS_FILE}: truncated or corrupt safetensors file ({error})"
        ) from None
    _check_sums(folder, raw_config, contents)
    config = _parse_config(folder / CONFIG_FILE, raw_config)
    vocabularies = _parse_vocabularies(folder / VOCAB_FILE, raw_vocab, config)
    if not isinstance(metrics, dict):
        raise BundleError(f"{folder / METRICS_FILE}: must hold a JSON object. Received: {metrics!r:.200}")
    problems = weight_problems(expected_tensors(config.model, config.vocabulary_sizes), tensors)
    if problems:
        raise BundleError(
            f"{folder / WEIGHTS_FILE}: does not match the architecture in {CONFIG_FILE}: "
            + "; ".join(problems)
        )
    with torch.random.fork_rng(devices=[]):  # the throwaway initialisation leaves the RNG alone
        model = build_dcn(config.model, vocabulary_sizes=list(config.vocabulary_sizes))
    model.load_state_dict(tensors, strict=True)
    return Bundle(model, config, vocabularies, metrics, path=folder)


def _parse_json(path: Path, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise BundleError(f"{path}: corrupt file, not UTF-8 ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise BundleError(
            f"{path}:{error.lineno}:{error.colno}: truncated or corrupt JSON ({error.msg})"
        ) from None


def _read_json(path: Path) -> Any:
    return _parse_json(path, path.read_bytes())


def _check_format(path: Path, raw: Any) -> None:
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: must hold a JSON object. Received: {raw!r:.200}")
    if raw.get("format") != FORMAT_NAME:
        raise BundleError(
            f"{path}: not a dcnrank bundle config: `format` must be {FORMAT_NAME!r}. "
            f"Received: format={raw.get('format')!r}"
        )
    version = raw.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BundleError(
            f"{path}: unknown bundle format version: `format_version` must be an int from 1 "
            f"to {FORMAT_VERSION}. Received: format_version={version!r}"
        )
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format version {version} is newer than this dcnrank reads "
            f"({FORMAT_VERSION}); it was written by dcnrank {raw.get('dcnrank_version', '?')}: "
            "upgrade dcnrank to load it"
        )


def _check_sums(folder: Path, raw: dict, contents: dict[str, bytes]) -> None:
    sums = raw.get("sha256")
    if not isinstance(sums, dict):
        raise BundleError(
            f"{folder / CONFIG_FILE}: `sha256` must map file names to SHA-256 sums. Received: {sums!r:.200}"
        )
    for name, data in contents.items():
        actual = hashlib.sha256(data).hexdigest()
        if sums.get(name) != actual:
            raise BundleError(
                f"{folder / name}: corrupt or modified file: SHA-256 {actual} differs from "
                f"the {sums.get(name)!r} recorded in {CONFIG_FILE}"
            )


def _parse_config(path: Path, raw: dict) -> BundleConfig:
    absent = [key for key in ("model", "features", "train") if key not in raw]
    if absent:
        raise BundleError(f"{path}: missing key(s) {', '.join(absent)}")
    try:
        model = DCNConfig(**raw["model"])
    except (TypeError, ValueError) as error:
        raise BundleError(f"{path}: invalid `model`: {error}") from None
    features = raw["features"]
    if not isinstance(features, list) or not features or not all(
        isinstance(f, dict)
        and isinstance(f.get("name"), str)
        and isinstance(f.get("vocabulary_size"), int)
        and not isinstance(f.get("vocabulary_size"), bool)
        and f["vocabulary_size"] >= 1
        for f in features
    ):
        raise BundleError(
            f"{path}: `features` must be a non-empty list of {{name, vocabulary_size ≥ 1}}. "
            f"Received: {features!r:.200}"
        )
    if not isinstance(raw["train"], dict):
        raise BundleError(f"{path}: `train` must be a JSON object. Received: {raw['train']!r:.200}")
    return BundleConfig(
        model=model,
        feature_names=tuple(f["name"] for f in features),
        vocabulary_sizes=tuple(f["vocabulary_size"] for f in features),
        train=raw["train"],
        dcnrank_version=str(raw.get("dcnrank_version", "")),
        format_version=raw["format_version"],
    )


def _parse_vocabularies(path: Path, raw: Any, config: BundleConfig) -> dict[str, Vocabulary]:
    if not isinstance(raw, dict) or list(raw) != list(config.feature_names):
        names = list(raw) if isinstance(raw, dict) else raw
        raise BundleError(
            f"{path}: must map the features {list(config.feature_names)} in order to "
            f"vocabularies. Received: {names!r:.200}"
        )
    vocabularies = {}
    for (name, entry), size in zip(raw.items(), config.vocabulary_sizes, strict=True):
        try:
            vocabulary = Vocabulary.from_dict(entry)
        except ValueError as error:
            raise BundleError(f"{path}: feature {name!r}: {error}") from None
        if vocabulary.size != size:
            raise BundleError(
                f"{path}: feature {name!r} has {vocabulary.size} indices but {CONFIG_FILE} "
                f"says vocabulary_size={size}"
            )
        vocabularies[name] = vocabulary
    return vocabularies
