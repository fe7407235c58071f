"""A DCN's memory before it is built: parameter, gradient and optimizer-state bytes counted
from its config and input sizes, and the check that they fit in the memory available.

Nothing here allocates a tensor: the counts are arithmetic on the config, so a config
asking for a 200 GB embedding table is refused in microseconds with an error naming the
setting, instead of ending in an allocator traceback or an out-of-memory kill. A test
(`tests/test_model_size.py`) checks every count against the built model, for every
structure, cross type and lever.

The memory compared against is, in this order:

- `MemoryCheck.limit` when given;
- the environment variable `DCNRANK_MEMORY_LIMIT` when set (bytes, or a number with
  `K`, `M`, `G` or `T`: powers of 1024), for every device;
- on a CUDA device, the free memory CUDA reports (`torch.cuda.mem_get_info`);
- on the CPU, the smallest of `/proc/meminfo`'s `MemAvailable` and what the cgroup's
  memory limit leaves free, else `os.sysconf`'s available pages.

The estimate is a lower bound: data, activations and the allocator's slack come on top.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from dcnrank.config.model_config import DCNConfig

__all__ = [
    "MEMORY_LIMIT_ENV",
    "TRAINING_ON_CPU",
    "MemoryCheck",
    "ModelSize",
    "SizePart",
    "available_memory",
    "builds_on_meta",
    "check_model_fits",
    "dcn_size",
    "format_bytes",
    "history_part",
    "network_parts",
    "parse_memory_limit",
]

log = logging.getLogger(__name__)

MEMORY_LIMIT_ENV = "DCNRANK_MEMORY_LIMIT"
# fp32 weights; training adds a gradient and AdamW's two moments (`KerasAdamW`'s m and v), all fp32.
WEIGHT_BYTES = 4
TRAINING_BYTES = 4 * WEIGHT_BYTES
INDEX_BYTES = 8  # int64 offsets and positions
# The parts a refusal names: those too large alone, else the largest until they make up this share.
BLAME_SHARE = 0.9
BLAME_MAX = 3

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_LIMIT_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SizePart:
    """One part of a model, named by the settings that fix its size.

    Args:
        setting: the settings responsible, as the user writes them
            (`"model.embedding_dim=32 × 2,625 embedding rows"`).
        parameters: int, trainable scalars (fp32; gradients and optimizer state follow them).
        buffer_bytes: int, bytes of the part's buffers (saved, never trained). Defaults to 0.
    """

    setting: str
    parameters: int
    buffer_bytes: int = 0

    def bytes(self, training: bool = True) -> int:
        """Bytes of this part: weights (and, when `training`, gradients and AdamW state) plus buffers."""
        return self.parameters * (TRAINING_BYTES if training else WEIGHT_BYTES) + self.buffer_bytes


@dataclass(frozen=True)
class ModelSize:
    """What a model will hold, part by part, counted before it is built.

    Args:
        parts: the model's parts (inputs, levers, cross network, deep network, head).

    Example:
        >>> size = dcn_size(DCNConfig(embedding_dim=4, deep_units=(8,)), vocabulary_sizes=[5, 3])
        >>> size.parameters, size.bytes(training=False) == 4 * size.parameters + size.buffer_bytes
        (185, True)
    """

    parts: tuple[SizePart, ...]

    @property
    def parameters(self) -> int:
        """Trainable scalars in all (`count_parameters` of the built model)."""
        return sum(part.parameters for part in self.parts)

    @property
    def buffer_bytes(self) -> int:
        """Bytes of every buffer (offsets, item tables, interaction CSR offsets)."""
        return sum(part.buffer_bytes for part in self.parts)

    def bytes(self, training: bool = True) -> int:
        """Bytes the model needs: 4 per parameter (16 when `training`: weight, gradient and
        AdamW's two moments) plus its buffers."""
        return sum(part.bytes(training) for part in self.parts)


@dataclass(frozen=True)
class MemoryCheck:
    """How `check_model_fits` (and the model builders) check a model against memory.

    Args:
        device: where the model will run: `"cpu"` (the default), `"cuda"`, `"cuda:1"`, ...
            The builders build on the CPU, so a CUDA model needs its weights in RAM too.
        training: bool, count gradients and optimizer state (16 bytes per parameter)
            rather than weights alone (4). Defaults to `True`; loading a bundle to
            predict needs only the weights.
        limit: int or None, bytes to allow on every device instead of the memory
            available (and of `DCNRANK_MEMORY_LIMIT`). Defaults to None.
    """

    device: str | torch.device = "cpu"
    training: bool = True
    limit: int | None = None


# What the builders check by default: training on the CPU.
TRAINING_ON_CPU = MemoryCheck()


def builds_on_meta() -> bool:
    """Whether new tensors go to the meta device now (inside `with torch.device("meta")`),
    where a build allocates nothing and needs no memory check."""
    return torch.get_default_device().type == "meta"


def _count(value: object) -> int:
    """`value` when it is a positive int, else 0: a malformed size counts nothing here and is
    left to the constructors, which refuse it with their own message."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _units(values: object) -> list[int]:
    try:
        return [_count(unit) for unit in values]  # type: ignore[attr-defined]
    except TypeError:
        return []


def network_parts(config: DCNConfig, width: int, width_note: str) -> list[SizePart]:
    """The cross network, deep network and one-unit head of `build_dcn` on an x0 of `width`.

    Args:
        config: the architecture.
        width: int, `d`, the width of x0.
        width_note: what makes x0 that wide, for the settings named
            (`"model.embedding_dim=32 × 6 features"`).

    Returns:
        The parts, cross first; an unused network is left out.

    Example:
        >>> parts = network_parts(DCNConfig(structure="cross_only"), 3, "3 dense features")
        >>> [part.parameters for part in parts]  # W (3 × 3) and b; the head's kernel and bias
        [12, 4]
    """
    d = width
    parts = []
    head_in = 0
    if config.uses_cross:
        layers = _count(config.num_cross_layers)
        rank = _count(config.projection_dim)
        if config.cross_type == "vector":
            per_layer = 2 * d  # w and b
        elif config.cross_type == "mixture":
            r = rank or d
            per_layer = _count(config.num_experts) * (2 * r * d + r * r + 2 * d)  # V, U, C, b, gate
        else:
            per_layer = (2 * d * rank if rank else d * d) + d  # (down and up, or W) and b
        rank_note = f", model.projection_dim={config.projection_dim}" if config.projection_dim is not None else ""
        experts_note = f", model.num_experts={config.num_experts}" if config.cross_type == "mixture" else ""
        parts.append(
            SizePart(
                f"x0 of width {d:,} ({width_note}) in model.num_cross_layers={config.num_cross_layers} "
                f"{config.cross_type} cross layers{rank_note}{experts_note}",
                layers * per_layer,
            )
        )
        head_in += d
    if config.uses_deep:
        units = _units(config.deep_units)
        widths = [d, *units]
        dense = sum(n_in * n_out + n_out for n_in, n_out in zip(widths, widths[1:], strict=False))
        norms = 0 if config.deep_norm == "none" else 2 * sum(units)  # a scale and a shift per unit
        # batch norm's running mean and variance (fp32) and its int64 count of batches, per layer
        running = (2 * WEIGHT_BYTES * sum(units) + INDEX_BYTES * len(units)) if config.deep_norm == "batch" else 0
        norm_note = f", model.deep_norm={config.deep_norm}" if config.deep_norm != "none" else ""
        parts.append(
            SizePart(
                f"model.deep_units={list(config.deep_units)}{norm_note} on x0 of width {d:,} ({width_note})",
                dense + norms,
                running,
            )
        )
        head_in = (units[-1] if units else 0) + (head_in if config.structure == "parallel" else 0)
    parts.append(SizePart("the output layer", head_in + 1))
    return parts


def dcn_size(
    config: DCNConfig,
    vocabulary_sizes: Sequence[int] | None = None,
    dense_features: int | None = None,
) -> ModelSize:
    """The size of `build_dcn(config, vocabulary_sizes=..., dense_features=...)`, unbuilt.

    Args:
        config: the architecture.
        vocabulary_sizes: per categorical feature, its table size including the OOV row.
        dense_features: instead, the number of float inputs (no embedding tables).

    Returns:
        The model's parts: embeddings, cross, deep and head (`build_dcn` builds no levers).
        A malformed size (not a positive int) counts nothing: the builder refuses it.

    Example:
        >>> size = dcn_size(DCNConfig(embedding_dim=10_000_000), vocabulary_sizes=[1683, 944])
        >>> size.parts[0].setting
        'model.embedding_dim=10000000 × 2,627 embedding rows (2 features)'
        >>> size.bytes() > 10**15
        True
    """
    parts: list[SizePart] = []
    if vocabulary_sizes is None:
        width = _count(dense_features)
        note = f"{dense_features} dense features"
    else:
        sizes = [_count(size) for size in vocabulary_sizes]
        dim = _count(config.embedding_dim)
        rows = sum(sizes)
        parts.append(
            SizePart(
                f"model.embedding_dim={config.embedding_dim} × {rows:,} embedding rows ({len(sizes)} features)",
                rows * dim,
                INDEX_BYTES * len(sizes),
            )
        )
        width = len(sizes) * dim
        note = f"model.embedding_dim={config.embedding_dim} × {len(sizes)} features"
    parts += network_parts(config, width, note)
    return ModelSize(tuple(parts))


def history_part(config: DCNConfig, flag: str, owners: int, members: int, kind: str) -> SizePart:
    """One `InteractionHistory`: `members × embedding_dim` member embeddings and its CSR
    `indptr` (int64, `owners + 1`). The CSR's members (4 bytes an interaction) are filled
    after building, from the fit rows, and are not counted here.

    Example:
        >>> part = history_part(DCNConfig(embedding_dim=2), "user_history", 3, 5, "users × items")
        >>> part.parameters, part.buffer_bytes
        (10, 32)
    """
    return SizePart(
        f"model.{flag}=true ({owners:,} × {members:,} {kind} interactions, model.embedding_dim={config.embedding_dim})",
        members * _count(config.embedding_dim),
        INDEX_BYTES * (owners + 1),
    )


def format_bytes(count: int) -> str:
    """`count` bytes in binary units with three significant digits.

    Example:
        >>> format_bytes(512), format_bytes(1536), format_bytes(201 * 1024**3)
        ('512 B', '1.5 KiB', '201 GiB')
    """
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            break
        value /= 1024
    if unit == "B":
        return f"{count} B"
    return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"


def parse_memory_limit(text: str) -> int:
    """Bytes of a `DCNRANK_MEMORY_LIMIT` value: `"8G"`, `"512M"`, `"1.5T"`, `"1000000"`.

    Raises:
        ValueError: naming the variable and echoing the value, when it is not a positive size.

    Example:
        >>> parse_memory_limit("8G"), parse_memory_limit("1.5k"), parse_memory_limit("2GiB")
        (8589934592, 1536, 2147483648)
    """
    match = _LIMIT_PATTERN.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(
            f"`{MEMORY_LIMIT_ENV}` must be a positive number of bytes, optionally with K, M, G or T "
            f"(powers of 1024), e.g. 8G. Received: {MEMORY_LIMIT_ENV}={text!r}"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("MemAvailable:"):
            fields = line.split()
            return int(fields[1]) * 1024 if len(fields) >= 2 and fields[1].isdigit() else None
    return None


def _cgroup_free(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """What the cgroup's memory limit leaves free (v2, then v1), or None without a limit."""
    for limit_file, usage_file in (
        (root / "memory.max", root / "memory.current"),
        (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes"),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:  # "max" or v1's huge value: no limit
            return max(0, limit - usage)
    return None


def _sysconf_available() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def available_memory(device: str | torch.device = "cpu") -> tuple[int, str] | None:
    """Bytes free for a model on `device`, and where the figure comes from.

    Args:
        device: `"cpu"`, `"cuda"`, `"cuda:1"`, ...

    Returns:
        `(bytes, source)`, or None when nothing can tell (a device other than CPU and
        CUDA, CUDA not available, no figure readable): then no check is made.

    Raises:
        ValueError: if `DCNRANK_MEMORY_LIMIT` is set to something that is not a size.
    """
    limit = os.environ.get(MEMORY_LIMIT_ENV)
    if limit is not None and limit.strip():
        return parse_memory_limit(limit), MEMORY_LIMIT_ENV
    where = torch.device(device)
    if where.type == "cuda":
        if not torch.cuda.is_available():
            return None
        free, _ = torch.cuda.mem_get_info(where)
        return int(free), f"free on {where}"
    if where.type != "cpu":
        return None
    figures = [
        (value, source)
        for value, source in ((_meminfo_available(), "MemAvailable"), (_cgroup_free(), "the cgroup's memory limit"))
        if value is not None
    ]
    if not figures:
        value = _sysconf_available()
        return None if value is None else (value, "available pages")
    return min(figures)


def check_model_fits(size: ModelSize, memory_check: MemoryCheck = TRAINING_ON_CPU) -> None:
    """Refuse a model that cannot fit in memory, before anything of it is allocated.

    On a CUDA device the weights must fit in RAM (the builders build on the CPU) and the
    whole (with gradients and optimizer state when training) in the device's free memory;
    on the CPU the whole must fit in RAM. A meta device always fits.

    Args:
        size: the model's size (`dcn_size`, `table_dcn_size`).
        memory_check: where and how it will run. Defaults to training on the CPU.

    Raises:
        ValueError: one line naming the settings behind the largest parts, what they need
            and what is available; also on a malformed `DCNRANK_MEMORY_LIMIT`.

    Example:
        >>> one_gib = MemoryCheck(limit=1024**3)
        >>> check_model_fits(dcn_size(DCNConfig(), vocabulary_sizes=[1683, 944]), one_gib)
        >>> try:
        ...     check_model_fits(dcn_size(DCNConfig(deep_units=(100_000_000,)), vocabulary_sizes=[1683, 944]), one_gib)
        ... except ValueError as error:
        ...     print(str(error)[:56])
        model too large for memory: model.deep_units=[100000000]
    """
    check = memory_check
    where = torch.device(check.device)
    if where.type == "meta":
        return

    def available(device: str | torch.device) -> tuple[int, str] | None:
        return (check.limit, "MemoryCheck.limit") if check.limit is not None else available_memory(device)

    if where.type == "cuda":
        _refuse_over(size, False, available("cpu"), "cpu")
    _refuse_over(size, check.training, available(where), str(where))


def _refuse_over(size: ModelSize, training: bool, available: tuple[int, str] | None, where: str) -> None:
    need = size.bytes(training)
    if available is None:
        log.debug("no memory figure for %s: model size (%s) not checked", where, format_bytes(need))
        return
    free, source = available
    if need <= free:
        return
    ranked = sorted(size.parts, key=lambda part: part.bytes(training), reverse=True)
    # every part too large on its own; else the largest ones, until they make up most of the need
    blamed = [part for part in ranked if part.bytes(training) > free][:BLAME_MAX]
    if not blamed:
        for part in ranked:
            if len(blamed) == BLAME_MAX or sum(p.bytes(training) for p in blamed) >= BLAME_SHARE * need:
                break
            blamed.append(part)
    what = "weights, gradients and AdamW's two moments" if training else "weights"
    named = "; ".join(f"{part.setting} needs {format_bytes(part.bytes(training))}" for part in blamed)
    raise ValueError(
        f"model too large for memory: {named}; in all the model needs {format_bytes(need)} for its {what} on {where}, "
        f"{format_bytes(free)} available ({source}). Lower {'that setting' if len(blamed) == 1 else 'those settings'}, "
        f"or set {MEMORY_LIMIT_ENV} (e.g. 64G) to allow more"
    )
