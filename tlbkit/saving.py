"""Saving and loading models so that a reload computes what was saved, or the load fails naming why.

Two checks run at every load (`load_model`, `load_weights`):

- **Weights.** Keras restores a layer's weights only if the layer has created them when the model is
  rebuilt from its config. A layer that creates its sub-layers' weights only on its first call (no
  `build()`) comes back freshly initialised, with no more than a warning. Here every array of the
  saved file must be found, value for value, among the loaded model's variables.
- **Outputs.** A saved model records its outputs on a small fixed probe input (`PROBE_FILE` inside the
  `.keras` archive: the first `PROBE_EXAMPLES` examples of a batch the model was given, see `set_probe`).
  A reload must give the same outputs. A layer whose `get_config` leaves out one of its arguments
  reloads with that argument's default and computes something else with the same weights: the load
  fails with `OutputsChangedError`, naming the layer whose `get_config` omits an `__init__` argument.

Training checkpoints (`last.keras`, `best.keras`) and presets (`save_for_inference`) carry the probe; a
file without one (saved before, or a model never given a probe) is checked for its weights only.
"""

import collections
import hashlib
import inspect
import json
import os
import zipfile

WEIGHTS_FILE = "model.weights.h5"
PROBE_FILE = "tlbkit_probe.npz"
PROBE_EXAMPLES = 2
PROBE_ATTRIBUTE = "_tlbkit_probe"


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


class OutputsChangedError(ValueError):
    """A reloaded model whose outputs on the saved probe input differ from the saved model's."""


# === The probe ===
def set_probe(model, batch):
    """Gives `model` its probe input: the first `PROBE_EXAMPLES` examples of `batch`, kept on the model and
    recorded with its outputs in every file `save_model` writes (`train()` gives the first training batch).

    Args:
        model: keras.Model.
        batch: the model's inputs for a batch: an array, a `tf.string` tensor, or a dict/tuple of them.
    """
    import keras
    import numpy as np

    def head(x):
        x = keras.ops.convert_to_numpy(x) if not hasattr(x, "numpy") else x.numpy()
        x = np.asarray(x)[:PROBE_EXAMPLES]
        return x.astype("S") if x.dtype == object else x  # strings: bytes, storable without pickle

    setattr(model, PROBE_ATTRIBUTE, keras.tree.map_structure(head, batch))


def get_probe(model):
    """The probe input given to `model` (`set_probe`, or read from the file it was loaded from), or None."""
    return getattr(model, PROBE_ATTRIBUTE, None)


def _outputs(model, probe):
    """The model's outputs on `probe` (inference mode), flattened, as float32 NumPy arrays."""
    import keras
    import numpy as np

    outputs = _jax_forward(model, probe) if keras.backend.backend() == "jax" else model(probe, training=False)
    return [np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(o, "float32"))) for o in keras.tree.flatten(outputs)]


def _jax_forward(model, probe):
    """`model(probe, training=False)` through `backends.jax_inference` (an eager call under JAX runs every op on
    its own: seconds at each checkpoint of a run), compiled once per model. Inputs JAX cannot hold (strings)
    take the eager call."""
    import jax

    from tlbkit import backends

    probe = backends.plain_arrays(probe)
    if any(leaf.dtype.kind not in "biuf" for leaf in jax.tree_util.tree_leaves(probe)):
        return model(probe, training=False)
    key = tuple(id(v) for v in model.variables)  # a model whose layers changed gets a new function
    cached = model.__dict__.get("_tlbkit_inference")
    if cached is None or cached[0] != key:
        cached = (key, backends.jax_inference(model))
        model.__dict__["_tlbkit_inference"] = cached  # not tracked by Keras, not saved
    return cached[1](probe)


def _structure(value):
    """The nesting of a probe as JSON (leaves as null)."""
    if isinstance(value, dict):
        return {"dict": {k: _structure(v) for k, v in value.items()}}
    if isinstance(value, (tuple, list)):
        return {type(value).__name__: [_structure(v) for v in value]}
    return None


def _rebuild(structure, leaves):
    if structure is None:
        return next(leaves)
    (kind, body), = structure.items()
    if kind == "dict":
        return {k: _rebuild(v, leaves) for k, v in body.items()}
    parts = [_rebuild(v, leaves) for v in body]
    return tuple(parts) if kind == "tuple" else parts


def _flatten(value):
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _flatten(v)]
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _flatten(v)]
    return [value]


def write_probe(model, path):
    """Adds the model's probe input and its outputs on it to the `.keras` archive `path` (nothing without a
    probe)."""
    import io

    import numpy as np

    probe = get_probe(model)
    if probe is None:
        return
    arrays = {f"input_{i}": x for i, x in enumerate(_flatten(probe))}
    arrays.update({f"output_{i}": y for i, y in enumerate(_outputs(model, probe))})
    arrays["structure"] = np.array(json.dumps(_structure(probe)))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(PROBE_FILE, buffer.getvalue())


def read_probe(path):
    """`(probe input, list of recorded outputs)` of a `.keras` archive, or None when it holds no probe."""
    import io

    import numpy as np

    if not str(path).endswith(".keras"):
        return None
    with zipfile.ZipFile(path) as archive:
        if PROBE_FILE not in archive.namelist():
            return None
        data = np.load(io.BytesIO(archive.read(PROBE_FILE)), allow_pickle=False)
        inputs = sorted((k for k in data.files if k.startswith("input_")), key=lambda k: int(k.split("_")[1]))
        outputs = sorted((k for k in data.files if k.startswith("output_")), key=lambda k: int(k.split("_")[1]))
        probe = _rebuild(json.loads(str(data["structure"])), iter([data[k] for k in inputs]))
        return probe, [data[k] for k in outputs]


def omitted_arguments(layer):
    """The `__init__` arguments of `layer`'s class that its `get_config()` leaves out (Keras' own layers,
    whose configs Keras vouches for, and `*args`/`**kwargs` are not examined)."""
    cls = type(layer)
    if cls.__module__.startswith("keras."):
        return []
    try:
        config = layer.get_config()
        params = inspect.signature(cls.__init__).parameters.values()
    except (NotImplementedError, TypeError, ValueError):
        return []
    named = [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return [name for name in named if name not in config]


def check_outputs(path, model, atol=1e-4, rtol=1e-3):
    """Raises `OutputsChangedError` unless `model` gives, on the probe input recorded in `path`, the outputs
    recorded there (to `atol + rtol * |recorded|`). Keeps the probe on the model, so that saving it again
    records it too. Nothing to check in a file without a probe.

    Args:
        path: str. The `.keras` file `model` was loaded from.
        model: the loaded keras.Model.
        atol: float. Absolute tolerance.
        rtol: float. Relative tolerance.
    """
    import numpy as np

    recorded = read_probe(path)
    if recorded is None:
        return
    probe, expected = recorded
    setattr(model, PROBE_ATTRIBUTE, probe)
    got = _outputs(model, probe)
    same_shapes = len(got) == len(expected) and all(g.shape == e.shape for g, e in zip(got, expected))
    if same_shapes and all(np.all(np.abs(g - e) <= atol + rtol * np.abs(e)) for g, e in zip(got, expected)):
        return
    culprits = [f"layer {layer.name!r} ({type(layer).__name__}): its get_config() omits {args}"
                for layer in model._flatten_layers(include_self=True) if (args := omitted_arguments(layer))]
    why = ("; ".join(culprits) + ", so the reload used their defaults. Add them to get_config() and save again"
           if culprits else "a layer's get_config() may omit an argument, or its call depend on state that is not "
           "saved (docs/plugins.md, tlbkit.testing.run_saving_test)")
    difference = (f"max difference {max(float(np.max(np.abs(g - e))) for g, e in zip(got, expected)):.3g}"
                  if same_shapes else "different output shapes")
    raise OutputsChangedError(
        f"{os.path.basename(path)}: the reloaded model computes other outputs on the probe input recorded when it "
        f"was saved ({difference}, shapes {[tuple(e.shape) for e in expected]}): {why}.")


# === Save and load ===
def save_model(model, path):
    """`model.save(path)` (a `.keras` archive), with the model's probe input and outputs when it has a probe."""
    model.save(path)
    write_probe(model, path)


def load_model(path):
    """`keras.saving.load_model(path, compile=False)`, checked: every saved model weight is restored and the
    recorded probe outputs come back (`check_outputs`). tlbkit's classes and the installed plugins' are
    registered first, so a process that imported only `tlbkit.saving` can load any run's file."""
    import keras

    from tlbkit import plugins

    plugins.ensure_loaded()
    model = keras.saving.load_model(path, compile=False)
    check_restored(path, model.variables, skip_prefixes=("optimizer/",))
    check_outputs(path, model)
    return model


def load_weights(model, path):
    """`model.load_weights(path)` (model and optimizer state), checked as `check_restored` and
    `check_outputs`."""
    model.load_weights(path)
    optimizer_variables = list(model.optimizer.variables) if getattr(model, "optimizer", None) else []
    check_restored(path, list(model.variables) + optimizer_variables,
                   skip_prefixes=() if optimizer_variables else ("optimizer/",))
    check_outputs(path, model)


def save_for_inference(model, path, probe=None):
    """Saves `model` without optimizer state (what presets hold): a `.keras` archive of config + weights,
    with the probe input and outputs.

    The model goes through a checked save/load round trip first (weights and outputs), so a preset is never
    written from a model whose reload would lose weights or compute something else.

    Args:
        model: keras.Model.
        path: str. The `.keras` file to write.
        probe: optional model inputs for the probe (`set_probe`); default: the model's own probe (given by
            training, or read from the file the model was loaded from).
    """
    import tempfile

    from tlbkit import run_dir

    if probe is not None:
        set_probe(model, probe)
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
        save_model(model, path)
