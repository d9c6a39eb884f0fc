"""Fine-tuning the CIFAR-10 preset on a small folder of new classes, against the same recipe from scratch.

    python bench/finetune_example.py [--root=runs/finetune] [--minutes=3] [--train_per_class=100]

The folder is made here (no second image dataset ships with the repository): 32x32 colour images of four
shapes, none of them a CIFAR-10 class (circle, square, triangle, cross), each at a random size, place and
colour on a random background with noise; `train/<shape>/` and `test/<shape>/`, a fixed seed. Both arms
train `cifar10_cpu.gin` for the same wall-time budget (`train.time_budget_min`); the tuned arm starts from
`--init_from=cifar10_tlb` (tokenizer and encoder weights, a new 4-class head). Prints one JSON line per arm
(test accuracy, epochs, wall time) and a summary; runs are resumable folders under --root.
"""

import json
import os
import subprocess
import sys

import numpy as np
from absl import app, flags

from tlbkit.run_dir import RunDir

flags.DEFINE_string("root", "runs/finetune", "Folder of the image folder and both runs.")
flags.DEFINE_float("minutes", 3.0, "Wall-time budget of each arm (train.time_budget_min).")
flags.DEFINE_integer("train_per_class", 100, "Training images per shape.")
flags.DEFINE_integer("test_per_class", 100, "Test images per shape.")
flags.DEFINE_integer("seed", 0, "Seed of the images.")
FLAGS = flags.FLAGS

SHAPES = ("circle", "square", "triangle", "cross")


def draw(shape, rng, size=32):
    """One (size, size, 3) uint8 image of `shape`."""
    from PIL import Image, ImageDraw

    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    colour = tuple(int(v) for v in (np.array(background) + rng.integers(80, 176, 3)) % 256)
    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    r = rng.uniform(6, 12)
    cx, cy = rng.uniform(r, size - r, 2)
    if shape == "circle":
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "square":
        pen.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "triangle":
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        w = max(r / 3, 2)
        pen.rectangle([cx - r, cy - w, cx + r, cy + w], fill=colour)
        pen.rectangle([cx - w, cy - r, cx + w, cy + r], fill=colour)
    pixels = np.asarray(image, "float32") + rng.normal(0, 12, (size, size, 3))
    return np.clip(pixels, 0, 255).astype("uint8")


def make_folder(root):
    from PIL import Image

    folder = os.path.join(root, "shapes")
    if os.path.isdir(folder):
        return folder
    rng = np.random.default_rng(FLAGS.seed)
    for split, count in (("train", FLAGS.train_per_class), ("test", FLAGS.test_per_class)):
        for shape in SHAPES:
            os.makedirs(os.path.join(folder, split, shape), exist_ok=True)
            for i in range(count):
                Image.fromarray(draw(shape, rng)).save(os.path.join(folder, split, shape, f"{i:04d}.png"))
    return folder


def train(arm, folder):
    run = os.path.join(FLAGS.root, arm)
    if not RunDir(run).is_finished:
        command = [sys.executable, "-m", "tlbkit.bin.train", "--gin_file=cifar10_cpu.gin", f"--model_dir={run}",
                   f"--gin_param=datasets.image_folder.path = '{os.path.abspath(folder)}'",
                   "--gin_param=datasets.image_folder.test_split = 'test'",
                   f"--gin_param=datasets.image_folder.validation_count = {len(SHAPES) * FLAGS.train_per_class // 10}",
                   f"--gin_param=train.time_budget_min = {FLAGS.minutes}"]
        if arm == "tuned":
            command.append("--init_from=cifar10_tlb")
        subprocess.run(command, check=True)
    metrics = RunDir(run).read_metrics()
    return {"arm": arm, "test_accuracy": metrics.get("test_accuracy"), "val_accuracy": metrics.get("val_accuracy"),
            "epochs": metrics.get("epochs_completed"), "wall_time_s": metrics.get("wall_time_s")}


def main(argv):
    del argv
    os.makedirs(FLAGS.root, exist_ok=True)
    folder = make_folder(FLAGS.root)
    rows = [train(arm, folder) for arm in ("tuned", "scratch")]
    for row in rows:
        print(json.dumps(row))
    tuned, scratch = rows
    print(f"{len(SHAPES)} new classes, {FLAGS.train_per_class} training images each, {FLAGS.minutes} min each: "
          f"from the preset {tuned['test_accuracy']:.3f}, from scratch {scratch['test_accuracy']:.3f} test accuracy.")


if __name__ == "__main__":
    app.run(main)
