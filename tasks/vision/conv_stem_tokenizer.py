"""Images -> tokens through a small convolutional stem (as compact convolutional transformers)."""

import keras
from keras import ops

from tlbkit import checks, registry
from tlbkit.serialization import register_serializable
from tlbkit_tasks.vision.patch_tokenizer import PIXEL_SCALE, check_input_scale, check_input_shape, scale_pixels

DOWNSAMPLES = ("pool", "stride")
NORMS = (None, "batch")
ACTIVATIONS = ("relu", "gelu")


@registry.TOKENIZERS.register("conv_stem")
@register_serializable("tlbkit_tasks.vision.ConvStemTokenizer")
class ConvStemTokenizer(keras.layers.Layer):
    """Convolution stages that each halve the resolution; tokens = the final feature map's pixels.

    A stage is a 3x3 convolution, an optional BatchNorm and an activation, halving
    the resolution either by a 3x3/2 max pool after the activation (`"pool"`, the
    compact convolutional transformer's stem) or by a stride-2 convolution
    (`"stride"`: four times cheaper). `image_size=32` with two stages gives an
    8x8 grid = 64 tokens, in row-major order. A learned position embedding and a
    LayerNorm follow.

    The images are pixel values in 0-255 (uint8, or floats as Keras' `load_img` + `img_to_array`
    give), multiplied by `input_scale` (1/255) inside the layer: the model takes what users hold,
    and the training pipeline feeds it the same 0-255 range.

    Args:
        image_size: int. Side of the input images.
        dim: int. Token width (channels of the last stage).
        filters: list of int. Channels of the stages before the last (the last
            has `dim`). Defaults to `(64,)`: two stages.
        downsample: str. `"pool"` or `"stride"`. Defaults to `"pool"`.
        norm: str or None. `"batch"` adds BatchNorm after each convolution.
            Defaults to `None`.
        activation: str. `"relu"` or `"gelu"` (tanh approximation). Defaults to `"relu"`.
        input_scale: float. Factor applied to the input pixel values. Defaults to `1/255` (0-255 pixels).
            Saved in the config; a model saved before the option existed was trained on 0-255 pixels
            divided by 255 in the input pipeline, so it loads with this default and takes 0-255 too.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        images: (B, image_size, image_size, C) pixel values, uint8 or float, 0-255.
        training: bool. BatchNorm uses batch statistics when `True`.

    Returns:
        dict: `tokens` (B, (image_size / 2^stages)^2, dim) (no `mask`: every token is real).

    Example:
    >>> tok = ConvStemTokenizer(image_size=32, dim=16, filters=(8,), downsample="stride", norm="batch")
    >>> tok(np.zeros((2, 32, 32, 3), "uint8"))["tokens"].shape
    (2, 64, 16)
    """

    def __init__(self, image_size, dim, filters=(64,), downsample="pool", norm=None, activation="relu",
                 input_scale=PIXEL_SCALE, **kwargs):
        super().__init__(**kwargs)
        self.input_scale = check_input_scale(input_scale)
        checks.positive_int("image_size", image_size)
        checks.positive_int("dim", dim)
        checks.one_of("downsample", downsample, DOWNSAMPLES)
        checks.one_of("norm", norm, NORMS)
        checks.one_of("activation", activation, ACTIVATIONS)
        filters = list(filters) + [dim]
        for f in filters:
            checks.positive_int("filters", f)
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
        self.downsample = downsample
        self.norm = norm
        self.activation = activation
        self.grid = size
        self.num_tokens = size * size
        strides = 2 if downsample == "stride" else 1
        self.convs = [keras.layers.Conv2D(f, 3, strides=strides, padding="same", use_bias=False,
                                          dtype=self.dtype_policy, name=f"conv_{i}") for i, f in enumerate(filters)]
        self.norms = [keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=self.dtype_policy,
                                                      name=f"batch_norm_{i}")
                      for i in range(len(filters))] if norm == "batch" else []
        self.pools = [keras.layers.MaxPooling2D(3, strides=2, padding="same", dtype=self.dtype_policy)
                      for _ in filters] if downsample == "pool" else []
        self.position = keras.layers.Embedding(self.num_tokens, dim, dtype=self.dtype_policy, name="position")
        self.layernorm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="layernorm")

    def build(self, images_shape=None):
        check_input_shape("ConvStemTokenizer", images_shape, self.image_size)
        channels = images_shape[-1] if images_shape is not None else 3
        size = self.image_size
        for i, conv in enumerate(self.convs):
            conv.build((None, size, size, channels))
            channels, size = conv.filters, size // 2
            if self.norms:
                self.norms[i].build((None, None, None, channels))
        self.position.build((None,))
        self.layernorm.build((None, None, self.dim))
        self.built = True

    def _activate(self, x):
        return ops.relu(x) if self.activation == "relu" else ops.gelu(x, approximate=True)

    def call(self, images, training=None):
        x = scale_pixels(self, images)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.norms:
                x = self.norms[i](x, training=training)
            x = self._activate(x)
            if self.pools:
                x = self.pools[i](x)
        x = ops.reshape(x, (-1, self.num_tokens, self.dim))
        x = self.layernorm(x + self.position(ops.arange(self.num_tokens))[None])
        return {"tokens": x}

    def get_config(self):
        config = super().get_config()
        config.update({"image_size": self.image_size, "dim": self.dim, "filters": list(self.filters),
                       "downsample": self.downsample, "norm": self.norm, "activation": self.activation,
                       "input_scale": self.input_scale})
        return config
