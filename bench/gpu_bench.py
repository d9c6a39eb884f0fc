"""GPU check under KERAS_BACKEND=jax (the lent GPU machines have JAX, no TensorFlow).

1. Training examples/s of the seed-mode CIFAR model (48x48, patch 4, 18 chunks) with mixed precision at
   several batch sizes (synthetic data, after a warm-up step).
2. tlbkit's CIFAR-10 recipe (gin/cifar10.gin's model: BatchNorm conv stem + paper-mode TLB) trained for a few
   epochs on CIFAR-10 images read from the carried zip (NumPy/PIL only), with translation/flip augmentation
   inside the model; validation on the last 10k of a seeded shuffle; projected 30-epoch time.

    KERAS_BACKEND=jax python bench/gpu_bench.py --zip=.devdata/cifar10-train-jpg.zip --epochs=3
    KERAS_BACKEND=jax python bench/gpu_bench.py --smoke      # tiny CPU run: checks the script works

Prints JSON lines; writes them to --json_out too.
"""

import json
import os
import sys
import time

from absl import app, flags

flags.DEFINE_string("zip", ".devdata/cifar10-train-jpg.zip", "CIFAR-10 JPEG zip (shared/data).")
flags.DEFINE_list("batches", ["256", "1024", "2048"], "Batch sizes for the throughput part.")
flags.DEFINE_integer("steps", 10, "Timed steps per batch size.")
flags.DEFINE_integer("epochs", 3, "Epochs of the CIFAR recipe.")
flags.DEFINE_integer("max_images", 0, "Use only this many training images (0 = all 50k).")
flags.DEFINE_string("precision", "mixed_bfloat16", "Keras dtype policy.")
flags.DEFINE_boolean("smoke", False, "Tiny shapes and data: check that everything runs (CPU).")
flags.DEFINE_string("json_out", None, "Append JSON lines here.")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def emit(obj):
    line = json.dumps(obj)
    print(line, flush=True)
    if FLAGS.json_out:
        with open(FLAGS.json_out, "a") as f:
            f.write(line + "\n")


def throughput(batch, steps):
    import keras
    import numpy as np

    from bench.seed_reference import build_tlbkit_seed
    from bench.timing import time_calls

    keras.utils.set_random_seed(0)
    model = build_tlbkit_seed()
    model.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).uniform(size=(batch, 48, 48, 3)).astype("float32")
    y = np.zeros((batch,), "int32")
    first, per_step = time_calls(lambda: model.train_on_batch(x, y), steps)
    rate = batch / per_step
    return {"part": "throughput", "batch": batch, "first_step_s": round(first, 1), "train_images_per_s": round(rate)}


def load_cifar(zip_path, max_images):
    import numpy as np

    from tlbkit.data import extract_zip
    from tlbkit_tasks.vision.image_folder import find_split_root, holdout, list_images, load_images

    root = extract_zip(zip_path, os.path.join("/tmp", "tlbkit-cifar"))
    paths, labels, classes = list_images(find_split_root(root, "train"))
    if max_images:
        pick = np.sort(np.random.default_rng(7).permutation(len(paths))[:max_images])
        paths, labels = [paths[i] for i in pick], labels[pick]
    images, labels, _ = load_images(paths, labels, 32, skip_corrupt=False)
    val_count = min(10_000, len(images) // 5)
    train_idx, val_idx = holdout(len(images), val_count, None, 0)
    return (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx])


def recipe_model(smoke):
    import keras

    from tlbkit_tasks.vision import ConvStemTokenizer
    from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder
    from tlbkit.models import SequenceClassifier

    dim = 16 if smoke else 96  # gin/cifar10.gin's model
    net = SequenceClassifier(
        TLBEncoder(TLBCell(dim=dim, num_heads=4, ffn_ratio=2, num_layers=4, r=2, num_latents=8, dropout=0.1,
                           initial_state="learned"), chunk_size=16),
        ClassificationHead(10), tokenizer=ConvStemTokenizer(32, dim, filters=(16 if smoke else 48,), downsample="stride",
                                                            norm="batch", activation="gelu"))
    inputs = keras.Input((32, 32, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.RandomTranslation(0.125, 0.125, fill_mode="reflect")(x)  # ~ pad-4 random crop (crop_flip)
    x = keras.layers.RandomFlip("horizontal")(x)
    return keras.Model(inputs, net(x)), net


def train_recipe(epochs, max_images, smoke):
    import keras

    (xt, yt), (xv, yv) = load_cifar(FLAGS.zip, max_images)
    model, net = recipe_model(smoke)
    model(xt[:2])  # build every layer before fit
    batch = 32 if smoke else 256  # cifar10.gin: 128 at 1.5e-3; twice the batch at 2e-3 for the GPU
    steps = len(xt) // batch
    schedule = keras.optimizers.schedules.CosineDecay(0.0, max(30 * steps - steps, 1), alpha=0.01,
                                                      warmup_target=2e-3, warmup_steps=steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.05, global_clipnorm=1.0),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
                  metrics=["accuracy"])
    onehot = keras.utils.to_categorical
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        hist = model.fit(xt, onehot(yt, 10), batch_size=batch, epochs=1, verbose=0, shuffle=True)
        times.append(time.perf_counter() - t0)
        val = model.evaluate(xv, onehot(yv, 10), batch_size=512, verbose=0, return_dict=True)
        emit({"part": "recipe", "epoch": epoch + 1, "epoch_s": round(times[-1], 1),
              "train_loss": round(float(hist.history["loss"][-1]), 4), "val_accuracy": round(float(val["accuracy"]), 4),
              "params": int(net.count_params())})
    steady = times[1:] or times
    emit({"part": "recipe_projection", "images": int(len(xt)), "steady_epoch_s": round(sum(steady) / len(steady), 1),
          "projected_30_epochs_min": round(30 * sum(steady) / len(steady) / 60, 2)})


def main(argv):
    del argv
    import keras

    sys.path.insert(0, ROOT)
    keras.mixed_precision.set_global_policy(FLAGS.precision)
    emit({"backend": keras.backend.backend(), "precision": FLAGS.precision,
          "devices": str(__import__("jax").devices()) if keras.backend.backend() == "jax" else "n/a"})
    batches = [8] if FLAGS.smoke else [int(b) for b in FLAGS.batches]
    for batch in batches:
        emit(throughput(batch, 2 if FLAGS.smoke else FLAGS.steps))
    train_recipe(1 if FLAGS.smoke else FLAGS.epochs, 600 if FLAGS.smoke else FLAGS.max_images, FLAGS.smoke)


if __name__ == "__main__":
    app.run(main)
