"""Cached preparation steps: raw folders -> face crops, clip folders and train/val/test splits."""
