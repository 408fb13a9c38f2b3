"""``python -m deepfake_lib.pipeline``: the pipeline's command line."""

import sys

from deepfake_lib.cli.pipeline import main

sys.exit(main())
