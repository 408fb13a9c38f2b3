"""deepfake-workbench: a notebook-driven deepfake image detection workbench (REAL = 0, FAKE = 1)."""

__version__ = "0.1.0"

CLASS_NAMES: tuple[str, str] = ("real", "fake")
REAL, FAKE = 0, 1
