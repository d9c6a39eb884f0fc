"""Any TFDS image-classification dataset (cifar10, cifar100, ...) by name."""

from tlbkit import data, registry
from tlbkit.data import DataSpec
from tlbkit_tasks.vision.augment import make_batch_mix, make_maps
from tlbkit_tasks.vision.image_folder import image_source_reader, read_image_files


@registry.DATASETS.register("tfds_images")
def tfds_images(name="cifar10", data_dir=None, image_size=32, load_size=None, validation_count=10_000,
                test_split="test", augment="keras_io", resize_margin=20, mixup_alpha=0.0, cutmix_factor=0.0, seed=0,
                download=True):
    """A TFDS image-classification dataset; validation = the last `validation_count` training images.

    As in the keras-io example (`x_train[:40000]`, `x_train[40000:]`), the validation slice is the
    *last* part of TFDS's train split. Nothing is loaded until training asks for the data.

    Args:
        name: str. TFDS name, e.g. `"cifar10"`, `"cifar100"`.
        data_dir: str or None. TFDS data directory. Defaults to the data folder (`--data_dir`), else TFDS's.
        image_size: int. Model input side.
        load_size: int or None. Side of the stored images (user files are resized to it for
            predictions). Defaults to `image_size`.
        validation_count: int. Training images held out for validation.
        test_split: str or None. TFDS split used as test.
        augment: str. See `tlbkit_tasks.vision.augment.AUGMENTS`.
        resize_margin: int. Margin of the random crop.
        mixup_alpha: float. MixUp on training batches (0 = off).
        cutmix_factor: float. CutMix on training batches (0 = off).
        seed: int. Augmentation seed.
        download: bool. Let TFDS download the data if missing.
    """
    if not isinstance(validation_count, int) or validation_count < 0:
        raise ValueError(f"validation_count must be an integer >= 0. Received: {validation_count!r}")
    load_size = load_size or image_size
    train_map, eval_map = make_maps(image_size, augment, resize_margin=resize_margin, seed=seed)

    def loader():
        import tensorflow_datasets as tfds

        splits = ["train" if not validation_count else f"train[:-{validation_count}]"]
        if validation_count:
            splits.append(f"train[-{validation_count}:]")
        if test_split:
            splits.append(test_split)
        loaded, info = tfds.load(name, split=splits, as_supervised=True, with_info=True,
                                 data_dir=data_dir or data.data_dir(), download=download, shuffle_files=False)
        try:
            cut = info.splits["train"].num_examples - validation_count
        except KeyError:  # splits unknown (e.g. mocked data)
            cut = None
        label = info.features["label"]
        return {"train": loaded[0], "validation": loaded[1] if validation_count else None,
                "test": loaded[-1] if test_split else None, "class_names": list(label.names),
                "num_train_examples": cut,
                "validation_note": f"the last {validation_count} images of TFDS {name}'s train split",
                "batch_map": make_batch_mix(label.num_classes, mixup_alpha, cutmix_factor, seed)}

    return DataSpec(loader=loader, train_map=train_map, eval_map=eval_map,
                    read_inputs=lambda files: read_image_files(files, load_size),
                    read_source=image_source_reader(load_size))
