"""Checks for plugin authors: what tlbkit asks of a tokenizer, head or model, run on your own layers.

Call them from your tests (pytest or unittest alike; each raises `AssertionError` naming what failed):

```python
from tlbkit import testing

def test_my_tokenizer(tmp_path):
    testing.run_config_test(MyTokenizer(dim=16, scale=2.0))
    model = testing.small_classifier(MyTokenizer(dim=16, scale=2.0))
    testing.run_saving_test(model, inputs, tmp_path)       # the save/load tlbkit does for checkpoints and presets
    testing.run_streaming_test(model, inputs)              # if MyTokenizer implements tlbkit.streaming's contract
```

Modelled on KerasHub's `run_layer_test` / `run_model_saving_test`.
"""

import os
import tempfile

import keras
import numpy as np


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def small_classifier(tokenizer, num_classes=3, dim=16, chunk_size=4, seed=0):
    """A small TLB classifier around `tokenizer` (its tokens must be `dim` wide), to test a tokenizer in a model.

    Args:
        tokenizer: keras layer. Raw batch -> `{"tokens": (B, T, dim)}` (plus `"mask"`).
        num_classes: int. Defaults to `3`.
        dim: int. Token width. Defaults to `16`.
        chunk_size: int. Tokens per chunk. Defaults to `4`.
        seed: int. Weight seed. Defaults to `0`.
    """
    from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder
    from tlbkit.models import SequenceClassifier

    keras.utils.set_random_seed(seed)
    cell = TLBCell(dim=dim, num_heads=2, num_layers=1, r=1, num_latents=2, dropout=0.0)
    return SequenceClassifier(TLBEncoder(cell, chunk_size), ClassificationHead(num_classes), tokenizer=tokenizer)


def run_config_test(layer):
    """`get_config` holds every `__init__` argument, and `from_config(get_config())` gives the same config.

    Args:
        layer: a keras layer (or model) of your plugin.
    """
    from tlbkit import saving

    omitted = saving.omitted_arguments(layer)
    assert not omitted, (f"{type(layer).__name__}.get_config() omits the __init__ argument(s) {omitted}: a reload "
                         "would use their defaults (tlbkit refuses such a load).")
    config = layer.get_config()
    revived = type(layer).from_config(config)
    assert revived.get_config() == config, f"{type(layer).__name__}: from_config(get_config()) changed the config"
    serialized = keras.saving.serialize_keras_object(layer)
    assert "registered_name" in serialized and isinstance(
        keras.saving.deserialize_keras_object(serialized), type(layer)), (
        f"{type(layer).__name__} is not registered for serialization: decorate it with tlbkit_export (or "
        "keras.saving.register_keras_serializable).")


def run_saving_test(model, inputs, folder=None, atol=1e-6):
    """The model survives tlbkit's save and checked load: every weight restored, the probe outputs recorded at
    saving time come back, and every layer's `get_config` holds its arguments.

    Args:
        model: keras.Model (built or not; it is called on `inputs`).
        inputs: a batch of raw inputs (array, dict, `tf.string` tensor).
        folder: str or None. Where to write the `.keras` file (default: a temporary folder).
        atol: float. Tolerance of the output comparison.

    Returns:
        The loaded model.
    """
    from tlbkit import saving

    expected = _numpy(model(inputs, training=False))
    for layer in model._flatten_layers(include_self=True):
        omitted = saving.omitted_arguments(layer)
        assert not omitted, f"layer {layer.name!r} ({type(layer).__name__}): get_config() omits {omitted}"
    saving.set_probe(model, inputs)
    with tempfile.TemporaryDirectory(prefix="tlbkit-testing-") as tmp:
        path = os.path.join(str(folder or tmp), "model.keras")
        saving.save_model(model, path)
        assert saving.read_probe(path) is not None, "the saved file holds no probe"
        loaded = saving.load_model(path)  # raises WeightsNotRestoredError / OutputsChangedError
    np.testing.assert_allclose(_numpy(loaded(inputs, training=False)), expected, atol=atol)
    return loaded


def run_streaming_test(model, inputs, atol=1e-4):
    """Streaming `inputs` chunk by chunk gives, after each chunk, the logits of a whole-sequence call on the same
    prefix (`tlbkit.streaming.Streamer.check`; for tokenizers with `stream_exact`).

    Args:
        model: a `SequenceClassifier` (or `Ensemble`) whose tokenizer implements `StreamingTokenizer`.
        inputs: a batch of raw inputs, all of one length, spanning a few chunks.
        atol: float. Tolerance.

    Returns:
        float: the largest difference found.
    """
    from tlbkit.streaming import Streamer

    model(inputs, training=False)  # built
    streamer = Streamer(model)
    worst = streamer.check(inputs)
    assert not streamer.exact or worst <= atol, (
        f"streamed logits differ from whole-sequence calls by {worst:.3g} (> {atol}): check the tokenizer's "
        "stream_embed and what it carries between chunks (stream_start).")
    return worst
