"""`export_onnx`: a bundle's model as one ONNX file with a fixed input signature.

The signature (documented in docs/serving.md):

- input `features`: int64 `(batch, F)`, the vocabulary indices of the bundle's features
  in their order (`Bundle.encode` computes them; 0 is out-of-vocabulary, column `j`
  must lie in `0..vocabulary_sizes[j]-1`);
- output `score`: float32 `(batch,)`, the predicted rating;
- `batch` is a dynamic axis.

The file's metadata (`metadata_props`) records the feature names, vocabulary sizes,
structure and dcnrank version, so a consumer can check the column order; the raw-value
-> index lookup stays in the bundle's `vocab.json`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcnrank import __version__, atomic
from dcnrank.atomic import fsync_folder, write_file
from dcnrank.bundle.bundle import Bundle
from dcnrank.export.errors import ExportError

__all__ = ["ONNX_INPUT", "ONNX_OPSET", "ONNX_OUTPUT", "ONNX_TOLERANCE", "export_onnx"]

log = logging.getLogger(__name__)

ONNX_INPUT = "features"  # int64 (batch, F): vocabulary indices, the bundle's feature order
ONNX_OUTPUT = "score"  # float32 (batch,): predicted ratings
ONNX_OPSET = 20  # what torch 2.13's torch.export-based exporter writes by default
ONNX_TOLERANCE = 1e-5  # largest |onnxruntime - eager| the export check accepts
# The exporter's progress chatter (INFO) and notes such as "torchvision is not installed"
# (WARNING) say nothing about this model; they are silenced while it runs.
_EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "onnxscript", "onnx_ir")


def export_onnx(bundle: Bundle, path: str | Path, *, check: bool = True) -> Path:
    """Write `bundle.model` as an ONNX file with the signature of this module's docstring.

    Uses torch's torch.export-based exporter (`torch.onnx.export(..., dynamo=True)`, the
    default since torch 2.9; it needs `onnxscript`), with a dynamic batch axis. The
    file is written whole to a temporary sibling and renamed over `path`, so a reader
    never sees a partial file. With `check`, onnxruntime runs the file on a few batch
    sizes (1, 2 and 7 rows of random valid indices) and must match the eager model
    within :data:`ONNX_TOLERANCE`.

    Args:
        bundle: the model to export.
        path: the `.onnx` file to write (its parent must exist).
        check: bool, verify the file with onnxruntime. Defaults to `True`.

    Returns:
        The file written.

    Raises:
        ValueError: if `path` is an existing folder, an existing file that is not an ONNX
            model dcnrank exported (never replaced), or its parent does not exist.
        ImportError: if `onnx`, `onnxscript` (or, with `check`, `onnxruntime`) is missing
            (`pip install 'dcnrank[onnx]'`).
        ExportError: if onnxruntime's scores differ from the eager model's.

    Example:
        >>> from dcnrank.bundle import Bundle, BundleConfig
        >>> from dcnrank.data import Vocabulary
        >>> from dcnrank.models import DCNConfig, build_dcn
        >>> vocabularies = {"movie_id": Vocabulary.fit([1, 50]), "user_id": Vocabulary.fit([42])}
        >>> config = BundleConfig(DCNConfig(embedding_dim=2, deep_units=(4,)), ("movie_id", "user_id"), (3, 2))
        >>> bundle = Bundle(build_dcn(config.model, vocabulary_sizes=[3, 2]), config, vocabularies)
        >>> import tempfile
        >>> export_onnx(bundle, tempfile.mkdtemp() + "/dcn.onnx").name
        'dcn.onnx'
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"`path` must be a file, not a folder. Received: path={str(target)!r}")
    if not target.parent.is_dir():
        raise ValueError(f"`path`'s folder does not exist. Received: path={str(target)!r}")
    try:
        import onnx
        import onnxscript  # noqa: F401 - the dynamo exporter's dependency; fail early and clearly
    except ImportError as error:
        raise ImportError(f"ONNX export needs {error.name}: pip install 'dcnrank[onnx]'") from None
    _check_replaceable(target, onnx)

    model_proto = _export_proto(bundle)
    config = bundle.config
    metadata = {
        "dcnrank_version": __version__,
        "feature_names": json.dumps(list(config.feature_names)),
        "vocabulary_sizes": json.dumps(list(config.vocabulary_sizes)),
        "structure": config.model.structure,
        "signature": f"{ONNX_INPUT}: int64 (batch, {len(config.feature_names)}) vocabulary indices -> "
        f"{ONNX_OUTPUT}: float32 (batch,) predicted ratings",
    }
    onnx.helper.set_model_props(model_proto, metadata)
    model_proto.doc_string = f"dcnrank DCN ({config.model.structure}); {metadata['signature']}"
    onnx.checker.check_model(model_proto, full_check=True)
    data = model_proto.SerializeToString()

    atomic.remove_stale_temporaries(target)
    staged = atomic.temporary_sibling(target, "tmp")
    try:
        write_file(staged, data)
        if check:
            _check(bundle, staged)
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    fsync_folder(target.parent)
    log.debug("exported %s (%d bytes, opset %d)", target, len(data), ONNX_OPSET)
    return target


def _check_replaceable(target: Path, onnx: Any) -> None:
    """Refuse an existing `target` unless it is an ONNX model that dcnrank exported (its
    metadata carries `dcnrank_version`): anything else there is the user's, never replaced."""
    if not target.exists() and not target.is_symlink():
        return
    try:
        ours = not target.is_symlink() and any(
            prop.key == "dcnrank_version" for prop in onnx.load(str(target), load_external_data=False).metadata_props
        )
    except Exception:  # noqa: BLE001 - any file onnx cannot read is not one of our exports
        ours = False
    if not ours:
        raise ValueError(
            f"{target}: exists and is not an ONNX model exported by dcnrank; refusing to replace it: "
            "give a new path with --out"
        )


def _export_proto(bundle: Bundle):  # noqa: ANN202 - onnx.ModelProto, imported lazily
    """The model as an ONNX ModelProto, batch axis dynamic."""
    sizes = bundle.config.vocabulary_sizes
    # Two rows, not one: torch.export specialises dimensions of size 0 and 1.
    example = torch.tensor([[min(1, size - 1) for size in sizes], [0] * len(sizes)], dtype=torch.int64)
    printed = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(printed), _quiet(_EXPORTER_LOGGERS):
        warnings.simplefilter("ignore")  # deprecation chatter from torch.export and onnxscript
        program = torch.onnx.export(
            bundle.model,
            (example,),
            dynamo=True,
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=ONNX_OPSET,
            external_data=False,
            verbose=False,
        )
    if program is None:  # only the legacy exporter returns None
        raise ExportError("torch.onnx.export returned no ONNX program")
    if printed.getvalue().strip():
        log.debug("torch.onnx.export: %s", printed.getvalue().strip())
    return program.model_proto


@contextlib.contextmanager
def _quiet(names: tuple[str, ...]) -> Iterator[None]:
    """Raise the given loggers to ERROR for the duration, then restore their levels."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _check(bundle: Bundle, path: Path) -> None:
    """Raise ExportError unless onnxruntime on `path` matches the eager model."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"checking the ONNX file needs {error.name}: pip install 'dcnrank[onnx]'") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    sizes = torch.tensor(bundle.config.vocabulary_sizes)
    worst = 0.0
    for batch in (1, 2, 7):
        indices = (torch.rand(batch, len(sizes), generator=generator) * sizes).long()  # (B, F) in range
        expected = bundle.predict(indices).numpy()
        (found,) = session.run([ONNX_OUTPUT], {ONNX_INPUT: indices.numpy()})
        if found.shape != expected.shape or found.dtype != np.float32:
            raise ExportError(
                f"{path}: onnxruntime returned {found.dtype} {found.shape} for {batch} rows; "
                f"expected float32 {expected.shape}"
            )
        worst = max(worst, float(np.abs(found - expected).max()))
    if worst > ONNX_TOLERANCE:
        raise ExportError(
            f"{path}: onnxruntime's scores differ from the eager model's by up to {worst:.3g} "
            f"(tolerance {ONNX_TOLERANCE:g}); the file was not written"
        )
    log.debug("onnxruntime matches the eager model within %.3g", worst)
