"""The backend loop over chunks: `keras.ops.scan` semantics, one `tf.while_loop` under TensorFlow."""

import keras
from keras import ops


def chunk_loop(body, init, xs, ys_specs, parallel_iterations=10):
    """`keras.ops.scan` semantics: `body(carry, x_i) -> (carry, ys_i)`; returns (carry, stacked ys).

    `ys_i` is a tuple of tensors whose (shape, dtype) are listed in `ys_specs`;
    `parallel_iterations` is passed to TensorFlow's `while_loop` (ignored elsewhere).

    JAX and torch: `keras.ops.scan`. TensorFlow: one `tf.while_loop` over
    TensorArrays of a fixed size with `maximum_iterations` set, which is at once
    differentiable, compilable by XLA (`jit_compile=True`, training included) and
    linear in the number of chunks in graph mode. (Keras 3.15's TensorFlow `scan`
    cannot be XLA-compiled, fails when the number of steps is unknown at trace
    time, and stacks outputs only when they are shaped like the carry.)
    """
    if keras.backend.backend() != "tensorflow":
        return ops.scan(body, init, xs)
    import tensorflow as tf

    xs_flat = [tf.convert_to_tensor(x) for x in keras.tree.flatten(xs)]
    n = xs_flat[0].shape[0]
    if n is None:
        n = tf.shape(xs_flat[0])[0]
    xs_arrays = [tf.TensorArray(x.dtype, size=n, element_shape=x.shape[1:]).unstack(x) for x in xs_flat]
    ys_arrays = [tf.TensorArray(dtype, size=n, element_shape=shape) for shape, dtype in ys_specs]

    def loop(i, carry, arrays):
        x_i = keras.tree.pack_sequence_as(xs, [a.read(i) for a in xs_arrays])
        carry, ys = body(carry, x_i)
        arrays = [a.write(i, y) for a, y in zip(arrays, ys)]
        return i + 1, carry, arrays

    _, carry, ys_arrays = tf.while_loop(
        lambda i, carry, arrays: i < n, loop, (tf.constant(0), init, ys_arrays), maximum_iterations=n,
        parallel_iterations=parallel_iterations,
    )
    return carry, tuple(a.stack() for a in ys_arrays)
