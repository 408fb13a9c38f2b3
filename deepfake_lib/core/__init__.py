"""Shared low-level pieces: devices, run folders and atomic writes, image and video files."""
