"""Pad-and-crop augmentation as an in-model layer that every backend can jit (JAX, TensorFlow XLA, torch)."""

import keras
from keras import ops

from tlbkit import checks
from tlbkit.serialization import register_serializable

FILL_MODES = ("reflect", "constant")


@register_serializable("tlbkit_tasks.vision.RandomShift")
class RandomShift(keras.layers.Layer):
    """Shifts each image by its own random whole number of pixels, as padding then a random crop does.

    Each example is padded by `max_shift` pixels on every side (`"reflect"`: mirrored without repeating the
    edge, as `tf.pad(mode="REFLECT")`; `"constant"`: zeros) and cropped back to its size at an offset drawn
    uniformly from `0..2 * max_shift` in each direction. This is the `crop_flip` augmentation of the image
    datasets (`resize_margin = 2 * max_shift`) for runs whose augmentation lives in the model, e.g. on an
    accelerator under JAX: Keras' own RandomTranslation and RandomCrop declare `supports_jit = False` (a
    JAX model holding one trains op by op) and RandomCrop draws one offset per batch. The crop is two
    batched one-hot matrix products, so it compiles everywhere. Identity at inference.

    Args:
        max_shift: int. Largest shift in pixels, in each direction.
        fill_mode: str. `"reflect"` or `"constant"`. Defaults to `"reflect"`.
        seed: int or None. Seed of the offsets.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        images: (B, H, W, C) float tensor with H, W > `max_shift` (reflect).
        training: bool. Shift only when True.
    """

    def __init__(self, max_shift, fill_mode="reflect", seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"`max_shift` must be an integer >= 0 (pixels). Received: max_shift={max_shift!r}")
        checks.one_of("fill_mode", fill_mode, FILL_MODES)
        self.max_shift = max_shift
        self.fill_mode = fill_mode
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _one_hot_crop(self, offsets, size):
        """(B, size, size + 2 * max_shift) rows selecting positions offset .. offset + size - 1."""
        positions = offsets[:, None] + ops.arange(size, dtype="int32")[None, :]
        return ops.one_hot(positions, size + 2 * self.max_shift, dtype=self.compute_dtype)

    def call(self, images, training=None):
        if not training or self.max_shift == 0:
            return images
        p = self.max_shift
        height, width = images.shape[1], images.shape[2]
        if self.fill_mode == "reflect" and (height is not None and height <= p or width is not None and width <= p):
            raise ValueError(f"reflect padding needs images larger than max_shift={p}; got {height}x{width}.")
        padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], mode=self.fill_mode)
        batch = ops.shape(images)[0]
        offsets = keras.random.randint((2, batch), 0, 2 * p + 1, dtype="int32", seed=self.seed_generator)
        rows = self._one_hot_crop(offsets[0], height)  # (B, H, H + 2p)
        cols = self._one_hot_crop(offsets[1], width)  # (B, W, W + 2p)
        x = ops.einsum("bip,bpqc->biqc", rows, ops.cast(padded, self.compute_dtype))
        return ops.einsum("bjq,biqc->bijc", cols, x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"max_shift": self.max_shift, "fill_mode": self.fill_mode, "seed": self.seed})
        return config
