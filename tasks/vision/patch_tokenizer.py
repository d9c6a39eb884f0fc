"""Images -> patch tokens: Conv2D projection, learned position embedding, LayerNorm."""

import keras
from keras import ops

from tlbkit import registry
from tlbkit.api_export import tlbkit_export
from tlbkit.layers import checks


def check_image_size(image_size, patch_size):
    checks.positive_int("image_size", image_size)
    checks.positive_int("patch_size", patch_size)
    if image_size % patch_size:
        raise ValueError(
            f"image_size {image_size} is not divisible by patch_size {patch_size}: choose an image_size that is "
            f"a multiple of {patch_size} (e.g. {image_size - image_size % patch_size}) or another patch_size."
        )


def check_input_shape(layer, images_shape, size):
    if images_shape is not None and len(images_shape) == 4:
        h, w = images_shape[1], images_shape[2]
        if (h is not None and h != size) or (w is not None and w != size):
            raise ValueError(
                f"{layer} expects {size}x{size} images, got {h}x{w}. Make the dataset's image_size "
                f"equal the tokenizer's image_size ({size})."
            )


@registry.TOKENIZERS.register("patch")
@tlbkit_export("tlbkit_tasks.vision.PatchTokenizer")
class PatchTokenizer(keras.layers.Layer):
    """Cuts (B, S, S, C) images into non-overlapping patches and embeds them.

    Conv2D with kernel = stride = `patch_size`, flattened row-major to
    (B, (S/p)^2, dim), plus a learned position embedding, then LayerNorm (as
    the keras-io TLB example; 12,480 weights for 48x48x3, patch 4, dim 64).

    Args:
        image_size: int. Side of the (square) input images.
        patch_size: int. Side of a patch; must divide `image_size`.
        dim: int. Token width.
        norm: bool. LayerNorm after the position embedding. Defaults to `True`.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, image_size, patch_size, dim, norm=True, **kwargs):
        super().__init__(**kwargs)
        check_image_size(image_size, patch_size)
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
        x = self.projection(images)
        x = ops.reshape(x, (-1, self.num_patches, self.dim))
        x = x + self.position(ops.arange(self.num_patches))[None]
        if self.layernorm is not None:
            x = self.layernorm(x)
        return {"tokens": x}

    def get_config(self):
        config = super().get_config()
        config.update({"image_size": self.image_size, "patch_size": self.patch_size, "dim": self.dim,
                       "norm": self.norm})
        return config
