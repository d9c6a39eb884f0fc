"""Which Keras backends tlbkit's training and evaluation paths run under, checked before Keras is imported.

TensorFlow and JAX run everything end to end (train, with the time budget and the weight average;
evaluate; predict; export; ablate), `tf.data` feeding both, for models whose inputs are numbers: a model
that takes strings (the text recipes' tokenizers look words or bytes up with TensorFlow string ops inside
the model) runs under TensorFlow only, and `check_numeric_inputs` says so at start. The PyTorch backend builds and calls the
engine's layers (`keras.ops` only), but nothing has trained, scored and saved a run under it, so the
binaries and `tlbkit.train.train` refuse it at start rather than fail somewhere in the middle of a run.
"""

import json
import os
import sys

SUPPORTED = ("tensorflow", "jax")


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
