"""A plain re-implementation of the keras-io example's design, for benchmarks and the numerics test.

"When Recurrence meets Transformers" (keras-io, Keras 3 form): `keras.layers.RNN` over a custom cell
built from `keras.layers.MultiHeadAttention`, `LayerNormalization` and `Dense`, exactly as the example
composes them (separate query/key/value LayerNorms, the perceptual-module list whose blocks 0, 2, 4 are
re-used for cross-attention, latents = chunk_size, zero initial state, GAP over the last chunk's fast
output, softmax head). It is deliberately *not* tlbkit: it is the baseline tlbkit is measured against.

It lives beside the test that checks tlbkit against it (tests/test_keras_io_reference.py); the benchmarks
that time it (bench/throughput.py, profile.py, recurrence.py, gpu_bench.py) put tests/ on `sys.path`.
"""


import keras
from keras import layers, ops


class PatchEmbedding(layers.Layer):
    def __init__(self, image_size, patch_size, embed_dim, chunk_size, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = (image_size // patch_size) ** 2
        self.chunk_size, self.embed_dim = chunk_size, embed_dim
        self.projection = layers.Conv2D(embed_dim, patch_size, strides=patch_size, name="projection")
        self.position_embedding = layers.Embedding(self.num_patches, embed_dim, name="position_embedding")
        self.layernorm = layers.LayerNormalization(epsilon=1e-5, name="layernorm")

    def call(self, inputs):
        x = ops.reshape(self.projection(inputs), (-1, self.num_patches, self.embed_dim))
        x = self.layernorm(x + self.position_embedding(ops.arange(self.num_patches))[None])
        return ops.reshape(x, (-1, self.num_patches // self.chunk_size, self.chunk_size * self.embed_dim))


class AttentionWithFFN(layers.Layer):
    def __init__(self, dims, dropout, num_heads, key_dim, attn_dropout, **kwargs):
        super().__init__(**kwargs)
        self.mha = layers.MultiHeadAttention(num_heads=num_heads, key_dim=key_dim, dropout=attn_dropout, name="mha")
        self.q_layernorm = layers.LayerNormalization(epsilon=1e-5, name="q_layernorm")
        self.k_layernorm = layers.LayerNormalization(epsilon=1e-5, name="k_layernorm")
        self.v_layernorm = layers.LayerNormalization(epsilon=1e-5, name="v_layernorm")
        self.ffn_layernorm = layers.LayerNormalization(epsilon=1e-5, name="ffn_layernorm")
        self.dense_1 = layers.Dense(4 * dims, activation="gelu", name="dense_1")
        self.dense_2 = layers.Dense(dims, name="dense_2")
        self.dropout = layers.Dropout(dropout)

    def call(self, query, key, value, training=None):
        attn = self.mha(query=self.q_layernorm(query), key=self.k_layernorm(key), value=self.v_layernorm(value),
                        training=training)
        x = query + attn
        return x + self.dropout(self.dense_2(self.dense_1(self.ffn_layernorm(x))), training=training)


class CustomRecurrentCell(layers.Layer):
    def __init__(self, chunk_size, r, num_layers, dims, dropout, num_heads, key_dim, attn_dropout, **kwargs):
        super().__init__(**kwargs)
        self.chunk_size, self.r, self.dims = chunk_size, r, dims
        self.state_size = chunk_size * dims
        self.output_size = chunk_size * dims
        block = dict(dims=dims, dropout=dropout, num_heads=num_heads, key_dim=key_dim, attn_dropout=attn_dropout)
        self.perceptual_module = []
        for i in range(num_layers):
            self.perceptual_module.append(AttentionWithFFN(**block, name=f"pm_self_attn_{i}"))
            if i % r == 0:
                self.perceptual_module.append(AttentionWithFFN(**block, name=f"pm_cross_attn_ffn_{i}"))
        self.tlb_module = AttentionWithFFN(**block, name="tlb_cross_attn_ffn")

    def call(self, inputs, states, training=None):
        shape = (-1, self.chunk_size, self.dims)
        slow = ops.reshape(states[0], shape)
        fast = ops.reshape(inputs, shape)
        for idx, layer in enumerate(self.perceptual_module):
            fast = layer(fast, fast, fast, training=training)
            if idx % self.r == 0:
                fast = layer(fast, slow, slow, training=training)
        slow = self.tlb_module(slow, fast, fast, training=training)
        flat = (-1, self.chunk_size * self.dims)
        return ops.reshape(fast, flat), [ops.reshape(slow, flat)]


class KerasIOModel(keras.Model):
    """Patch embedding -> RNN(CustomRecurrentCell) -> GAP over the last chunk -> softmax head."""

    def __init__(self, image_size=48, patch_size=4, embed_dim=64, chunk_size=8, r=2, num_layers=4, dropout=0.2,
                 attn_dropout=0.2, num_heads=1, num_classes=10, **kwargs):
        super().__init__(**kwargs)
        self.chunk_size, self.embed_dim = chunk_size, embed_dim
        self.patch_layer = PatchEmbedding(image_size, patch_size, embed_dim, chunk_size)
        self.cell = CustomRecurrentCell(chunk_size, r, num_layers, embed_dim, dropout, num_heads, embed_dim,
                                        attn_dropout)
        self.rnn = layers.RNN(self.cell, name="rnn")
        self.head = layers.Dense(num_classes, activation="softmax", dtype="float32", name="head")

    def call(self, inputs, training=None):
        x = self.rnn(self.patch_layer(inputs), training=training)
        x = ops.mean(ops.reshape(x, (-1, self.chunk_size, self.embed_dim)), axis=1)
        return self.head(x)


def copy_weights_to_tlbkit(reference, model):
    """Copies a built KerasIOModel's weights into a built tlbkit keras-io-mode SequenceClassifier."""
    import numpy as np

    tok = model.tokenizer
    pe = reference.patch_layer
    tok.projection.set_weights(pe.projection.get_weights())
    tok.position.set_weights(pe.position_embedding.get_weights())
    tok.layernorm.set_weights(pe.layernorm.get_weights())
    cell = model.encoder.cell
    pairs = list(zip(reference.cell.perceptual_module, cell.fast_blocks)) + [(reference.cell.tlb_module, cell.slow_block)]
    for ref, ours in pairs:
        dims = ours.dim
        q, k, v, o = (ref.mha._query_dense, ref.mha._key_dense, ref.mha._value_dense, ref.mha._output_dense)
        kernels = [np.reshape(d.kernel.numpy(), (dims, -1)) for d in (q, k, v)]
        biases = [np.reshape(d.bias.numpy(), (-1,)) for d in (q, k, v)]
        ours.qkv_kernel.assign(np.stack(kernels, axis=1))
        ours.qkv_bias.assign(np.stack(biases, axis=0))
        ours.output_kernel.assign(np.reshape(o.kernel.numpy(), (-1, dims)))
        ours.output_bias.assign(o.bias.numpy())
        norms = (ref.q_layernorm, ref.k_layernorm, ref.v_layernorm)
        ours.norm_scale.assign(np.stack([n.gamma.numpy() for n in norms]))
        ours.norm_shift.assign(np.stack([n.beta.numpy() for n in norms]))
        ours.ffn_norm_scale.assign(ref.ffn_layernorm.gamma.numpy())
        ours.ffn_norm_shift.assign(ref.ffn_layernorm.beta.numpy())
        ours.ffn_kernel_1.assign(ref.dense_1.kernel.numpy())
        ours.ffn_bias_1.assign(ref.dense_1.bias.numpy())
        ours.ffn_kernel_2.assign(ref.dense_2.kernel.numpy())
        ours.ffn_bias_2.assign(ref.dense_2.bias.numpy())
    model.head.dense.set_weights(reference.head.get_weights())


def build_tlbkit_keras_io(image_size=48, custom_gradient=True):
    """tlbkit's keras-io-mode model with the same shapes (what gin/cifar10_keras_io.gin builds).

    `custom_gradient=False` trains its attention blocks through automatic differentiation.
    """
    from tlbkit_tasks.vision import PatchTokenizer
    from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder
    from tlbkit.models import SequenceClassifier

    cell = TLBCell(dim=64, num_heads=1, key_dim=64, num_layers=4, r=2, num_latents=8, dropout=0.2,
                   attention_dropout=0.2, layout="keras_io", norm_mode="qkv", initial_state="zeros",
                   custom_gradient=custom_gradient)
    return SequenceClassifier(TLBEncoder(cell, chunk_size=8),
                              ClassificationHead(10, pooling="last_chunk", chunk_size=8, norm=False),
                              tokenizer=PatchTokenizer(image_size, 4, 64))


VARIANTS = ("reference_rnn", "tlbkit", "tlbkit_autodiff", "tlbkit_serial")


def check_variants(names, choices=VARIANTS):
    """Exits with one line naming the first of `names` that is not in `choices`."""
    for name in names:
        if name not in choices:
            raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(choices)}")


def compiled_variant(name, batch):
    """`(model, images, labels)`: benchmark variant `name` compiled for training, and one batch of
    seeded random 48x48 images and labels.

    Variants: `reference_rnn` (KerasIOModel), `tlbkit` (keras-io mode), `tlbkit_autodiff` (its attention
    blocks differentiated automatically), `tlbkit_serial` (`parallel_iterations=1`).
    """
    import numpy as np

    check_variants([name])
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).uniform(size=(batch, 48, 48, 3)).astype("float32")
    labels = np.random.default_rng(1).integers(0, 10, size=(batch,)).astype("int32")
    if name == "reference_rnn":
        model = KerasIOModel()
        loss = keras.losses.SparseCategoricalCrossentropy()
    else:
        model = build_tlbkit_keras_io(custom_gradient=name != "tlbkit_autodiff")
        if name == "tlbkit_serial":
            model.encoder.parallel_iterations = 1
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=1e-4), loss=loss)
    return model, images, labels
