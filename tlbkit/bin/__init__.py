"""Command-line binaries: thin absl mains around the library functions.

Binaries are quiet by default: TensorFlow's C++ start-up lines are hidden unless the environment sets
TF_CPP_MIN_LOG_LEVEL itself.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
