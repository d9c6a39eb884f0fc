"""`run_layer_test`: the checks every tlbkit layer (engine layers and shipped tokenizers) must pass.

Modelled on keras-hub's `TestCase.run_layer_test`: a config round trip whose rebuilt layer, given the same
weights, computes the same outputs; a symbolic call (`keras.Input`) with the eager call's shapes; one `fit`
step that changes the trainable weights; a `mixed_bfloat16` run (float32 weights, bfloat16 computation);
and, where the layer masks, outputs at real positions independent of what padding holds.
"""

import keras
import numpy as np
import tensorflow as tf

STRING = "string"


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def _float_outputs(outputs):
    """The floating-point tensors of a layer's output (a tensor, tuple or dict), in a fixed order."""
    flat = keras.tree.flatten(outputs)
    return [t for t in flat if t is not None and "float" in str(getattr(t, "dtype", ""))]


def _symbolic(value, batch_dim=None):
    """A `keras.Input` shaped like `value` without its batch size (strings: (None,) tf.string)."""
    value = value if isinstance(value, tf.Tensor) else np.asarray(value)
    dtype = "string" if value.dtype in (tf.string, object) or value.dtype.kind in "OSU" else str(
        value.dtype.name if hasattr(value.dtype, "name") else value.dtype)
    return keras.Input(shape=tuple(value.shape[1:]), batch_size=batch_dim, dtype=dtype)


class Probe(keras.Model):
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


def run_layer_test(make_layer, inputs, call_kwargs=None, symbolic=True, fit=True, mixed_precision=True,
                   mixed_output_dtype="bfloat16", mask_check=None, atol=1e-5):
    """Runs the shared checks on the layer `make_layer(**extra_kwargs)` builds.

    Args:
        make_layer: callable(**kwargs) -> a new layer (kwargs: `dtype` for the mixed-precision check).
        inputs: the positional inputs: one value or a tuple of values (arrays, `tf.string` tensors, dicts).
        call_kwargs: dict of keyword arguments for every call (e.g. `padding_mask`).
        symbolic: bool. Also call the layer on `keras.Input`s (inputs that are arrays or string tensors).
        fit: bool. Train it one step inside a model.
        mixed_precision: bool. Also run it under `mixed_bfloat16`.
        mixed_output_dtype: str. The dtype its float outputs have then (a head's logits stay float32).
        mask_check: optional callable(layer) that asserts the layer's masking behaviour.
        atol: float. Tolerance of the output comparisons.

    Returns:
        The layer after the checks (built, trained one step).
    """
    call_kwargs = dict(call_kwargs or {})
    args = inputs if isinstance(inputs, tuple) else (inputs,)

    # === Config round trip, with equal outputs ===
    keras.utils.set_random_seed(0)
    layer = make_layer()
    outputs = layer(*args, **call_kwargs)
    config = layer.get_config()
    revived = layer.__class__.from_config(config)
    assert revived.get_config() == config
    revived(*args, **call_kwargs)
    revived.set_weights(layer.get_weights())
    for a, b in zip(_float_outputs(outputs), _float_outputs(revived(*args, **call_kwargs))):
        np.testing.assert_allclose(to_numpy(b), to_numpy(a), atol=atol)
    # Registered for serialization: the serialized form names tlbkit's package, and deserializes.
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"].split(">")[0] in ("tlbkit", "tlbkit_tasks"), serialized["registered_name"]
    assert isinstance(keras.saving.deserialize_keras_object(serialized), layer.__class__)

    # === Symbolic call ===
    if symbolic and all(not isinstance(a, dict) for a in args):
        symbolic_args = [_symbolic(a) for a in args]
        symbolic_outputs = make_layer()(*symbolic_args, **call_kwargs)
        for eager, sym in zip(keras.tree.flatten(outputs), keras.tree.flatten(symbolic_outputs)):
            if eager is None:
                assert sym is None
                continue
            eager_shape, sym_shape = tuple(eager.shape), tuple(sym.shape)
            assert len(eager_shape) == len(sym_shape)
            assert all(s is None or s == e for s, e in zip(sym_shape[1:], eager_shape[1:])), (sym_shape, eager_shape)

    # === One fit step ===
    if fit:
        probe = Probe(layer, call_kwargs)
        probe.compile(optimizer=keras.optimizers.SGD(0.1), loss=lambda y_true, y_pred: y_pred)
        before = [to_numpy(w).copy() for w in layer.trainable_weights]
        data = tf.data.Dataset.from_tensors((args if len(args) > 1 else args[0], np.zeros((), "float32")))
        history = probe.fit(data, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        after = [to_numpy(w) for w in layer.trainable_weights]
        assert any(not np.array_equal(a, b) for a, b in zip(before, after)), "one fit step changed no weight"

    # === Mixed precision ===
    if mixed_precision:
        mixed = make_layer(dtype="mixed_bfloat16")
        mixed_outputs = mixed(*args, **call_kwargs)
        assert all(w.dtype == "float32" for w in mixed.weights if "float" in str(w.dtype)), "weights not float32"
        computed = _float_outputs(mixed_outputs)
        dtypes = [keras.backend.standardize_dtype(t.dtype) for t in computed]
        assert dtypes and all(d == mixed_output_dtype for d in dtypes), dtypes
        for t in computed:
            assert np.isfinite(to_numpy(keras.ops.cast(t, "float32"))).all()

    if mask_check is not None:
        mask_check(layer)
    return layer


def assert_model_reloads(tokenizer, inputs, path, dim=16):
    """A small TLB classifier around `tokenizer` survives `save` and tlbkit's checked load with equal outputs."""
    from tlbkit import saving
    from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder
    from tlbkit.models import SequenceClassifier

    keras.utils.set_random_seed(0)
    model = SequenceClassifier(
        TLBEncoder(TLBCell(dim=dim, num_heads=2, num_layers=2, r=1, num_latents=2), chunk_size=4),
        ClassificationHead(3), tokenizer=tokenizer)
    expected = to_numpy(model(inputs))
    model.save(str(path))
    np.testing.assert_allclose(to_numpy(saving.load_model(str(path))(inputs)), expected, atol=1e-6)
