"""Deployment: ONNX export checked against PyTorch.

The public names below load their module on first use (``import deepfake_lib.deploy`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "export": ("ExportError", "ExportFailed", "ExportResult", "export_onnx"),
    },
)
