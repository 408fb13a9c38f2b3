"""``python -m deepfake_lib.predict``: the prediction command line."""

import sys

from deepfake_lib.cli.predict import entry_point

sys.exit(entry_point())
