"""Loading saved models so that every saved weight is restored, or the load fails naming the weight.

Keras restores a layer's weights only if the layer has created them when the model is rebuilt from
its config. A layer that creates its sub-layers' weights only on its first call (no `build()`) comes
back freshly initialised, with no more than a warning. Here every array of the saved file must be
found, value for value, among the loaded model's variables.
"""

import collections
import hashlib
import os
import zipfile

WEIGHTS_FILE = "model.weights.h5"


class WeightsNotRestoredError(ValueError):
    """A saved weight that the loaded model does not hold."""


def saved_arrays(path):
    """`{h5 path: array}` of every weight in a `.keras` archive or a `.weights.h5` file."""
    import h5py

    arrays = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            arrays[name] = obj[()]

    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as archive, archive.open(WEIGHTS_FILE) as raw, h5py.File(raw, "r") as f:
            f.visititems(visit)
    else:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    return arrays


def _fingerprint(array):
    import numpy as np

    array = np.ascontiguousarray(array)
    return array.shape, str(array.dtype), hashlib.sha1(array.tobytes()).hexdigest()


def check_restored(path, variables, skip_prefixes=()):
    """Raises `WeightsNotRestoredError` unless every saved array of `path` equals one of `variables`.

    Args:
        path: str. The `.keras` or `.weights.h5` file that was loaded.
        variables: the loaded object's variables (model, and optimizer where it was restored too).
        skip_prefixes: tuple of str. Saved paths not expected among `variables` (e.g. `"optimizer/"` when
            only the model was loaded).
    """
    import keras

    held = collections.Counter(_fingerprint(keras.ops.convert_to_numpy(v)) for v in variables)
    missing = []
    for name, array in sorted(saved_arrays(path).items()):
        if name.startswith(tuple(skip_prefixes)):
            continue
        key = _fingerprint(array)
        if held[key]:
            held[key] -= 1
        else:
            missing.append(f"{name} {tuple(array.shape)}")
    if missing:
        layer = missing[0].split("/vars/")[0]
        raise WeightsNotRestoredError(
            f"{os.path.basename(path)}: {len(missing)} saved weight(s) were not restored into the loaded model, "
            f"first {missing[0]} (layer {layer!r}). A layer that creates its weights only on its first call "
            "comes back freshly initialised: give it a build() that builds its sub-layers (docs/plugins.md)."
        )


def load_model(path):
    """`keras.saving.load_model(path, compile=False)`, checked: every saved model weight is restored."""
    import keras

    model = keras.saving.load_model(path, compile=False)
    check_restored(path, model.variables, skip_prefixes=("optimizer/",))
    return model


def load_weights(model, path):
    """`model.load_weights(path)` (model and optimizer state), checked as `check_restored`."""
    model.load_weights(path)
    optimizer_variables = list(model.optimizer.variables) if getattr(model, "optimizer", None) else []
    check_restored(path, list(model.variables) + optimizer_variables,
                   skip_prefixes=() if optimizer_variables else ("optimizer/",))


def save_for_inference(model, path):
    """Saves `model` without optimizer state (what presets hold): a `.keras` archive of config + weights.

    The model goes through a checked save/load round trip first, so a preset is never written from a
    model whose reload would lose weights.
    """
    import tempfile

    from tlbkit import run_dir

    with tempfile.TemporaryDirectory(prefix="tlbkit-save-") as tmp:
        full = os.path.join(tmp, "model.keras")
        _save_loaded(model, full)
        inference_model = load_model(full)
    with run_dir.atomic_target(path, ".keras") as target:
        _save_loaded(inference_model, target)


def _save_loaded(model, path):
    """`model.save(path)`. A subclassed model restored from a file holds all its variables but may not be
    flagged `built`; Keras then warns that the file "might not contain any weights", which is not true of
    a model whose load was checked. The warning is kept for a model without variables."""
    import warnings

    with warnings.catch_warnings():
        if model.variables:
            warnings.filterwarnings("ignore", message="You are saving a model that has not yet been built")
        model.save(path)
