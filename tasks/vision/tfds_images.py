"""Any TFDS image-classification dataset (cifar10, cifar100, ...) by name."""

import numpy as np

from tlbkit import registry
from tlbkit.data import DataSpec
from tlbkit_tasks.vision.augment import make_batch_mix, make_maps
from tlbkit_tasks.vision.image_folder import load_image


@registry.DATASETS.register("tfds_images")
def tfds_images(name="cifar10", data_dir=None, image_size=32, validation_count=10_000, test_split="test",
                augment="seed", resize_margin=20, mixup_alpha=0.0, cutmix_factor=0.0, seed=0, download=True):
    """A TFDS image-classification dataset; validation = the last `validation_count` training images.

    As in the keras-io example (`x_train[:40000]`, `x_train[40000:]`), the
    validation slice is the *last* part of TFDS's train split.

    Args:
        name: str. TFDS name, e.g. `"cifar10"`, `"cifar100"`.
        data_dir: str or None. TFDS data directory.
        image_size: int. Model input side.
        validation_count: int. Training images held out for validation.
        test_split: str or None. TFDS split used as test.
        augment: str. `"none"`, `"seed"` or `"strong"`.
        resize_margin: int. Resize margin before the random crop.
        mixup_alpha: float. MixUp on training batches (0 = off).
        cutmix_factor: float. CutMix on training batches (0 = off).
        seed: int. Augmentation seed.
        download: bool. Let TFDS download the data if missing.
    """
    import tensorflow_datasets as tfds

    if not isinstance(validation_count, int) or validation_count < 0:
        raise ValueError(f"validation_count must be an integer >= 0. Received: {validation_count!r}")
    splits = ["train" if not validation_count else f"train[:-{validation_count}]"]
    if validation_count:
        splits.append(f"train[-{validation_count}:]")
    if test_split:
        splits.append(test_split)
    loaded, info = tfds.load(name, split=splits, as_supervised=True, with_info=True, data_dir=data_dir,
                             download=download, shuffle_files=False)
    train = loaded[0]
    validation = loaded[1] if validation_count else None
    test = loaded[-1] if test_split else None
    try:
        cut = info.splits["train"].num_examples - validation_count
    except KeyError:  # splits unknown (e.g. mocked data)
        cut = None
    label = info.features["label"]
    load_size = info.features["image"].shape[0] or image_size
    train_map, eval_map = make_maps(image_size, augment, resize_margin=resize_margin, seed=seed)

    def read_inputs(files):
        return np.stack([load_image(f, load_size) for f in files])

    return DataSpec(train=train, validation=validation, test=test, num_classes=label.num_classes,
                    class_names=list(label.names), train_map=train_map, eval_map=eval_map,
                    read_inputs=read_inputs, num_train_examples=cut,
                    batch_map=make_batch_mix(label.num_classes, mixup_alpha, cutmix_factor, seed))
