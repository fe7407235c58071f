"""`export_bundle`: export a bundle's model to a named format, at a default or given path."""

from __future__ import annotations

from pathlib import Path

from dcnrank.bundle.bundle import Bundle
from dcnrank.export.onnx_export import export_onnx

__all__ = ["EXPORT_FORMATS", "default_path", "export_bundle"]

# format name -> the file suffix it writes.
EXPORT_FORMATS = {"onnx": ".onnx"}


def default_path(bundle_folder: str | Path, format: str) -> Path:
    """Where `dcnrank export` writes by default: beside the bundle, `runs/dcn` -> `runs/dcn.onnx`.

    Raises:
        ValueError: if `format` is unknown.

    Example:
        >>> default_path("runs/dcn", "onnx").as_posix()
        'runs/dcn.onnx'
    """
    _check_format(format)
    folder = Path(bundle_folder)
    return folder.parent / (folder.name + EXPORT_FORMATS[format])


def export_bundle(bundle: Bundle, format: str, path: str | Path | None = None) -> Path:
    """Export `bundle.model` as `format`.

    Args:
        bundle: the model; one loaded from a folder when `path` is None.
        format: one of :data:`EXPORT_FORMATS` (`"onnx"`).
        path: the file to write. Defaults to :func:`default_path` of the bundle's folder.

    Returns:
        The file written.

    Raises:
        ValueError: if `format` is unknown, or `path` is None and the bundle has no folder.

    Example:
        >>> export_bundle(None, "tflite")
        Traceback (most recent call last):
        ...
        ValueError: `format` must be one of onnx. Received: format='tflite'
    """
    _check_format(format)
    if path is None:
        if bundle.path is None:
            raise ValueError("`path` is required for a bundle that was not loaded from a folder. Received: None")
        path = default_path(bundle.path, format)
    return export_onnx(bundle, path)


def _check_format(format: str) -> None:
    if format not in EXPORT_FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(EXPORT_FORMATS)}. Received: format={format!r}")
