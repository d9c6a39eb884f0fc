"""tlbkit: a sequence-modelling framework around the Temporal Latent Bottleneck cell.

`tlbkit.layers` and `tlbkit.models` are imported on first use, so that the binaries answer `--help` (and
report bad flags) without paying for the import of Keras and TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_LAZY = ("layers", "models")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"tlbkit.{name}")
    raise AttributeError(f"module 'tlbkit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
