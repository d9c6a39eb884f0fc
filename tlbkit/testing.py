"""Checks for plugin authors: what tlbkit asks of a tokenizer, head or model, run on your own layers.

Call them from your tests (pytest or unittest alike; each raises `AssertionError` naming what failed):

```python
from tlbkit import testing

def test_my_tokenizer(tmp_path):
    testing.run_layer_test(lambda **kw: MyTokenizer(dim=16, scale=2.0, **kw), inputs)  # the layer on its own
    testing.run_config_test(MyTokenizer(dim=16, scale=2.0))
    model = testing.small_classifier(MyTokenizer(dim=16, scale=2.0))
    testing.run_saving_test(model, inputs, tmp_path)       # the save/load tlbkit does for checkpoints and presets
    testing.run_streaming_test(model, inputs)              # if MyTokenizer implements tlbkit.streaming's contract
```

Modelled on KerasHub's `run_layer_test` / `run_model_saving_test`. tlbkit's own layers pass these checks
(tests/test_layers.py).
"""

import os
import tempfile

import keras
import numpy as np


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _is_tf_tensor(x):
    return type(x).__module__.startswith("tensorflow")  # without importing TensorFlow (JAX-only machines)


def _float_outputs(outputs):
    """The floating-point tensors of a layer's output (a tensor, tuple or dict), in a fixed order."""
    flat = keras.tree.flatten(outputs)
    return [t for t in flat if t is not None and "float" in str(getattr(t, "dtype", ""))]


def _symbolic(value):
    """A `keras.Input` shaped like `value` without its batch size (strings: a `string` input)."""
    if _is_tf_tensor(value):
        dtype = value.dtype.name
    else:
        value = np.asarray(value)
        dtype = "string" if value.dtype.kind in "OSU" else value.dtype.name
    return keras.Input(shape=tuple(value.shape[1:]), dtype=dtype)


class _FitProbe(keras.Model):
    """Wraps a layer so that `fit` can train it: the loss is the mean square of its float outputs."""

    def __init__(self, layer, call_kwargs):
        super().__init__(name="probe")
        self.layer = layer
        self.call_kwargs = call_kwargs

    def call(self, inputs, training=None):
        args = inputs if isinstance(inputs, tuple) else (inputs,)
        outputs = self.layer(*args, training=training, **self.call_kwargs)
        return keras.ops.sum(keras.ops.stack(
            [keras.ops.mean(keras.ops.square(keras.ops.cast(t, "float32"))) for t in _float_outputs(outputs)]))


def _fit_one_step(layer, args, call_kwargs):
    """Trains `layer` one SGD step on the batch `args`; returns the loss."""
    probe = _FitProbe(layer, call_kwargs)
    probe.compile(optimizer=keras.optimizers.SGD(0.1), loss=lambda y_true, y_pred: y_pred)
    x = args if len(args) > 1 else args[0]
    leaves = keras.tree.flatten(x)
    if any(_is_tf_tensor(leaf) for leaf in leaves):  # e.g. a batch of tf.string: one tf.data element
        import tensorflow as tf

        data = tf.data.Dataset.from_tensors((x, np.zeros((), "float32")))
        history = probe.fit(data, epochs=1, shuffle=False, verbose=0)
    else:
        batch = len(leaves[0])
        history = probe.fit(x, np.zeros((batch,), "float32"), batch_size=batch, epochs=1, shuffle=False, verbose=0)
    return history.history["loss"][0]


def _assert_registered(layer, name):
    """`layer` serializes and deserializes to its class (a class Keras can find by its registered name)."""
    serialized = keras.saving.serialize_keras_object(layer)
    try:
        revived = keras.saving.deserialize_keras_object(serialized)
    except TypeError as e:  # Keras: "Could not locate class ..."
        revived = e
    assert "registered_name" in serialized and isinstance(revived, type(layer)), (
        f"{name} is not registered for serialization: decorate it with "
        f"tlbkit.serialization.register_serializable (or keras.saving.register_keras_serializable). "
        f"Deserializing it gave: {revived}")


def run_layer_test(make_layer, inputs, call_kwargs=None, symbolic=True, fit=True, mixed_precision=True,
                   mixed_output_dtype="bfloat16", mask_check=None, atol=1e-5):
    """The checks every layer of a tlbkit model should pass, on the layer `make_layer(**extra_kwargs)` builds.

    In order: a config round trip whose rebuilt layer, given the same weights, computes the same outputs;
    registration for serialization; a symbolic call
    (`keras.Input`) with the eager call's shapes; one `fit` step that changes the trainable weights; a
    `mixed_bfloat16` run (float32 weights, bfloat16 computation); then `mask_check`.

    Args:
        make_layer: callable(**kwargs) -> a new layer. It must forward its kwargs to the layer (the
            mixed-precision check passes `dtype`).
        inputs: the positional inputs: one value or a tuple of values (arrays, `tf.string` tensors, dicts).
        call_kwargs: dict or None. Keyword arguments of every call (e.g. `padding_mask`).
        symbolic: bool. Also call the layer on `keras.Input`s (when no input is a dict). Defaults to `True`.
        fit: bool. Train it one step inside a model. Defaults to `True`.
        mixed_precision: bool. Also run it under `mixed_bfloat16`. Defaults to `True`.
        mixed_output_dtype: str. The dtype of its float outputs then (a head's logits stay `"float32"`).
            Defaults to `"bfloat16"`.
        mask_check: callable(layer) or None. Asserts the layer's masking behaviour (e.g. outputs at real
            positions independent of what padding holds).
        atol: float. Tolerance of the output comparisons. Defaults to `1e-5`.

    Returns:
        The layer after the checks (built, trained one step when `fit`).

    Example:
    >>> from tlbkit.layers import TransformerEncoder
    >>> x = np.zeros((2, 6, 8), "float32")
    >>> layer = run_layer_test(lambda **kw: TransformerEncoder(8, num_heads=2, num_layers=1, **kw), x,
    ...                        mixed_precision=False)  # doctest: +SKIP
    """
    call_kwargs = dict(call_kwargs or {})
    args = inputs if isinstance(inputs, tuple) else (inputs,)

    # === Config round trip, with equal outputs ===
    keras.utils.set_random_seed(0)
    layer = make_layer()
    name = f"{type(layer).__name__} {layer.name!r}"
    outputs = layer(*args, **call_kwargs)
    config = layer.get_config()
    revived = layer.__class__.from_config(config)
    assert revived.get_config() == config, f"{name}: from_config(get_config()) changed the config"
    revived(*args, **call_kwargs)
    revived.set_weights(layer.get_weights())
    for a, b in zip(_float_outputs(outputs), _float_outputs(revived(*args, **call_kwargs))):
        np.testing.assert_allclose(_numpy(b), _numpy(a), atol=atol,
                                   err_msg=f"{name}: from_config(get_config()) with the same weights computes "
                                           "other outputs (does get_config() hold every argument?)")
    _assert_registered(layer, name)

    # === Symbolic call ===
    if symbolic and all(not isinstance(a, dict) for a in args):
        symbolic_outputs = make_layer()(*[_symbolic(a) for a in args], **call_kwargs)
        for eager, sym in zip(keras.tree.flatten(outputs), keras.tree.flatten(symbolic_outputs)):
            if eager is None:
                assert sym is None, f"{name}: the symbolic call gives a tensor where the eager call gives None"
                continue
            eager_shape, sym_shape = tuple(eager.shape), tuple(sym.shape)
            assert len(eager_shape) == len(sym_shape) and all(
                s is None or s == e for s, e in zip(sym_shape[1:], eager_shape[1:])), (
                f"{name}: symbolic output shape {sym_shape} does not match the eager call's {eager_shape}")

    # === One fit step ===
    if fit:
        before = [_numpy(w).copy() for w in layer.trainable_weights]
        loss = _fit_one_step(layer, args, call_kwargs)
        assert np.isfinite(loss), f"{name}: one fit step gave the loss {loss}"
        after = [_numpy(w) for w in layer.trainable_weights]
        assert any(not np.array_equal(a, b) for a, b in zip(before, after)), f"{name}: one fit step changed no weight"

    # === Mixed precision ===
    if mixed_precision:
        mixed = make_layer(dtype="mixed_bfloat16")
        mixed_outputs = mixed(*args, **call_kwargs)
        wrong = [w.path for w in mixed.weights if "float" in str(w.dtype) and w.dtype != "float32"]
        assert not wrong, f"{name} under mixed_bfloat16: weights {wrong} are not float32"
        computed = _float_outputs(mixed_outputs)
        dtypes = [keras.backend.standardize_dtype(t.dtype) for t in computed]
        assert dtypes and all(d == mixed_output_dtype for d in dtypes), (
            f"{name} under mixed_bfloat16: float outputs of dtypes {dtypes}, expected {mixed_output_dtype}")
        for t in computed:
            assert np.isfinite(_numpy(keras.ops.cast(t, "float32"))).all(), f"{name} under mixed_bfloat16: not finite"

    if mask_check is not None:
        mask_check(layer)
    return layer


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
    _assert_registered(layer, type(layer).__name__)


def run_saving_test(model, inputs, folder=None, atol=1e-6):
    """The model survives tlbkit's save and checked load: every weight restored, and the outputs recorded on
    the probe input at saving time come back (a layer whose `get_config` omits an argument that changes its
    outputs fails, named). An argument that only construction uses, its effect saved otherwise (a text
    tokenizer's `corpus`, saved as its `vocabulary`), passes; `run_config_test` is the strict check.

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
    saving.set_probe(model, inputs)
    with tempfile.TemporaryDirectory(prefix="tlbkit-testing-") as tmp:
        path = os.path.join(str(folder or tmp), "model.keras")
        saving.save_model(model, path)
        assert saving.read_probe(path) is not None, "the saved file holds no probe"
        try:
            loaded = saving.load_model(path)
        except (saving.WeightsNotRestoredError, saving.OutputsChangedError) as e:
            raise AssertionError(f"{type(e).__name__}: {e}") from e
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
