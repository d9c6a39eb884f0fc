"""tlbkit's AdamW updates every weight, moment and average exactly as Keras' AdamW does (under JAX too:
`test_backends.JAX_RERUNS`), in a smaller graph, and saves and reloads like any optimizer."""

import keras
import numpy as np

from tlbkit import optimizers


def train_weights(optimizer_class, use_ema):
    """A small model trained 8 steps with a warmup-cosine schedule, clipping, weight decay on the matrices:
    its first kernel before training, and after training its weights, then the optimizer's variables
    (moments, average, step counter)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.LayerNormalization(), keras.layers.Dense(3)])
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 20, alpha=0.1, warmup_target=1e-2, warmup_steps=3)
    optimizer = optimizer_class(learning_rate=schedule, weight_decay=1e-2, global_clipnorm=1.0, use_ema=use_ema)
    optimizer.exclude_from_weight_decay(var_list=[v for v in model.trainable_variables if len(v.shape) <= 1])
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = np.asarray(model.weights[0])
    x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    return initial, [np.asarray(v) for v in model.weights] + [np.asarray(v) for v in optimizer.variables]


def assert_same_as_keras():
    for use_ema in (False, True):
        initial, ours = train_weights(optimizers.AdamW, use_ema)
        _, theirs = train_weights(keras.optimizers.AdamW, use_ema)
        assert len(ours) == len(theirs) > 10 and not np.allclose(ours[0], initial)  # and the weights moved
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)


def test_updates_equal_keras_adamw_bit_for_bit():
    assert_same_as_keras()


def test_the_step_graph_is_smaller_than_keras_adamw():
    """Counted in TensorFlow graph operations for one traced update of 6 variables, 4 of them decayed."""
    import tensorflow as tf

    def operations(optimizer_class):
        variables = [keras.Variable(np.ones(shape, "float32")) for shape in [(4, 4), (4,), (4, 4), (4,), (4, 2), (2,)]]
        schedule = keras.optimizers.schedules.CosineDecay(0.0, 20, warmup_target=1e-2, warmup_steps=3)
        optimizer = optimizer_class(learning_rate=schedule, weight_decay=1e-2)
        optimizer.build(variables)
        step = tf.function(lambda grads: optimizer.apply(grads, variables))
        graph = step.get_concrete_function([tf.TensorSpec(v.shape) for v in variables]).graph
        return len(graph.get_operations())

    ours, theirs = operations(optimizers.AdamW), operations(keras.optimizers.AdamW)
    assert ours < 0.75 * theirs, (ours, theirs)


def test_saves_and_reloads_with_the_model(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizers.AdamW(learning_rate=1e-3, weight_decay=0.05), "mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is optimizers.AdamW and loaded.optimizer.weight_decay == 0.05
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
