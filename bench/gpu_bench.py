"""GPU check under KERAS_BACKEND=jax (the lent GPU machines have JAX, no TensorFlow).

1. The CIFAR-10 recipe `--gin_file` (default gin/cifar10.gin, read by gin without TensorFlow: its model,
   AdamW, schedule, label smoothing, clipping, batch size, epochs and validation frequency) trained with
   Keras `fit` on CIFAR-10's training images decoded from the carried zip with PIL. Validation: the last 10k
   of the seeded shuffle that `datasets.image_folder` holds out (the CPU runs' split). The dataset's
   augmentation runs as in-model layers, on the accelerator (`crop_flip`: RandomShift, the same reflect-pad and
   crop, + a flip). Then each `--variant` (extra bindings) likewise.
2. Training examples/s of the keras-io-mode CIFAR model (48x48, patch 4, 18 chunks) at a few batch sizes
   (synthetic data, after a warm-up step).

    KERAS_BACKEND=jax python bench/gpu_bench.py --zip=.devdata/cifar10-train-jpg.zip \\
        --variant='b256:train.batch_size=256;train.learning_rate=2e-3'
    KERAS_BACKEND=jax python bench/gpu_bench.py --smoke --zip=DATA/cifar10-train-jpg.zip   # CPU check

Prints JSON lines; writes them to --json_out too.
"""

import os
import sys
import time

from absl import app, flags

flags.DEFINE_string("zip", ".devdata/cifar10-train-jpg.zip", "CIFAR-10 JPEG zip (shared/data).")
flags.DEFINE_string("gin_file", "cifar10.gin", "The recipe: a shipped config's name or a path.")
flags.DEFINE_multi_string("gin_param", [], "Bindings added to every run, e.g. train.batch_size=256.")
flags.DEFINE_multi_string("variant", [], "Extra runs after the recipe itself: 'LABEL:binding;binding'.")
flags.DEFINE_integer("epochs", 0, "Epochs of each run (0 = the config's train.epochs).")
flags.DEFINE_list("batches", ["256", "1024"], "Batch sizes for the throughput part (after the runs; empty: skip).")
flags.DEFINE_integer("steps", 10, "Timed steps per batch size.")
flags.DEFINE_integer("max_images", 0, "Use only this many training images (0 = all 50k).")
flags.DEFINE_integer("workers", 16, "Threads decoding the JPEGs.")
flags.DEFINE_string("precision", "mixed_bfloat16", "Keras dtype policy.")
flags.DEFINE_boolean("smoke", False, "Tiny data, one epoch, batch 32: check that everything runs (CPU).")
flags.DEFINE_string("json_out", None, "Append JSON lines here.")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")  # keras_io_reference.py: the plain re-implementation of the keras-io example


def emit(obj):
    from bench.timing import emit as emit_line

    emit_line(obj, FLAGS.json_out)


def throughput(batch, steps):
    import keras
    import numpy as np

    from keras_io_reference import build_tlbkit_keras_io
    from bench.timing import time_calls

    keras.utils.set_random_seed(0)
    model = build_tlbkit_keras_io()
    model.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).uniform(size=(batch, 48, 48, 3)).astype("float32")
    y = np.zeros((batch,), "int32")
    first, per_step = time_calls(lambda: model.train_on_batch(x, y), steps)
    rate = batch / per_step
    return {"part": "throughput", "batch": batch, "first_step_s": round(first, 1), "train_images_per_s": round(rate)}


def load_cifar(zip_path, max_images, workers):
    """(train, validation) uint8 arrays: the image-folder split of the CPU recipe (last 10k of a seeded shuffle)."""
    import numpy as np

    from tlbkit.data import extract_zip
    from tlbkit_tasks.vision.image_folder import find_split_root, holdout, list_images, load_images

    root = extract_zip(zip_path, os.path.join("/tmp", "tlbkit-cifar"))
    paths, labels, classes = list_images(find_split_root(root, "train"))
    if max_images:
        pick = np.sort(np.random.default_rng(7).permutation(len(paths))[:max_images])
        paths, labels = [paths[i] for i in pick], labels[pick]
    images, labels, _ = load_images(paths, labels, 32, skip_corrupt=False, cache=False, workers=workers)
    val_count = min(10_000, len(images) // 5)
    train_idx, val_idx = holdout(len(images), val_count, None, 0)
    return (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx])


def recipe_settings(gin_file, gin_params):
    """Parses the recipe's .gin file (TensorFlow-free) and returns (model factory, train settings, augmentation).

    `train.*` values not bound by the config are `tlbkit.train.train`'s defaults, as `tlbkit-train` would use.
    """
    import gin

    from tlbkit import gin_utils, plugins
    from tlbkit import train as train_lib

    plugins.load_all()
    gin_utils.parse([gin_file], gin_params)
    names = ["batch_size", "epochs", "learning_rate", "weight_decay", "weight_decay_vectors", "schedule",
             "warmup_epochs", "min_learning_rate", "label_smoothing", "clip_norm", "validation_freq", "seed"]
    settings = gin_utils.effective_arguments(train_lib.train, "train", names)
    dataset = gin.query_parameter("train.dataset")  # %DATASET -> @datasets.tfds_images(), kept unevaluated
    while dataset.configurable.name == "macro":
        dataset = gin.query_parameter(f"{dataset.scoped_selector}.value")
    augment = {}
    for key in ("augment", "resize_margin", "image_size"):
        try:
            augment[key] = gin_utils.evaluate_binding(f"{dataset.selector}.{key}")
        except gin_utils.GinConfigError:
            pass
    return gin_utils.evaluate_binding("train.model"), settings, augment


def augmenter(augment, resize_margin=20, image_size=32):
    """The dataset's training augmentation as in-model layers that JAX can jit (they run on the accelerator,
    in training only): `crop_flip` = `RandomShift(resize_margin // 2)` (reflect-pad and crop, as the tf.data
    map) + a horizontal flip."""
    import keras

    from tlbkit_tasks.vision import RandomShift

    del image_size
    if augment == "none":
        return []
    layers = [keras.layers.RandomFlip("horizontal", seed=1)]
    if augment == "flip":
        return layers
    if augment != "crop_flip":
        raise ValueError(f"gpu_bench replays augment='none', 'flip' or 'crop_flip'; the config asks {augment!r}.")
    return [RandomShift(resize_margin // 2, seed=0)] + layers


def recipe_model(factory, augment):
    """uint8 images -> [0, 1] -> training augmentation -> the recipe's classifier."""
    import keras

    net = factory(num_classes=10)
    inputs = keras.Input((32, 32, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    for layer in augmenter(**augment):
        x = layer(x)
    return keras.Model(inputs, net(x)), net


def epoch_logger(t0, params, label):
    """A callback emitting one JSON line per epoch: wall seconds since the run began, epoch seconds, loss,
    validation."""
    import keras

    epoch_start = {}

    def on_epoch_end(epoch, logs):
        logs = logs or {}
        row = {"part": "recipe", "run": label, "epoch": epoch + 1,
               "epoch_s": round(time.perf_counter() - epoch_start[epoch], 2),
               "wall_s": round(time.perf_counter() - t0, 1), "train_loss": round(float(logs["loss"]), 4),
               "train_accuracy": round(float(logs.get("accuracy", float("nan"))), 4), "params": params}
        if "val_accuracy" in logs:
            row["val_accuracy"] = round(float(logs["val_accuracy"]), 4)
        emit(row)

    return keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epoch_start.__setitem__(epoch, time.perf_counter()),
        on_epoch_end=on_epoch_end)


def full_batches(x, y, batch_size, seed):
    """Endless shuffled batches of exactly `batch_size`, the remainder of each pass dropped (as tlbkit-train's
    pipeline): under JAX a smaller last batch would compile a second training step."""
    import numpy as np

    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(x))
        for i in range(len(x) // batch_size):
            pick = order[i * batch_size:(i + 1) * batch_size]
            yield x[pick], y[pick]


def train_recipe(data, label, gin_params, epochs, smoke):
    """Trains the recipe named by --gin_file (plus `gin_params`) as `tlbkit-train` would: its model, AdamW,
    schedule, label smoothing, clipping, batch size and epochs, validating every `train.validation_freq`."""
    import gin
    import keras

    from tlbkit import train as train_lib

    t0 = time.perf_counter()
    gin.clear_config()
    factory, cfg, augment = recipe_settings(FLAGS.gin_file, list(FLAGS.gin_param) + list(gin_params))
    if smoke:
        cfg["batch_size"] = 32
    epochs = epochs or cfg["epochs"]
    keras.utils.set_random_seed(cfg["seed"])
    (xt, yt), (xv, yv) = data
    model, net = recipe_model(factory, augment)
    model(xt[:2])  # build every layer before fit
    steps = len(xt) // cfg["batch_size"]
    lr = train_lib.make_learning_rate(cfg["learning_rate"], cfg["schedule"], int(cfg["warmup_epochs"] * steps),
                                      steps * epochs, cfg["min_learning_rate"])
    train_lib.compile_for_training(model, lr, cfg["weight_decay"], cfg["clip_norm"], cfg["label_smoothing"])
    if not cfg["weight_decay_vectors"]:
        train_lib.exclude_vectors_from_weight_decay(model)
    emit({"part": "recipe_config", "run": label, "gin_file": FLAGS.gin_file,
          "gin_params": list(FLAGS.gin_param) + list(gin_params), "epochs": epochs, "augment": augment,
          **{k: v for k, v in cfg.items() if k != "epochs"}, "train_images": int(len(xt)), "val_images": int(len(xv))})
    fit_t0 = time.perf_counter()
    model.fit(full_batches(xt, yt, cfg["batch_size"], cfg["seed"]), steps_per_epoch=steps, epochs=epochs, verbose=0,
              validation_data=(xv, yv), validation_batch_size=1000, validation_freq=cfg["validation_freq"],
              callbacks=[epoch_logger(t0, int(net.count_params()), label)])
    fit_s = time.perf_counter() - fit_t0
    final = model.evaluate(xv, yv, batch_size=1000, verbose=0, return_dict=True)
    emit({"part": "recipe_result", "run": label, "epochs": epochs, "val_accuracy": round(float(final["accuracy"]), 4),
          "fit_s": round(fit_s, 1), "run_wall_s": round(time.perf_counter() - t0, 1),
          "train_images_per_s": round(epochs * steps * cfg["batch_size"] / fit_s)})


def parse_variant(text):
    """'LABEL:a=1;b=2' -> ('LABEL', ['a=1', 'b=2'])."""
    label, sep, bindings = text.partition(":")
    if not sep or not label:
        raise app.UsageError(f"--variant must look like 'LABEL:binding;binding'; got {text!r}.")
    return label, [b.strip() for b in bindings.split(";") if b.strip()]


def main(argv):
    del argv
    import keras

    sys.path[:0] = [ROOT, TESTS]
    variants = [("recipe", [])] + [parse_variant(v) for v in FLAGS.variant]
    keras.mixed_precision.set_global_policy(FLAGS.precision)
    emit({"backend": keras.backend.backend(), "precision": FLAGS.precision,
          "devices": str(__import__("jax").devices()) if keras.backend.backend() == "jax" else "n/a"})
    t0 = time.perf_counter()
    data = load_cifar(FLAGS.zip, 600 if FLAGS.smoke else FLAGS.max_images, FLAGS.workers)
    emit({"part": "data", "decode_s": round(time.perf_counter() - t0, 1), "train": len(data[0][0]),
          "validation": len(data[1][0])})
    for label, bindings in variants:
        try:
            train_recipe(data, label, bindings, 1 if FLAGS.smoke else FLAGS.epochs, FLAGS.smoke)
        except Exception as e:  # one failed run must not cost the device time of the others
            emit({"part": "error", "run": label, "error": f"{type(e).__name__}: {e}"})
    for batch in [8] if FLAGS.smoke else [int(b) for b in FLAGS.batches]:
        emit(throughput(batch, 2 if FLAGS.smoke else FLAGS.steps))


if __name__ == "__main__":
    app.run(main)
