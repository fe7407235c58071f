"""`export_onnx`: a bundle's model as one ONNX file with a fixed input signature.

The signature (documented in docs/serving.md): the tensors
`TableEncoder.encode` makes (`TableBatch`), each present only when the spec has such columns:

- `categorical`: `(batch, Fc)` of the encoder's `index_dtype` (int32, or int64 when a
  table has more than 2³¹ − 1 rows), the embedding rows of the categorical columns in
  spec order (0 out of vocabulary or missing; column `j` in `0..table_sizes[j]-1`);
- `numeric`: float32 `(batch, Fn)`, the standardised numeric values (0 where missing),
  and `missing`: bool `(batch, Fn)`, True where a value is missing;
- `multi_hot_<j>`: `(batch, L_j)` of the same dtype per multi-hot column `j`, its item rows then −1
  padding (`L_j` a dynamic axis);
- output `score`: float32 `(batch,)`: the probability for a binary task, else the prediction.

User and item histories go in as constants: per owner, the pooled embeddings of the
members it interacted with in the fit rows (the catalogue's pairs). Leaving the scored
member out applies only to fit pairs, so a fit pair scores as the eager model scores a
row outside the fit pairs; every other row scores exactly as the eager model.

`batch` is a dynamic axis. The file's metadata (`metadata_props`) records the columns of
each input, the table sizes, the structure and the dcnrank version, so a
consumer can check the column order; the raw-value -> row lookup stays in the bundle.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dcnrank import __version__, atomic
from dcnrank.atomic import fsync_folder, write_file
from dcnrank.bundle.bundle import Bundle
from dcnrank.bundle.save import has_histories
from dcnrank.data.encoding.table_batch import PADDING, TableBatch
from dcnrank.export.errors import ExportError

__all__ = ["ONNX_OPSET", "ONNX_OUTPUT", "ONNX_TOLERANCE", "export_onnx", "onnx_inputs"]

log = logging.getLogger(__name__)

ONNX_OUTPUT = "score"  # float32 (batch,): probabilities (binary) or predictions
ONNX_OPSET = 20  # what torch 2.13's torch.export-based exporter writes by default
ONNX_TOLERANCE = 1e-5  # largest |onnxruntime - eager| the export check accepts
# The exporter's progress chatter (INFO) and notes such as "torchvision is not installed"
# (WARNING) say nothing about this model; they are silenced while it runs.
_EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "onnxscript", "onnx_ir")
_CHECK_BATCHES = (1, 2, 7)  # the batch sizes onnxruntime is checked on


@dataclass(frozen=True)
class _Signature:
    """What exporting a bundle takes: the module to trace and its example
    inputs, the inputs' names and dynamic axes, the metadata, random valid inputs of a
    batch size for the check, and the eager scores of such inputs."""

    module: nn.Module
    example: tuple[torch.Tensor, ...]
    input_names: list[str]
    dynamic_shapes: tuple[Any, ...]
    metadata: dict[str, str]
    sample: Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]
    eager: Callable[[tuple[torch.Tensor, ...]], np.ndarray]


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
        >>> from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
        >>> from dcnrank.data.encoding.table_encoder import TableEncoder
        >>> from dcnrank.models import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((CategoricalColumn("u"), NumericColumn("x")), label="y", task="binary")
        >>> encoder = TableEncoder.fit(spec, {"u": [1, 2], "x": [0.5, 1.5], "y": [0, 1]})
        >>> config = DCNConfig(embedding_dim=2, deep_units=(4,))
        >>> bundle = Bundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder)
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
    signature = _signature(bundle)

    model_proto = _export_proto(signature)
    metadata = signature.metadata
    onnx.helper.set_model_props(model_proto, metadata)
    model_proto.doc_string = f"dcnrank DCN ({metadata['structure']}); {metadata['signature']}"
    onnx.checker.check_model(model_proto, full_check=True)
    data = model_proto.SerializeToString()

    atomic.remove_stale_temporaries(target)
    staged = atomic.temporary_sibling(target, "tmp")
    try:
        write_file(staged, data)
        if check:
            _check(signature, staged)
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


def onnx_inputs(bundle: Bundle) -> list[str]:
    """The input names of a bundle's ONNX file, in order: `categorical` (when the spec
    has categorical columns), `numeric` and `missing` (numeric columns), `multi_hot_<j>`.

    Example:
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, MultiHotColumn, NumericColumn
        >>> from dcnrank.data.encoding.table_encoder import TableEncoder
        >>> from dcnrank.models import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((NumericColumn("x"), MultiHotColumn("tags")), label="y", task="binary")
        >>> encoder = TableEncoder.fit(spec, {"x": [1.0, 2.0], "tags": ["a|b", "b"], "y": [0, 1]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> onnx_inputs(Bundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder))
        ['numeric', 'missing', 'multi_hot_0']
    """
    spec = bundle.spec
    names = ["categorical"] if spec.of_type("categorical") else []
    names += ["numeric", "missing"] if spec.of_type("numeric") else []
    return names + [f"multi_hot_{j}" for j in range(len(spec.of_type("multi_hot")))]


class _TableScorer(nn.Module):
    """A table model taking the encoded tensors one by one (ONNX has no `TableBatch`) and
    returning predictions: probabilities for a binary task."""

    def __init__(self, model: nn.Module, names: list[str], binary: bool) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.binary = binary

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        # rows as int64 inside the graph (its inputs are the encoder's int32), which it was built for
        given = {name: t.long() if name == "categorical" or name.startswith("multi_hot_") else t
                 for name, t in zip(self.names, inputs, strict=True)}  # fmt: skip
        rows = inputs[0].shape[0]
        categorical = given.get("categorical", torch.zeros(rows, 0, dtype=torch.int64))  # (B, Fc)
        numeric = given.get("numeric", torch.zeros(rows, 0))  # (B, Fn)
        missing = given.get("missing", torch.zeros(rows, 0, dtype=torch.bool))  # (B, Fn)
        multi_hot = tuple(given[name] for name in self.names if name.startswith("multi_hot_"))  # (B, L_j) each
        out = self.model(TableBatch(categorical, numeric, missing, multi_hot))  # (B,)
        return torch.sigmoid(out) if self.binary else out


class _PooledHistory(nn.Module):
    """A history as a table of per-owner pooled vectors `h(u) = Σ_{j ∈ N(u)} y_j / sqrt(|N(u)|)`,
    computed once from the catalogue's pairs: what a served row gets (its member is not
    in `N(u)`, so leaving it out, which only applies to fit pairs, changes nothing)."""

    pooled: torch.Tensor

    def __init__(self, history: nn.Module, num_owners: int) -> None:
        super().__init__()
        owners = torch.arange(num_owners)
        with torch.no_grad():  # member 0 (OOV) is never in a history: nothing is left out
            self.register_buffer("pooled", history(owners, torch.zeros_like(owners)).detach().clone())

    def forward(self, owners: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        return self.pooled[owners]  # (B, E)


def _exportable(bundle: Bundle) -> nn.Module:
    """The bundle's model with its histories (if any) as pooled vectors per owner."""
    model = bundle.model
    if not has_histories(model):
        return model
    model = copy.deepcopy(model)
    sizes, spec = bundle.encoder.table_sizes, bundle.spec
    for name, owner in (("user_history", spec.user), ("item_history", spec.item)):
        history = getattr(model.inputs, name, None)
        if history is not None:
            setattr(model.inputs, name, _PooledHistory(history, sizes[str(owner)]))
    return model.eval()


def _table_sample(bundle: Bundle, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Random valid encoded inputs of `batch` rows, in :func:`onnx_inputs` order."""
    spec, sizes = bundle.spec, bundle.encoder.table_sizes
    inputs: list[torch.Tensor] = []
    categorical = spec.of_type("categorical")
    if categorical:
        bounds = torch.tensor([sizes[c.name] for c in categorical])
        rows = (torch.rand(batch, len(bounds), generator=generator) * bounds).to(bundle.encoder.index_dtype)
        inputs.append(rows)  # (B, Fc)
    numeric = len(spec.of_type("numeric"))
    if numeric:
        missing = torch.rand(batch, numeric, generator=generator) < 0.3  # (B, Fn)
        values = torch.randn(batch, numeric, generator=generator).masked_fill(missing, 0.0)  # as the encoder fills
        inputs += [values, missing]
    for column in spec.of_type("multi_hot"):
        width = 3
        items = (torch.rand(batch, width, generator=generator) * sizes[column.name]).to(bundle.encoder.index_dtype)
        lengths = (torch.rand(batch, 1, generator=generator) * (width + 1)).long()  # 0..L items per row
        inputs.append(items.masked_fill(torch.arange(width) >= lengths, PADDING))
    return tuple(inputs)


def _signature(bundle: Bundle) -> _Signature:
    names = onnx_inputs(bundle)
    scorer = _TableScorer(_exportable(bundle), names, bundle.spec.task == "binary").eval()
    spec = bundle.spec
    example = _table_sample(bundle, 2, torch.Generator().manual_seed(0))  # 2 rows: export specialises 0 and 1
    batch = torch.export.Dim("batch")
    shapes = tuple(
        {0: batch, 1: torch.export.Dim(f"items_{name[len('multi_hot_') :]}")} if name.startswith("multi_hot_")
        else {0: batch}
        for name in names
    )  # fmt: skip
    columns = {
        "categorical": [c.name for c in spec.of_type("categorical")],
        "numeric": [c.name for c in spec.of_type("numeric")],
        "multi_hot": [c.name for c in spec.of_type("multi_hot")],
    }
    what = {"binary": "probabilities", "ranking": "scores (they order a group's rows)"}.get(spec.task, "predictions")
    metadata = {
        "dcnrank_version": __version__,
        "inputs": json.dumps(names),
        "columns": json.dumps(columns),
        "table_sizes": json.dumps(bundle.encoder.table_sizes),
        "task": spec.task,
        "structure": bundle.model_config.structure,
        "histories": "pooled per owner from the catalogue's pairs, the scored member not left out"
        if has_histories(bundle.model)
        else "none",
        "signature": f"{', '.join(names)} (encoded as TableEncoder.encode does) -> {ONNX_OUTPUT}: float32 (batch,) "
        f"{what}",
    }

    def eager(inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
        with torch.inference_mode():
            return scorer(*inputs).numpy()

    return _Signature(
        scorer,
        example,
        names,
        (shapes,),  # forward(*inputs): one argument, a tuple
        metadata,
        lambda rows, generator: _table_sample(bundle, rows, generator),
        eager,
    )


def _export_proto(signature: _Signature):  # noqa: ANN202 - onnx.ModelProto, imported lazily
    """The model as an ONNX ModelProto, batch axis dynamic."""
    printed = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(printed), _quiet(_EXPORTER_LOGGERS):
        warnings.simplefilter("ignore")  # deprecation chatter from torch.export and onnxscript
        program = torch.onnx.export(
            signature.module,
            signature.example,
            dynamo=True,
            input_names=signature.input_names,
            output_names=[ONNX_OUTPUT],
            dynamic_shapes=signature.dynamic_shapes,
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


def _check(signature: _Signature, path: Path) -> None:
    """Raise ExportError unless onnxruntime on `path` matches the eager model."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"checking the ONNX file needs {error.name}: pip install 'dcnrank[onnx]'") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for batch in _CHECK_BATCHES:
        inputs = signature.sample(batch, generator)
        expected = signature.eager(inputs)
        feed = {name: tensor.numpy() for name, tensor in zip(signature.input_names, inputs, strict=True)}
        (found,) = session.run([ONNX_OUTPUT], feed)
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
