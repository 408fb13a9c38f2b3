"""Deployment: ONNX export checked against PyTorch."""
