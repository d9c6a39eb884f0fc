"""Per-example augmentation for image classification, with native Keras 3 preprocessing layers.

keras-cv is not used: with Keras 3.15 / TF 2.21 its RandAugment fails inside a Keras 3 model and it pulls
in the legacy keras-core (docs/architecture.md).
"""

import keras

from tlbkit import checks

AUGMENTS = ("none", "flip", "crop_flip", "keras_io", "strong")
# Old augmentation names that configs may hold: they work as the new name.
RENAMED_AUGMENTS = {"seed": "keras_io"}


def make_maps(image_size, augment="keras_io", resize_margin=20, randaugment_ops=2, randaugment_factor=0.5,
              erasing=0.25, seed=0):
    """(train_map, eval_map) for `(uint8 image, label)` examples.

    Both give float32 images of 0-255 pixel values: the model's image tokenizer scales them (its
    `input_scale`), so a trained model takes the uint8 or 0-255 float images users hold.

    - eval: cast to float32, resize to `image_size`.
    - `"flip"`: the eval map, then a random horizontal flip.
    - `"crop_flip"` (the usual CIFAR augmentation): reflect-pad by
      `resize_margin // 2` on each side, random crop `image_size`, horizontal
      flip. Cheap: suited to short trainings.
    - `"keras_io"` (the keras-io example): resize to input size +
      `resize_margin` (32 -> 52), random crop `image_size`, horizontal flip.
    - `"strong"`: the keras-io example's, then RandAugment and random erasing.
    - `"none"`: the eval map for training too.

    Args:
        image_size: int. Model input side.
        augment: str. One of `AUGMENTS` (the old name `"seed"` works as `"keras_io"`, with a
            deprecation warning).
        resize_margin: int. Pixels added to the input side before the random crop.
        randaugment_ops: int. RandAugment operations per image (strong).
        randaugment_factor: float. RandAugment strength in [0, 1] (strong).
        erasing: float. Random-erasing probability (strong).
        seed: int. Seed of the random layers.
    """
    augment = checks.renamed("augment", augment, RENAMED_AUGMENTS)
    if augment not in AUGMENTS:
        raise ValueError(f"`augment` must be one of {AUGMENTS}. Received: augment={augment!r}")
    import tensorflow as tf

    resize_eval = keras.layers.Resizing(image_size, image_size, dtype="float32")

    def eval_map(image, label):
        return resize_eval(tf.cast(image, "float32")), label

    if augment == "none":
        return eval_map, eval_map

    flip = keras.layers.RandomFlip("horizontal", seed=seed + 1, dtype="float32")
    if augment == "flip":
        return (lambda image, label: (flip(eval_map(image, label)[0]), label)), eval_map
    if augment == "crop_flip":
        pad = resize_margin // 2
        crop = keras.layers.RandomCrop(image_size, image_size, seed=seed, dtype="float32")

        def crop_flip(image, label):
            x = eval_map(image, label)[0]
            x = tf.pad(x, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
            return flip(crop(x)), label

        return crop_flip, eval_map

    def train_layers(input_size):
        big = input_size + resize_margin
        layers = [keras.layers.Resizing(big, big, dtype="float32"),
                  keras.layers.RandomCrop(image_size, image_size, seed=seed, dtype="float32"), flip]
        if augment == "strong":
            layers.append(keras.layers.RandAugment(value_range=(0, 255), num_ops=randaugment_ops,
                                                   factor=randaugment_factor, seed=seed + 2, dtype="float32"))
            layers.append(keras.layers.RandomErasing(factor=erasing, scale=(0.02, 0.25), value_range=(0, 255),
                                                     seed=seed + 3, dtype="float32"))
        return layers

    cache = {}

    def train_map(image, label):
        size = int(image.shape[0]) if image.shape[0] is not None else image_size
        if size not in cache:
            cache[size] = train_layers(size)
        x = tf.cast(image, "float32")
        for layer in cache[size]:
            x = layer(x)  # Keras random layers default to training=True
        return x, label

    return train_map, eval_map


def make_batch_mix(num_classes, mixup_alpha=0.0, cutmix_factor=0.0, seed=0):
    """A training `batch_map` applying MixUp and/or CutMix (native Keras layers), or None.

    Labels become (B, num_classes) soft targets; tlbkit's loss and accuracy accept them.
    With both enabled, each batch gets one of the two, chosen at random.

    Args:
        num_classes: int. Number of classes (for one-hot labels).
        mixup_alpha: float. MixUp Beta(alpha, alpha) parameter; 0 disables it.
        cutmix_factor: float. CutMix Beta factor; 0 disables it.
        seed: int. Seed of the mixing layers.
    """
    if mixup_alpha < 0 or cutmix_factor < 0:
        raise ValueError(f"mixup_alpha and cutmix_factor must be >= 0. Received: {mixup_alpha}, {cutmix_factor}")
    mixers = []
    if mixup_alpha:
        mixers.append(keras.layers.MixUp(alpha=mixup_alpha, seed=seed + 4))
    if cutmix_factor:
        mixers.append(keras.layers.CutMix(factor=cutmix_factor, seed=seed + 5))
    if not mixers:
        return None
    import tensorflow as tf

    def batch_map(images, labels):
        data = {"images": images, "labels": tf.one_hot(tf.cast(labels, "int32"), num_classes)}
        if len(mixers) == 1:
            out = mixers[0](data)
        else:
            pick = tf.random.uniform((), seed=seed + 6) < 0.5
            out = tf.cond(pick, lambda: mixers[0](data), lambda: mixers[1](data))
        return out["images"], out["labels"]

    return batch_map
