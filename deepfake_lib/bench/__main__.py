"""``python -m deepfake_lib.bench``: the speed benchmark's command line."""

import sys

from deepfake_lib.cli.bench import entry_point

sys.exit(entry_point())
