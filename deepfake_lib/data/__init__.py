"""Data: scanning, transforms, datasets, samplers, faces, tracks, clips, self-blended fakes."""
