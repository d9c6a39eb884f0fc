"""Vision plugin: tokenizers, image-folder and TFDS pipelines, CIFAR gin files, attention maps."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from binaries import assert_eval_reproduces_metrics, run_binary
from tlbkit_tasks.vision import ConvStemTokenizer, FlipViews, PatchTokenizer, image_folder, tfds_images
from tlbkit_tasks.vision.image_folder import BadImageError
from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder
from tlbkit import evaluate, registry, saving
from tlbkit.models import SequenceClassifier


def make_folder(root, per_class=6, classes=("cat", "dog"), size=32, corrupt=False):
    rng = np.random.default_rng(0)
    for c in classes:
        os.makedirs(root / "train" / c, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / "train" / c / f"{i:04d}.jpg")
    if corrupt:
        (root / "train" / classes[0] / "broken.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("images"))


# === Tokenizers ===
def test_patch_tokenizer_shapes_and_errors():
    tok = PatchTokenizer(image_size=48, patch_size=4, dim=64)
    out = tok(np.zeros((2, 48, 48, 3), "float32"))
    assert tuple(out["tokens"].shape) == (2, 144, 64) and "mask" not in out
    assert tok.count_params() == 12_480  # the keras-io example's patch embedding
    with pytest.raises(ValueError, match="image_size 50 is not divisible by patch_size 4"):
        PatchTokenizer(image_size=50, patch_size=4, dim=8)
    with pytest.raises(ValueError, match="expects 32x32 images, got 48x48"):
        PatchTokenizer(image_size=32, patch_size=4, dim=8)(np.zeros((1, 48, 48, 3), "float32"))


def test_conv_stem_tokenizer():
    tok = ConvStemTokenizer(image_size=32, dim=16, filters=(8,))
    assert tuple(tok(np.zeros((2, 32, 32, 3), "float32"))["tokens"].shape) == (2, 64, 16)
    with pytest.raises(ValueError, match="image_size 20 cannot be halved 3 times"):
        ConvStemTokenizer(image_size=20, dim=16, filters=(8, 8))


def test_keras_io_model_has_the_examples_364810_parameters():
    cell = TLBCell(dim=64, num_heads=1, key_dim=64, num_layers=4, r=2, num_latents=8, dropout=0.2,
                   attention_dropout=0.2, layout="keras_io", norm_mode="qkv", initial_state="zeros")
    model = SequenceClassifier(TLBEncoder(cell, chunk_size=8),
                               ClassificationHead(10, pooling="last_chunk", chunk_size=8, norm=False),
                               tokenizer=PatchTokenizer(48, 4, 64))
    assert tuple(model(np.zeros((1, 48, 48, 3), "float32")).shape) == (1, 10)
    assert model.count_params() == 364_810


def test_flip_views_average_the_logits_of_each_image_and_its_mirror_at_inference_only(tmp_path):
    import keras

    images = np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype("float32")
    views = FlipViews()
    same, mirrored = views(images)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(same), images)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(mirrored), images[:, :, ::-1])
    with pytest.raises(ValueError, match=r"expects \(batch, height, width, channels\) images"):
        views(np.zeros((2, 32, 3), "float32"))

    keras.utils.set_random_seed(0)
    cell = TLBCell(dim=16, num_heads=2, num_layers=2, r=1, num_latents=2, dropout=0.0, attention_dropout=0.0)
    model = SequenceClassifier(TLBEncoder(cell, chunk_size=16), ClassificationHead(4, pooling="mean"),
                               tokenizer=ConvStemTokenizer(32, 16, filters=(8,), norm="batch"),
                               test_time_views=views)
    one = keras.ops.convert_to_numpy(model.logits(images, training=False))
    other = keras.ops.convert_to_numpy(model.logits(images[:, :, ::-1], training=False))
    assert np.abs(one - other).max() > 1e-3  # the model is not mirror-symmetric: the average is a real change
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images, training=False)), (one + other) / 2,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict(images, verbose=0), (one + other) / 2, rtol=1e-4, atol=1e-5)
    path = str(tmp_path / "flip.keras")
    model.save(path)
    loaded = saving.load_model(path)
    assert isinstance(loaded.test_time_views, FlipViews)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(images, training=False)), (one + other) / 2,
                               rtol=1e-4, atol=1e-5)
    # tlbkit-eval --test_time_views: the same weights scored with one view, or other registered views.
    single = evaluate.with_test_time_views(loaded, "none")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(single(images, training=False)), one, rtol=1e-4, atol=1e-5)
    assert isinstance(evaluate.with_test_time_views(single, "flip").test_time_views, FlipViews)
    with pytest.raises(registry.UnknownNameError, match="Registered views: flip"):
        evaluate.with_test_time_views(single, "mirror")
    # Training sees one view (BatchNorm's batch statistics would differ for a doubled batch; last: it moves them).
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images, training=True)),
                               keras.ops.convert_to_numpy(model.logits(images, training=True)), rtol=1e-5, atol=1e-6)


def test_random_shift_is_a_per_example_pad_and_crop_that_compiles(tmp_path):
    import keras
    import tensorflow as tf

    from tlbkit_tasks.vision import RandomShift

    images = np.random.default_rng(0).uniform(size=(16, 8, 8, 2)).astype("float32")
    layer = RandomShift(2, seed=3)
    np.testing.assert_array_equal(np.asarray(layer(images)), images)  # inference: identity
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")  # = tf.pad(mode="REFLECT")
    # Compiled by XLA (every backend can jit it; Keras' RandomTranslation and RandomCrop cannot under JAX).
    shifted = np.asarray(tf.function(lambda x: layer(x, training=True), jit_compile=True)(images))
    offsets = []
    for i in range(len(images)):  # each output is the padded input cropped at one offset in 0..4 x 0..4
        found = [(dy, dx) for dy in range(5) for dx in range(5)
                 if np.array_equal(shifted[i], padded[i, dy:dy + 8, dx:dx + 8])]
        assert found, f"example {i} is not a crop of its padded input"
        offsets.append(found[0])
    assert len(set(offsets)) > 4  # offsets drawn per example, not one per batch
    assert layer.supports_jit
    clone = RandomShift.from_config(layer.get_config())
    assert (clone.max_shift, clone.fill_mode, clone.seed) == (2, "reflect", 3)
    zeros = np.asarray(RandomShift(3, fill_mode="constant", seed=0)(np.ones((4, 8, 8, 1), "float32"), training=True))
    assert zeros.min() == 0.0 and zeros.max() == 1.0  # constant fill pads with zeros
    model = keras.Sequential([keras.Input((8, 8, 2)), RandomShift(1)])
    model.save(tmp_path / "shift.keras")
    assert isinstance(keras.saving.load_model(tmp_path / "shift.keras").layers[0], RandomShift)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="max_shift"):
            RandomShift(bad)
    with pytest.raises(ValueError, match="fill_mode"):
        RandomShift(2, fill_mode="wrap")


# === Data ===
def test_image_folder_pipeline(folder):
    spec = image_folder(path=str(folder), validation_count=4, image_size=32, augment="strong", resize_margin=4)
    spec = spec.load()
    assert spec.num_classes == 2 and spec.class_names == ["cat", "dog"]
    assert spec.num_train_examples == 8 and int(spec.validation.cardinality()) == 4
    labels = [int(label) for _, label in spec.train]
    assert labels != sorted(labels) and labels != sorted(labels, reverse=True)  # classes mixed, not grouped
    image, label = next(iter(spec.train.map(spec.train_map)))
    assert tuple(image.shape) == (32, 32, 3) and image.dtype == "float32"
    assert 0.0 <= float(np.min(image)) and 1.0 < float(np.max(image)) <= 255.0  # 0-255 pixels: the model scales
    image, _ = next(iter(spec.validation.map(spec.eval_map)))
    assert tuple(image.shape) == (32, 32, 3) and 1.0 < float(np.max(image)) <= 255.0


@pytest.mark.parametrize("augment", ["flip", "crop_flip", "keras_io"])
def test_cheap_augmentations_keep_shape_and_range(folder, augment):
    spec = image_folder(path=str(folder), validation_count=4, image_size=32, augment=augment, resize_margin=4).load()
    image, _ = next(iter(spec.train.map(spec.train_map)))
    assert tuple(image.shape) == (32, 32, 3) and 0.0 <= float(np.min(image)) and 1.0 < float(np.max(image)) <= 255.0


def test_the_old_augment_name_seed_works_as_keras_io(folder):
    # `augment='seed'` was renamed 'keras_io': a config holding the old name gets the same augmentation.
    def first_images(augment):
        spec = image_folder(path=str(folder), validation_count=4, image_size=32, augment=augment, resize_margin=4)
        return [image.numpy() for image, _ in spec.load().train.take(3).map(spec.train_map)]

    with pytest.warns(FutureWarning, match="`augment='seed'` was renamed 'keras_io'"):
        old = first_images("seed")
    for a, b in zip(old, first_images("keras_io")):
        np.testing.assert_array_equal(a, b)


def test_mixup_cutmix_batches_give_soft_targets_that_loss_and_accuracy_accept(folder):
    from tlbkit import pipeline
    from tlbkit.losses import ClassCrossentropy
    from tlbkit.metrics import Accuracy

    spec = image_folder(path=str(folder), validation_count=4, image_size=32, mixup_alpha=0.4, cutmix_factor=1.0)
    images, targets = next(iter(pipeline.batched(spec, "train", 4, training=True)))
    assert tuple(images.shape) == (4, 32, 32, 3) and tuple(targets.shape) == (4, 2)
    np.testing.assert_allclose(np.sum(targets, axis=-1), 1.0, atol=1e-5)
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]], "float32")
    soft = np.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5], [1.0, 0.0]], "float32")
    expected = -(soft * np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))).sum(-1).mean()
    assert float(ClassCrossentropy()(soft, logits)) == pytest.approx(expected, rel=1e-5)
    acc = Accuracy()
    acc.update_state(soft, logits)
    assert float(acc.result()) == pytest.approx(0.75)  # targets argmax 0,1,0,0 vs predictions 0,1,0,1
    acc = Accuracy()
    acc.update_state(np.array([0, 1, 1]), logits[:3])
    assert float(acc.result()) == pytest.approx(2 / 3)


def test_image_folder_errors(tmp_path):
    root = make_folder(tmp_path / "bad", per_class=3, corrupt=True)
    with pytest.raises(BadImageError, match="broken.jpg"):
        image_folder(path=str(root), validation_count=1).load()
    spec = image_folder(path=str(root), validation_count=1, skip_corrupt=True).load()
    assert spec.num_train_examples == 5
    # Decoding in threads gives the same arrays and the same skipping and errors.
    from tlbkit_tasks.vision.image_folder import list_images, load_images

    paths, labels, _ = list_images(str(root / "train"))
    serial = load_images(paths, labels, 32, skip_corrupt=True, cache=False)
    threaded = load_images(paths, labels, 32, skip_corrupt=True, cache=False, workers=3)
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)
    assert serial[2] == 1 and len(serial[0]) == 6
    with pytest.raises(BadImageError, match="broken.jpg"):
        load_images(paths, labels, 32, skip_corrupt=False, cache=False, workers=3)
    os.makedirs(root / "train" / "empty")
    with pytest.raises(ValueError, match="empty.*holds no image"):
        image_folder(path=str(root), validation_count=1, skip_corrupt=True).load()
    with pytest.raises(FileNotFoundError, match="datasets.image_folder.path .* not found .*--data_dir"):
        image_folder(path=str(tmp_path / "nowhere")).load()
    with pytest.raises(ValueError, match="needs `path`"):
        image_folder()


def test_tfds_pipeline_on_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        spec = tfds_images("cifar10", validation_count=5, image_size=48, download=False).load()
        assert spec.num_classes == 10 and len(spec.class_names) == 10
        image, label = next(iter(spec.train.map(spec.train_map)))
        assert tuple(image.shape) == (48, 48, 3)
        image, _ = next(iter(spec.validation.map(spec.eval_map)))  # mock data ignores the slice sizes
        assert tuple(image.shape) == (48, 48, 3) and float(np.max(image)) <= 255.0


# === Binaries with each CIFAR gin file ===
def tiny_cifar_params(folder, extra=()):
    params = ["DATASET = @datasets.image_folder()", f"datasets.image_folder.path = '{folder}'",
              "datasets.image_folder.validation_count = 4",
              "datasets.image_folder.load_size = 32", "train.batch_size = 4", "train.epochs = 1",
              "train.steps_per_epoch = 1", *extra]
    return [f"--gin_param={p}" for p in params]


@pytest.fixture(scope="module")
def keras_io_cpu_run(folder, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("runs") / "keras_io_cpu"
    proc = run_binary("train", "--gin_file=cifar10_keras_io_cpu.gin", f"--model_dir={model_dir}",
                      *tiny_cifar_params(folder, ["datasets.image_folder.image_size = 32"]), check=True)
    assert '"epochs_completed": 1' in proc.stdout
    assert_eval_reproduces_metrics(model_dir)
    return model_dir


@pytest.mark.slow
# cifar10.gin is covered by cifar10_cpu.gin, which includes it and changes only the dataset, and
# cifar10_keras_io.gin by the keras_io_cpu_run fixture (cifar10_keras_io_cpu.gin includes it and changes the
# dataset and IMAGE_SIZE); test_configs builds the model of every shipped file.
def test_one_train_step_with_the_strong_cifar_recipe(folder, tmp_path):
    # The strong options: RandAugment, random erasing, MixUp/CutMix. They are the input pipeline's, so the model
    # is the tiny size (cifar10_cpu.gin's own model trains in test_cifar_run_scores_other_images_...).
    extra = ["datasets.image_folder.image_size = %IMAGE_SIZE", "datasets.image_folder.augment = 'strong'",
             "datasets.image_folder.mixup_alpha = 0.2", "datasets.image_folder.cutmix_factor = 1.0"]
    proc = run_binary("train", "--gin_file=cifar10_cpu.gin", "--gin_file=sizes/tiny.gin",
                      f"--model_dir={tmp_path / 'run'}", *tiny_cifar_params(folder, extra), check=True)
    assert '"epochs_completed": 1' in proc.stdout


@pytest.mark.slow
def test_viz_and_predict_on_keras_io_cpu_run(folder, keras_io_cpu_run):
    image = str(folder / "train" / "cat" / "0000.jpg")
    run_binary("viz", f"--model_dir={keras_io_cpu_run}", image, check=True)
    out = keras_io_cpu_run / "viz" / "0000_attention.png"
    assert out.exists() and out.stat().st_size > 1000
    assert open(out, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    proc = run_binary("predict", f"--model_dir={keras_io_cpu_run}", image, check=True)
    assert "cat" in proc.stdout or "dog" in proc.stdout
    # The keras-io model has no test-time views; tlbkit-eval can score it with the flip views.
    proc = run_binary("evaluate", f"--model_dir={keras_io_cpu_run}", "--test_time_views=flip", check=True)
    flipped = json.loads(proc.stdout.strip().splitlines()[-1])
    assert flipped["test_time_views"] == "flip" and flipped["examples"] > 0 and 0.0 <= flipped["accuracy"] <= 1.0
    assert json.loads((keras_io_cpu_run / "eval_validation_last_views-flip.json").read_text()) == flipped


def test_cifar_run_scores_other_images_without_the_training_data(tmp_path):
    data = make_folder(tmp_path / "data" / "mine")
    holdout = make_folder(tmp_path / "holdout", per_class=2) / "train"  # holdout/train/{cat,dog}/*.jpg
    model_dir = tmp_path / "run"
    params = tiny_cifar_params(data, ["datasets.image_folder.image_size = %IMAGE_SIZE",
                                      "datasets.image_folder.augment = 'crop_flip'"])
    params = [p.replace(f"path = '{data}'", "path = 'mine'") for p in params]  # relative to --data_dir
    run_binary("train", "--gin_file=cifar10_cpu.gin", f"--data_dir={tmp_path / 'data'}", f"--model_dir={model_dir}",
               *params, check=True)
    assert_eval_reproduces_metrics(model_dir, {"TLBKIT_DATA_DIR": str(tmp_path / "data")})
    os.rename(data, str(data) + ".gone")  # the training data is not needed any more
    proc = run_binary("evaluate", f"--model_dir={model_dir}", f"--data={holdout}", check=True)
    scored = json.loads(proc.stdout.strip().splitlines()[-1])
    assert scored["examples"] == 4 and 0 <= scored["accuracy"] <= 1 and scored["checkpoint"] == "last"
    proc = run_binary("predict", f"--model_dir={model_dir}", str(holdout / "cat" / "0000.jpg"), check=True)
    assert proc.stdout.strip().splitlines()[-1].split()[1] in ("cat", "dog")
    proc = run_binary("train", "--gin_file=cifar10_cpu.gin", f"--model_dir={tmp_path / 'other'}", *params)
    assert proc.returncode == 2 and "datasets.image_folder.path = 'mine' not found" in proc.stderr
    assert "--data_dir" in proc.stderr


def test_viz_on_a_non_image_run_fails_before_writing(tmp_path, shared_recall_run):
    model_dir = shared_recall_run
    ids = tmp_path / "ids.txt"
    ids.write_text(",".join(["1"] * 16))
    proc = run_binary("viz", f"--model_dir={model_dir}", str(ids))
    assert proc.returncode == 2 and "tlbkit-viz needs an image task" in proc.stderr, proc.stderr[-2000:]
    assert not (model_dir / "viz").exists()


def test_viz_refuses_an_ensemble_by_name():
    import keras

    from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder
    from tlbkit.models import Ensemble, SequenceClassifier
    from tlbkit_tasks.vision.attention_maps import attention_maps

    members = [SequenceClassifier(TLBEncoder(TLBCell(dim=16, num_heads=2, num_layers=1, r=1), 4), ClassificationHead(2))
               for _ in range(2)]
    with pytest.raises(ValueError, match="shows one model's attention; this run's model is a Ensemble"):
        attention_maps(Ensemble(members), keras.ops.zeros((1, 8, 8, 3)))
