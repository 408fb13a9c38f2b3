"""The built-in demo data: photo crops, self-blended fakes, demo videos."""
