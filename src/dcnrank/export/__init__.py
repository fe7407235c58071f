"""Export: a bundle's model as a file other runtimes load (ONNX), with a fixed signature.

    dcnrank.export.export_bundle(dcnrank.bundle.load("runs/ctr"), "onnx")   # runs/ctr.onnx

Needs the `onnx` extra (`pip install 'dcnrank[onnx]'`); see docs/serving.md.
"""

from dcnrank.export.errors import ExportError
from dcnrank.export.formats import EXPORT_FORMATS, default_path, export_bundle
from dcnrank.export.onnx_export import ONNX_OPSET, ONNX_OUTPUT, ONNX_TOLERANCE, export_onnx

__all__ = [
    "EXPORT_FORMATS",
    "ONNX_OPSET",
    "ONNX_OUTPUT",
    "ONNX_TOLERANCE",
    "ExportError",
    "default_path",
    "export_bundle",
    "export_onnx",
]
