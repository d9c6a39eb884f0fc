"""Test-time views of images: each image and its mirror image."""

import keras
from keras import ops

from tlbkit import registry
from tlbkit.serialization import register_serializable


@registry.VIEWS.register("flip")
@register_serializable("tlbkit_tasks.vision.FlipViews")
class FlipViews(keras.layers.Layer):
    """A batch of images -> `[images, images mirrored left to right]`.

    Given to `SequenceClassifier(test_time_views=...)` (gin: `models.classifier.test_time_views =
    @views.flip()`), the classifier averages its logits over an image and its mirror image at inference:
    test-time augmentation for models trained with random flips (the `crop_flip` augmentation), which costs
    a second forward pass per image. Training is untouched. No weights.

    Args:
        **kwargs: forwarded to `keras.layers.Layer`. The images keep their dtype (no autocast: uint8 images
            stay uint8 for the tokenizer to convert).

    Call arguments:
        images: (B, H, W, C) tensor (channels last).

    Returns:
        A list of two (B, H, W, C) tensors: the images, then the images with their width axis reversed.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)

    def call(self, images):
        if len(images.shape) != 4:
            raise ValueError(f"FlipViews expects (batch, height, width, channels) images; got shape {images.shape}.")
        return [images, ops.flip(images, axis=2)]

    def compute_output_spec(self, images):
        return [keras.KerasTensor(images.shape, dtype=images.dtype) for _ in range(2)]
