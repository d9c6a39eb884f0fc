"""Which Keras backends tlbkit's training and evaluation paths run under, checked before Keras is imported.

TensorFlow and JAX run everything end to end (train, with the time budget and the weight average;
evaluate; predict; export; ablate), `tf.data` feeding both, for models whose inputs are numbers: a model
that takes strings (the text recipes' tokenizers look words or bytes up with TensorFlow string ops inside
the model) runs under TensorFlow only, and `check_numeric_inputs` says so at start. The PyTorch backend builds and calls the
engine's layers (`keras.ops` only), but nothing has trained, scored and saved a run under it, so the
binaries and `tlbkit.train.train` refuse it at start rather than fail somewhere in the middle of a run.
"""

import importlib.util
import json
import os
import sys

SUPPORTED = ("tensorflow", "jax")
JAX_CACHE_ENV = "TLBKIT_JAX_CACHE"  # "0" turns the compilation cache off
JAX_CACHE_MAX_BYTES = 2 << 30


def requested():
    """The backend Keras runs (or will run) under, found as Keras finds it, without importing Keras.

    Keras, once imported, says which; before that, `KERAS_BACKEND`, then the `backend` of
    `$KERAS_HOME/keras.json` (default `~/.keras/keras.json`), then `"tensorflow"`.
    """
    if "keras" in sys.modules and hasattr(sys.modules["keras"], "backend"):
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def use_compilation_cache():
    """Under JAX, keeps compiled XLA programs on disk in `$TLBKIT_CACHE/jax` (default `~/.cache/tlbkit/jax`).

    JAX compiles each training and evaluation step once per process and input shape; for tlbkit's small
    models that compile is most of a short run (ucr.gin on GunPoint, 2 steps: 130 s cold, 42 s with the
    cache warm, on 2 busy cores). With the cache, `tlbkit-eval`, `tlbkit-predict` and a resumed or repeated
    run reuse what an earlier process compiled. JAX keys an entry on the program, the compiler options and
    its own version, so a hit runs the same program. Only compiles of 1 s or more are kept (JAX's default),
    and, when the `filelock` package is installed (JAX needs it for the cap), at most 2 GiB (least recently
    used entries go first).

    Nothing is changed when the backend is not JAX, when `JAX_COMPILATION_CACHE_DIR` or JAX's own config
    names a cache already, or when `TLBKIT_JAX_CACHE=0`. Called before the first compile (the binaries
    and `tlbkit.train.train` call it at start, `tlbkit.layers` on import): JAX decides on its first compile
    whether the cache is used.

    Returns:
        The cache folder in use, or None.
    """
    if requested() != "jax" or os.environ.get(JAX_CACHE_ENV, "1") == "0":
        return None
    import jax

    if jax.config.jax_compilation_cache_dir:  # JAX_COMPILATION_CACHE_DIR, or the user's own setting
        return jax.config.jax_compilation_cache_dir
    from tlbkit import data

    path = data.cache_root("jax")
    jax.config.update("jax_compilation_cache_dir", path)
    if jax.config.jax_compilation_cache_max_size == -1 and importlib.util.find_spec("filelock") is not None:
        # JAX needs `filelock` to cap the size (without it a capped cache fails to read every entry).
        jax.config.update("jax_compilation_cache_max_size", JAX_CACHE_MAX_BYTES)
    return path


def check_supported(what="tlbkit"):
    """Raises ValueError, naming the backend and the fix, unless tlbkit runs end to end under it.

    Args:
        what: str. Who refuses, for the message (`"tlbkit"` for the binaries, `"tlbkit.train.train"`).
    """
    backend = requested()
    if backend not in SUPPORTED:
        why = (" (under PyTorch the layers build and run, but training, scoring and saving a run are not tested "
               "end to end)") if backend == "torch" else ""
        raise ValueError(f"the Keras backend is {backend!r} (KERAS_BACKEND or keras.json); {what} runs under "
                         f"{' or '.join(SUPPORTED)}{why}. Rerun with KERAS_BACKEND=jax or KERAS_BACKEND=tensorflow.")
    use_compilation_cache()


def check_numeric_inputs(element_spec, what="this dataset"):
    """Under a backend other than TensorFlow, raises ValueError when a model input of `element_spec` is a string.

    Args:
        element_spec: the model inputs' `tf.TensorSpec` structure (a `tf.data` pipeline's
            `element_spec[0]`).
        what: str. What gives those inputs, for the message.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    strings = [s for s in keras.tree.flatten(element_spec) if getattr(s, "dtype", None) is not None
               and s.dtype.name == "string"]
    if strings:
        raise ValueError(f"{what} gives the model strings ({strings[0]}), which only TensorFlow's string ops read "
                         f"(a text tokenizer inside the model: tokenizers.vocabulary, tokenizers.byte_conv); the "
                         f"Keras backend is {backend!r}. Rerun with KERAS_BACKEND=tensorflow.")


def jax_inference(model):
    """`model`'s inference call as one jitted JAX function of its inputs.

    Called eagerly, JAX runs (and first compiles) every op on its own, seconds for a small model; this
    compiles the whole call once per input shape. The returned function reads the model's current weights at
    each call, so it stays right while training changes them.

    Args:
        model: a built `keras.Model` (under the JAX backend).

    Returns:
        A function `inputs -> outputs` (`model(inputs, training=False)`); `inputs` is any nesting of dicts,
        lists and tuples of arrays, Keras' tracked containers included.
    """
    import jax

    @jax.jit
    def call(trainable, non_trainable, inputs):
        return model.stateless_call(trainable, non_trainable, inputs, training=False)[0]

    def inference(inputs):
        return call([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
                    plain_arrays(inputs))

    return inference


def plain_arrays(inputs):
    """`inputs` with every container a plain dict, list or tuple and every leaf a NumPy array (Keras' tracked
    containers are no JAX pytrees)."""
    import numpy as np

    if isinstance(inputs, dict) or hasattr(inputs, "keys"):
        return {k: plain_arrays(inputs[k]) for k in inputs.keys()}
    if isinstance(inputs, (list, tuple)):
        return (type(inputs) if type(inputs) in (list, tuple) else list)(plain_arrays(v) for v in inputs)
    return np.asarray(inputs)
