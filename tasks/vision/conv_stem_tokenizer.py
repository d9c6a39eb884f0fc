"""Images -> tokens through a small convolutional stem (as compact convolutional transformers)."""

import keras
from keras import ops

from tlbkit import registry
from tlbkit.api_export import tlbkit_export
from tasks.vision.patch_tokenizer import check_input_shape


@registry.TOKENIZERS.register("conv_stem")
@tlbkit_export("tasks.vision.ConvStemTokenizer")
class ConvStemTokenizer(keras.layers.Layer):
    """Conv3x3 + ReLU + MaxPool(3, stride 2) stages, then tokens = the final feature map's pixels.

    Each stage halves the resolution: `image_size=32` with two stages gives an
    8x8 grid = 64 tokens. A learned position embedding and LayerNorm follow.

    Args:
        image_size: int. Side of the input images.
        dim: int. Token width (channels of the last stage).
        filters: list of int. Channels of the stages before the last (the last
            has `dim`). Defaults to `(64,)`: two stages.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, image_size, dim, filters=(64,), **kwargs):
        super().__init__(**kwargs)
        filters = list(filters) + [dim]
        size = image_size
        for _ in filters:
            if size % 2:
                raise ValueError(
                    f"image_size {image_size} cannot be halved {len(filters)} times (stage input {size} is odd): "
                    f"use an image_size divisible by {2 ** len(filters)} or fewer stages."
                )
            size //= 2
        self.image_size = image_size
        self.dim = dim
        self.filters = tuple(filters[:-1])
        self.grid = size
        self.num_tokens = size * size
        self.convs = [keras.layers.Conv2D(f, 3, padding="same", use_bias=False, dtype=self.dtype_policy,
                                          name=f"conv_{i}") for i, f in enumerate(filters)]
        self.pools = [keras.layers.MaxPooling2D(3, strides=2, padding="same", dtype=self.dtype_policy)
                      for _ in filters]
        self.position = keras.layers.Embedding(self.num_tokens, dim, dtype=self.dtype_policy, name="position")
        self.layernorm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="layernorm")

    def build(self, images_shape=None):
        check_input_shape("ConvStemTokenizer", images_shape, self.image_size)
        channels = images_shape[-1] if images_shape is not None else 3
        size = self.image_size
        for conv in self.convs:
            conv.build((None, size, size, channels))
            channels, size = conv.filters, size // 2
        self.position.build((None,))
        self.layernorm.build((None, None, self.dim))
        self.built = True

    def call(self, images):
        x = images
        for conv, pool in zip(self.convs, self.pools):
            x = pool(ops.relu(conv(x)))
        x = ops.reshape(x, (-1, self.num_tokens, self.dim))
        x = self.layernorm(x + self.position(ops.arange(self.num_tokens))[None])
        return {"tokens": x, "mask": None}

    def get_config(self):
        config = super().get_config()
        config.update({"image_size": self.image_size, "dim": self.dim, "filters": list(self.filters)})
        return config
