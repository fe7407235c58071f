"""Training checkpoints: everything needed to resume `Trainer.fit` mid-epoch, written atomically.

A checkpoint folder holds two files:

- `checkpoint-<step>-<random>.safetensors`: the model's state dict (`model/<name>`), the
  optimizer's state tensors (`optimizer/<param index>/<name>`), the shuffle
  generator's state at the start of the epoch in progress (`rng/shuffle`), torch's
  CPU RNG state (`rng/torch`) and any tensors of the caller's state (`extra/<name>`).
- `checkpoint.json`: the position (`epoch`, `batch` within it, `step`), the epoch's
  running loss, the history so far, the optimizer's non-tensor state, the caller's
  state, the config fingerprint, and the name and SHA-256 of the tensors file.

Each file is written to a temporary sibling, fsynced and moved into place with
`os.replace`; the tensors file first, `checkpoint.json` last, so the JSON only ever
names a complete tensors file. A crash leaves the previous checkpoint (or none).
Loading checks the JSON, the fingerprint and the checksum before touching the
model, so a corrupt or foreign checkpoint is refused whole, never half-loaded. A folder
with no `checkpoint.json` yet (a run killed before its first checkpoint) holds nothing
to resume: :func:`resume_or_start` says so, and the run starts from the beginning.
Each write first deletes the temporary files a killed write left
(`dcnrank.atomic.remove_stale_temporaries`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from dcnrank.atomic import remove_stale_temporaries, replace_file

__all__ = [
    "CHECKPOINT_FILE",
    "CheckpointError",
    "Resumable",
    "TrainingState",
    "config_fingerprint",
    "has_checkpoint",
    "load_checkpoint",
    "resume_or_start",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.json"
FORMAT_VERSION = 1
# The tensors files' names: `checkpoint-<step, 9 digits>-<8 hex>.safetensors`.
TENSORS_NAMES = r"checkpoint-[0-9]{9,}-[0-9a-f]{8}\.safetensors"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, partial or from another configuration."""


class OptimizerState(Protocol):
    """An optimizer whose state a checkpoint holds (`KerasAdamW`, any `torch.optim.Optimizer`)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


@runtime_checkable
class Resumable(Protocol):
    """A training callback whose own state must survive a resume (e.g. early stopping)."""

    def checkpoint_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """JSON-ready values and tensors describing the callback's state."""
        ...

    def restore_checkpoint_state(self, values: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Put back what `checkpoint_state` returned."""
        ...


@dataclass
class TrainingState:
    """Where training stands, besides the model and optimizer.

    Args:
        epoch: 0-based epoch in progress (equal to the epochs run once an epoch ends).
        batch: batches of `epoch` already trained.
        step: optimizer steps taken in all.
        epoch_loss: sum of the batch losses of `epoch` so far.
        history: the records of the finished epochs.
        stopped: whether the epoch callback asked to stop.
        shuffle_state: the shuffle generator's state at the start of `epoch`.
        torch_rng_state: torch's CPU RNG state.
        extra: the caller's JSON-ready state; extra_tensors: its tensors.
    """

    epoch: int
    batch: int
    step: int
    epoch_loss: float
    history: list[dict[str, float]]
    stopped: bool
    shuffle_state: torch.Tensor
    torch_rng_state: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)
    extra_tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def config_fingerprint(values: Mapping[str, Any]) -> str:
    """SHA-256 of `values` as canonical JSON: equal settings, equal fingerprint.

    Args:
        values: JSON-ready settings (config, data facts, model shapes).

    Returns:
        64 hex digits.
    """
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def has_checkpoint(folder: str | Path) -> bool:
    """Whether `folder` holds a `checkpoint.json` (complete or not)."""
    return (Path(folder) / CHECKPOINT_FILE).exists()


def resume_or_start(folder: str | Path | None, resume: bool) -> bool:
    """Whether a run asked to `resume` from `folder` has a checkpoint to resume from.

    `checkpoint.json` is written last, so without it the folder holds no checkpoint,
    only what a run killed before its first one left (or nothing, or no folder): the
    run starts from the beginning, with a logged notice. A `checkpoint.json` that is
    there is resumed, and refused by name if it is corrupt or from other settings
    (:func:`load_checkpoint`).

    Args:
        folder: the checkpoint folder, or None for a run without checkpoints.
        resume: whether the run was asked to resume.

    Returns:
        `resume`, unless there is nothing to resume: then False.

    Raises:
        CheckpointError: if `folder` exists and is not a folder (checked before any
            training, whether resuming or not).

    Example:
        >>> import tempfile
        >>> resume_or_start(tempfile.mkdtemp(), resume=True)
        False
    """
    if folder is None:
        return resume
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder}: exists and is not a folder; checkpoints need a folder")
    if resume and not has_checkpoint(folder):
        log.warning(
            "%s: no checkpoint yet (the run stopped before its first one); training from the beginning",
            folder / CHECKPOINT_FILE,
        )
        return False
    return resume


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    # safetensors refuses shared or strided storage; a contiguous CPU copy has neither.
    return tensor.detach().to("cpu", copy=True).contiguous()


def save_checkpoint(
    folder: str | Path,
    model: nn.Module,
    optimizer: OptimizerState,
    state: TrainingState,
    fingerprint: str,
) -> Path:
    """Write a checkpoint into `folder` atomically, replacing the one there.

    Args:
        folder: the checkpoint folder (created if missing).
        model: whose state dict is saved.
        optimizer: whose state is saved.
        state: the position, RNG states and caller state.
        fingerprint: `config_fingerprint` of the settings a resume must match.

    Returns:
        The path of `checkpoint.json`.

    Raises:
        OSError: if `folder` cannot be created or written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # what a write killed midway left: temporaries of checkpoint.json and of a tensors file
    remove_stale_temporaries(folder / CHECKPOINT_FILE, f"{re.escape(CHECKPOINT_FILE)}|{TENSORS_NAMES}")
    tensors = {f"model/{name}": _cpu(t) for name, t in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    per_param: dict[str, dict[str, Any]] = {}
    for index, values in optimizer_state["state"].items():
        per_param[str(index)] = {}
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{name}"] = _cpu(value)
            else:
                per_param[str(index)][name] = value
    tensors["rng/shuffle"] = _cpu(state.shuffle_state)
    tensors["rng/torch"] = _cpu(state.torch_rng_state)
    tensors.update({f"extra/{name}": _cpu(t) for name, t in state.extra_tensors.items()})
    data = save_tensors(tensors)
    # A fresh name each time, so the file the current JSON names is never overwritten.
    tensors_name = f"checkpoint-{state.step:09d}-{uuid.uuid4().hex[:8]}.safetensors"
    replace_file(folder / tensors_name, data)
    document = {
        "format": FORMAT_VERSION,
        "fingerprint": fingerprint,
        "tensors": tensors_name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "epoch": state.epoch,
        "batch": state.batch,
        "step": state.step,
        "epoch_loss": state.epoch_loss,
        "history": state.history,
        "stopped": state.stopped,
        "optimizer": {"state": per_param, "param_groups": optimizer_state["param_groups"]},
        "extra": state.extra,
    }
    path = folder / CHECKPOINT_FILE
    replace_file(path, json.dumps(document, indent=1).encode())
    for old in folder.glob("checkpoint-*.safetensors"):  # superseded: the JSON no longer names them
        if old.name != tensors_name and re.fullmatch(TENSORS_NAMES, old.name):
            old.unlink(missing_ok=True)
    log.debug("checkpoint at epoch %d, batch %d, step %d: %s", state.epoch, state.batch, state.step, path)
    return path


def _read_document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no checkpoint here (the file is missing)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({error})") from None
    keys = ("format", "fingerprint", "tensors", "sha256", "epoch", "batch", "step", "epoch_loss", "history")
    missing = [k for k in keys if not isinstance(document, dict) or k not in document]
    if missing:
        raise CheckpointError(f"{path}: not a dcnrank checkpoint; missing keys {missing}")
    if document["format"] != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format. Received: format={document['format']!r}")
    return document


def load_checkpoint(
    folder: str | Path, model: nn.Module, optimizer: OptimizerState, fingerprint: str
) -> TrainingState:
    """Restore `model` and `optimizer` from the checkpoint in `folder`; return the rest.

    Everything is read and verified before `model` or `optimizer` changes.

    Args:
        folder: the checkpoint folder.
        model: receives the saved weights (same architecture).
        optimizer: receives the saved state (same parameters, in order).
        fingerprint: the current settings' `config_fingerprint`; must equal the saved one.

    Returns:
        The saved position, history, RNG states and caller state.

    Raises:
        CheckpointError: naming the file, if `checkpoint.json` or its tensors file is
            missing, truncated, fails its checksum, was written for other settings, or
            does not fit the model.
    """
    folder = Path(folder)
    path = folder / CHECKPOINT_FILE
    document = _read_document(path)
    if document["fingerprint"] != fingerprint:
        raise CheckpointError(
            f"{path}: written for other settings (config fingerprint {document['fingerprint'][:12]}…, "
            f"this run's is {fingerprint[:12]}…); resume with the same config and data, or use a new "
            "checkpoint folder"
        )
    tensors_path = folder / document["tensors"]
    try:
        data = tensors_path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{tensors_path}: missing; {path} names it") from None
    if hashlib.sha256(data).hexdigest() != document["sha256"]:
        raise CheckpointError(
            f"{tensors_path}: checksum mismatch (truncated or corrupt); {path} expects sha256 {document['sha256']}"
        )
    try:
        tensors = load_tensors(data)
    except SafetensorError as error:  # pragma: no cover - the checksum catches damage first
        raise CheckpointError(f"{tensors_path}: unreadable ({error})") from None
    model_state = {k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")}
    expected = model.state_dict()
    wrong = sorted(
        set(expected) ^ set(model_state)
        | {k for k in set(expected) & set(model_state) if expected[k].shape != model_state[k].shape}
    )
    if wrong:
        raise CheckpointError(f"{tensors_path}: does not fit the model; differing tensors {wrong[:5]}")
    per_param = document["optimizer"]["state"]
    optimizer_state = {
        int(index): {
            **values,
            **{k.rsplit("/", 1)[1]: v for k, v in tensors.items() if k.startswith(f"optimizer/{index}/")},
        }
        for index, values in per_param.items()
    }
    try:
        optimizer.load_state_dict({"state": optimizer_state, "param_groups": document["optimizer"]["param_groups"]})
    except (ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: optimizer state does not fit ({error})") from None
    model.load_state_dict(model_state)
    return TrainingState(
        epoch=document["epoch"],
        batch=document["batch"],
        step=document["step"],
        epoch_loss=document["epoch_loss"],
        history=document["history"],
        stopped=document.get("stopped", False),
        shuffle_state=tensors["rng/shuffle"],
        torch_rng_state=tensors["rng/torch"],
        extra=document.get("extra", {}),
        extra_tensors={k.removeprefix("extra/"): v for k, v in tensors.items() if k.startswith("extra/")},
    )
