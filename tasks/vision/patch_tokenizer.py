"""Images -> patch tokens: Conv2D projection, learned position embedding, LayerNorm."""

import keras
from keras import ops

from tlbkit import checks, registry
from tlbkit.serialization import register_serializable


def check_image_size(image_size, patch_size):
    checks.positive_int("image_size", image_size)
    checks.positive_int("patch_size", patch_size)
    if image_size % patch_size:
        raise ValueError(
            f"image_size {image_size} is not divisible by patch_size {patch_size}: choose an image_size that is "
            f"a multiple of {patch_size} (e.g. {image_size - image_size % patch_size}) or another patch_size."
        )


PIXEL_SCALE = 1 / 255.0  # images are 0-255 pixel values (uint8 or float), Keras' `img_to_array` range


def check_input_scale(input_scale):
    """`input_scale` must be a positive number (the factor applied to the pixel values in the model)."""
    if isinstance(input_scale, bool) or not isinstance(input_scale, (int, float)) or not input_scale > 0:
        raise ValueError(f"`input_scale` must be a positive number (1/255 for 0-255 pixel values). "
                         f"Received: input_scale={input_scale!r}")
    return float(input_scale)


def scale_pixels(layer, images):
    """`images` (any numeric dtype: uint8 pixels too) cast to the layer's compute dtype and scaled by its
    `input_scale` (the multiplication of keras' `Rescaling`, so 0-255 inputs give the old pipeline's values)."""
    x = ops.cast(images, layer.compute_dtype)
    return ops.cast(layer.input_scale, layer.compute_dtype) * x


def check_input_shape(layer, images_shape, size):
    if images_shape is not None and len(images_shape) == 4:
        h, w = images_shape[1], images_shape[2]
        if (h is not None and h != size) or (w is not None and w != size):
            raise ValueError(
                f"{layer} expects {size}x{size} images, got {h}x{w}. Make the dataset's image_size "
                f"equal the tokenizer's image_size ({size})."
            )


@registry.TOKENIZERS.register("patch")
@register_serializable("tlbkit_tasks.vision.PatchTokenizer")
class PatchTokenizer(keras.layers.Layer):
    """Cuts (B, S, S, C) images into non-overlapping patches and embeds them.

    The images are pixel values in 0-255 (uint8, or floats as Keras' `load_img` + `img_to_array`
    give); the tokenizer multiplies them by `input_scale` (1/255: values in [0, 1]) before the
    projection, so the model takes what users hold and the training pipeline feeds it the same range.

    Conv2D with kernel = stride = `patch_size`, flattened row-major to
    (B, (S/p)^2, dim), plus a learned position embedding, then LayerNorm (as
    the keras-io TLB example; 12,480 weights for 48x48x3, patch 4, dim 64).

    Args:
        image_size: int. Side of the (square) input images.
        patch_size: int. Side of a patch; must divide `image_size`.
        dim: int. Token width.
        norm: bool. LayerNorm after the position embedding. Defaults to `True`.
        input_scale: float. Factor applied to the input pixel values. Defaults to `1/255` (0-255 pixels).
            Saved in the config; a model saved before the option existed was trained on 0-255 pixels
            divided by 255 in the input pipeline, so it loads with this default and takes 0-255 too.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        images: (B, image_size, image_size, C) pixel values, uint8 or float, 0-255.

    Returns:
        dict: `tokens` (B, (image_size / patch_size)^2, dim).

    Example:
    >>> tok = PatchTokenizer(image_size=8, patch_size=4, dim=16)
    >>> tok(np.zeros((2, 8, 8, 3), "uint8"))["tokens"].shape
    (2, 4, 16)
    """

    def __init__(self, image_size, patch_size, dim, norm=True, input_scale=PIXEL_SCALE, **kwargs):
        super().__init__(**kwargs)
        check_image_size(image_size, patch_size)
        self.input_scale = check_input_scale(input_scale)
        self.image_size = image_size
        self.patch_size = patch_size
        self.dim = dim
        self.norm = norm
        self.num_patches = (image_size // patch_size) ** 2
        self.projection = keras.layers.Conv2D(dim, patch_size, strides=patch_size, dtype=self.dtype_policy,
                                              name="projection")
        self.position = keras.layers.Embedding(self.num_patches, dim, dtype=self.dtype_policy, name="position")
        self.layernorm = (keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="layernorm")
                          if norm else None)

    def build(self, images_shape=None):
        check_input_shape("PatchTokenizer", images_shape, self.image_size)
        channels = images_shape[-1] if images_shape is not None else 3
        self.projection.build((None, self.image_size, self.image_size, channels))
        self.position.build((None,))
        if self.layernorm is not None:
            self.layernorm.build((None, None, self.dim))
        self.built = True

    def call(self, images):
        x = self.projection(scale_pixels(self, images))
        x = ops.reshape(x, (-1, self.num_patches, self.dim))
        x = x + self.position(ops.arange(self.num_patches))[None]
        if self.layernorm is not None:
            x = self.layernorm(x)
        return {"tokens": x}

    def get_config(self):
        config = super().get_config()
        config.update({"image_size": self.image_size, "patch_size": self.patch_size, "dim": self.dim,
                       "norm": self.norm, "input_scale": self.input_scale})
        return config
