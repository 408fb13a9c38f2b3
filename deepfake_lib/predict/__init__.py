"""Scoring new files: predictors (PyTorch, ONNX), folders, faces and videos."""
