"""The matmul floor of the keras-io design: a step made of nothing but its matrix products.

The keras-io example's model at CIFAR-10 shapes (18 chunks of 8 tokens, dim 64, FFN 256, one head, 10
attention-block applications per chunk: 6 self-attention, 3 cross-attention, 1 slow update) does a
fixed set of matrix products per image. This module runs exactly those products, with their real
shapes and sequential dependencies (chunk n+1 uses chunk n's result), and nothing else: no
LayerNorm, softmax, GELU, dropout, bias or residual. Its time is a lower bound for any
implementation of the design that uses TensorFlow's matmuls on this machine, so `batch / time` is
an upper bound on examples/s:

- inference: the forward products, under XLA and under the graph executor (the faster counts);
- training: forward products, then for every forward product Y = X W its two backward products
  dX = dY W^T and dW = X^T dY (batched attention products likewise), plus the patch projection.
  Two arrangements, the faster counts: weight gradients per chunk (as a loop runs them), and every
  weight gradient of one block application batched over all chunks into one product (as a custom
  gradient of the whole loop could; its inputs are ready-made, so the copies it would need are free).

Not optimistic in one respect: a chunk's products run as one serial chain, where the design could
compute the slow state's projections (~6 % of the products) beside the fast stream.
The bound is about arithmetic: it holds at batch sizes where the products dominate (the keras-io design's 256).
At tiny batches per-op overhead dominates instead, and a model can match the floor's ~3,000 separate
products (one round at batch 8 measured tlbkit's XLA inference at ~100 % of it).

    python bench/matmul_floor.py --batch=256 [--xla_training]

bench/throughput.py times it in its rounds, alternating with the models, and prints the resulting ceilings.
"""

import json
import time

from absl import app, flags

CHUNKS, CHUNK, DIM, FFN, APPS, TOKENS, PATCH_DIM = 18, 8, 64, 256, 10, 144, 48


def _weights(tf):
    rnd = tf.random.stateless_normal
    return [
        {
            "qkv": rnd((DIM, 3 * DIM), (a, 0)) * 0.1,
            "out": rnd((DIM, DIM), (a, 1)) * 0.1,
            "ffn1": rnd((DIM, FFN), (a, 2)) * 0.1,
            "ffn2": rnd((FFN, DIM), (a, 3)) * 0.1,
        }
        for a in range(APPS)
    ]


def _keep(tensors):
    """One scalar that depends on every tensor (a 1x1 corner of each): keeps them from being pruned."""
    import tensorflow as tf

    return tf.add_n([tf.reshape(t, (-1,))[0] for t in tensors])


def _app_forward(tf, x, w, batch):
    """One block application's products on a (batch*8, 64) chunk; returns (output, saved tensors)."""
    qkv = tf.matmul(x, w["qkv"])
    x3 = tf.reshape(x, (batch, CHUNK, DIM))  # stands in for q, k and v (same shapes)
    scores = tf.matmul(x3, x3, transpose_b=True)
    mixed = tf.reshape(tf.matmul(scores, x3), (-1, DIM))
    o = tf.matmul(mixed, w["out"])
    h = tf.matmul(o, w["ffn1"])
    y = tf.matmul(h, w["ffn2"])
    return y, (x, qkv, x3, scores, mixed, o, h)


def _app_backward(tf, g, w, saved, weight_grads=True):
    """The backward products of one application; returns (input gradient, leaf tensors)."""
    x, qkv, x3, scores, mixed, o, h = saved
    batch = tf.shape(x3)[0]
    leaves = []
    dh = tf.matmul(g, w["ffn2"], transpose_b=True)
    do = tf.matmul(dh, w["ffn1"], transpose_b=True)
    dmixed = tf.matmul(do, w["out"], transpose_b=True)
    dm3 = tf.reshape(dmixed, (batch, CHUNK, DIM))
    dscores = tf.matmul(dm3, x3, transpose_b=True)
    dv = tf.matmul(scores, dm3, transpose_a=True)
    dq = tf.matmul(dscores, x3)
    dk = tf.matmul(dscores, x3, transpose_a=True)
    dx = tf.matmul(qkv, w["qkv"], transpose_b=True)  # qkv stands in for d(qkv), same shape
    leaves += [dv, dq, dk]
    if weight_grads:
        leaves += [
            tf.matmul(h, g, transpose_a=True),
            tf.matmul(o, dh, transpose_a=True),
            tf.matmul(mixed, do, transpose_a=True),
            tf.matmul(x, qkv, transpose_a=True),
        ]
    return dx, leaves


def floor_functions(batch, xla_training=False):
    """`{name: (tf.function, input)}`: the forward (graph, XLA) and training (two arrangements) floors.

    With `xla_training`, also the per-chunk training floor compiled with XLA ("train_per_chunk_xla").
    """
    import tensorflow as tf

    weights = _weights(tf)
    rows = batch * CHUNK
    chunks = tf.random.stateless_normal((CHUNKS, rows, DIM), (1, 0))
    patches = tf.random.stateless_normal((batch * TOKENS, PATCH_DIM), (2, 0))
    patch_kernel = tf.random.stateless_normal((PATCH_DIM, DIM), (3, 0))
    # Ready-made inputs of the all-chunk weight-gradient products (arrangement "batched"). Variables:
    # every use is its own read, so the ten applications' identical products are not merged.
    shapes = {"qkv": (DIM, 3 * DIM), "out": (DIM, DIM), "ffn1": (DIM, FFN), "ffn2": (FFN, DIM)}
    big = {
        name: tuple(tf.Variable(tf.random.stateless_normal((CHUNKS * rows, width), (4 + i, j)), trainable=False)
                    for j, width in enumerate(widths))
        for i, (name, widths) in enumerate(shapes.items())
    }

    def forward(chunks, keep_saved):
        state, leaves, saved = chunks[0], [], []
        for n in range(CHUNKS):
            x = chunks[n] + state[:1, :1]  # chunk n reads the previous chunk's result
            per_chunk = []
            for a in range(APPS):
                x, s = _app_forward(tf, x, weights[a], batch)
                leaves.append(s[1])  # qkv
                per_chunk.append(s)
            saved.append(per_chunk if keep_saved else None)
            state = x
        return state, leaves, saved

    def inference(chunks):
        state, leaves, _ = forward(chunks, keep_saved=False)
        return state[:1, :1] + _keep(leaves)

    def training(chunks, batched):
        emb = tf.matmul(patches, patch_kernel)
        state, leaves, saved = forward(chunks + tf.reshape(emb, (-1,))[0], keep_saved=True)
        g = state
        for n in reversed(range(CHUNKS)):
            for a in reversed(range(APPS)):
                g, more = _app_backward(tf, g, weights[a], saved[n][a], weight_grads=not batched)
                leaves += more
        if batched:
            for a in range(APPS):
                for inputs, grads in big.values():
                    leaves.append(tf.matmul(inputs, grads, transpose_a=True))
        leaves.append(tf.matmul(patches, emb, transpose_a=True))  # emb stands in for its gradient
        return _keep(leaves)

    functions = {
        "inference_graph": (tf.function(inference, jit_compile=False), chunks),
        "inference_xla": (tf.function(inference, jit_compile=True), chunks),
        "train_per_chunk": (tf.function(lambda c: training(c, False)), chunks),
        "train_batched": (tf.function(lambda c: training(c, True)), chunks),
    }
    if xla_training:
        functions["train_per_chunk_xla"] = (tf.function(lambda c: training(c, False), jit_compile=True), chunks)
    return functions


def floor_timer(batch, xla_training=False):
    """Traces the floor functions; returns `once()`, which runs each once and returns {name: examples/s}."""
    import numpy as np

    functions = floor_functions(batch, xla_training)
    for fn, arg in functions.values():
        np.asarray(fn(arg))

    def once():
        rates = {}
        for name, (fn, arg) in functions.items():
            t0 = time.perf_counter()
            np.asarray(fn(arg))
            rates[name] = batch / (time.perf_counter() - t0)
        return rates

    return once


def summarize(best):
    """The floors from the best {name: examples/s}: the fastest execution of each counts."""
    return {
        "floor_inference_examples_per_s": round(max(v for k, v in best.items() if k.startswith("inference")), 1),
        "floor_train_examples_per_s": round(max(v for k, v in best.items() if k.startswith("train")), 1),
        "floor_detail": {k: round(v, 1) for k, v in best.items()},
    }


def floor_rates(batch, repeats=3, xla_training=False):
    """`{"floor_inference_examples_per_s", "floor_train_examples_per_s", "floor_detail"}`: upper bounds
    on examples/s from the floors, best of `repeats` timed runs after tracing."""
    once = floor_timer(batch, xla_training)
    best = {}
    for _ in range(repeats):
        for name, rate in once().items():
            best[name] = max(best.get(name, 0.0), rate)
    return summarize(best)


def main(argv):
    del argv
    print(json.dumps(floor_rates(flags.FLAGS.batch, flags.FLAGS.repeats, flags.FLAGS.xla_training)))


if __name__ == "__main__":
    flags.DEFINE_integer("batch", 256, "Batch size.")
    flags.DEFINE_integer("repeats", 3, "Timed runs of each function; the best counts.")
    flags.DEFINE_bool("xla_training", False, "Also time the training floor compiled with XLA.")
    app.run(main)
