"""``python -m deepfake_lib.predict``: the prediction command line."""

import sys

from deepfake_lib.predict.predictors import main

sys.exit(main(reexec=True))
