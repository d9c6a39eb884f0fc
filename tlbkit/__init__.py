"""tlbkit: a sequence-modelling framework around the Temporal Latent Bottleneck cell.

`tlbkit.layers` and `tlbkit.models` are imported on first use, so that the binaries answer `--help` (and
report bad flags) without paying for the import of Keras and TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_LAZY = ("layers", "models")


def load_model(preset, num_classes=None, class_names=None, checkpoint="last"):
    """The model a preset or run holds, whatever its class, in any process (`tlbkit.presets.load_model`).

    Args:
        preset: str. A preset name (or `source:name`, e.g. `tlbkit:cifar10_tlb`), an exported run's folder,
            a run directory or a `.keras` file.
        num_classes: int or None. Given, a classifier gets a new head with this many classes (fine-tuning).
        class_names: list of str or None. The new head's class names (implies `num_classes`).
        checkpoint: str. `"last"` or `"best"`, for a run directory.

    Example:
    >>> model = tlbkit.load_model("cifar10_tlb")  # doctest: +SKIP
    >>> model.predict_classes(images, top_k=3)  # doctest: +SKIP
    """
    from tlbkit import presets

    return presets.load_model(preset, num_classes=num_classes, class_names=class_names, checkpoint=checkpoint)


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"tlbkit.{name}")
    raise AttributeError(f"module 'tlbkit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
