"""What tensors a bundle's architecture needs, and how a set of tensors falls short of it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from dcnrank.config.model_config import DCNConfig
from dcnrank.data.spec.feature_spec import FeatureSpec
from dcnrank.models.table_inputs import build_table_dcn

__all__ = ["MAX_LISTED", "expected_tensors", "weight_problems"]

# The most tensor names, and tensor problems, a report lists before counting the rest: a
# hostile or foreign weights file may hold thousands of tensors.
MAX_LISTED = 8


def expected_tensors(
    config: DCNConfig, spec: FeatureSpec, table_sizes: Mapping[str, int]
) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Name -> (shape, dtype) of every tensor of `build_table_dcn(config, spec, table_sizes)`.

    The model is built on the meta device, so nothing is allocated or initialised.

    Args:
        config: the architecture.
        spec: the feature spec.
        table_sizes: embedding rows per categorical and multi-hot column.

    Returns:
        The expected tensors, in state-dict order.
    """
    with torch.device("meta"):
        skeleton = build_table_dcn(config, spec, table_sizes)
    return {name: (tuple(t.shape), t.dtype) for name, t in skeleton.state_dict().items()}



def weight_problems(
    expected: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
    found: Mapping[str, torch.Tensor],
) -> list[str]:
    """Every way `found` differs from `expected`: missing and unexpected names, then
    per tensor a shape or dtype mismatch; past :data:`MAX_LISTED` names or mismatches,
    a count of the rest. Empty when they agree.

    Example:
        >>> weight_problems({"w": ((2,), torch.float32)}, {"w": torch.zeros(3), "v": torch.zeros(1)})
        ['unexpected tensors: v', 'tensor w: expected shape (2,), found (3,)']
        >>> weight_problems({}, {f"t{i}": torch.zeros(1) for i in range(10)})
        ['unexpected tensors: t0, t1, t2, t3, t4, t5, t6, t7 and 2 more']
    """
    problems = []
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    if missing:
        problems.append(f"missing tensors: {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {_listed(unexpected)}")
    mismatches = []
    for name, (shape, dtype) in expected.items():
        if name not in found:
            continue
        tensor = found[name]
        if tuple(tensor.shape) != shape:
            mismatches.append(f"tensor {name}: expected shape {shape}, found {tuple(tensor.shape)}")
        elif tensor.dtype != dtype:
            mismatches.append(f"tensor {name}: expected dtype {dtype}, found {tensor.dtype}")
    problems.extend(mismatches[:MAX_LISTED])
    if len(mismatches) > MAX_LISTED:
        problems.append(f"{len(mismatches) - MAX_LISTED} more tensors of another shape or dtype")
    return problems


def _listed(names: Sequence[str]) -> str:
    """The first :data:`MAX_LISTED` names (each cut to 100 characters, quoted when it holds a
    line break or another unprintable character) and how many more."""
    shown = ", ".join(f"{name if name.isprintable() else repr(name):.100}" for name in names[:MAX_LISTED])
    return shown if len(names) <= MAX_LISTED else f"{shown} and {len(names) - MAX_LISTED} more"
