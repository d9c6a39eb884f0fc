"""Writes a made-up time-series set in the UCR archive's layout, sized to measure wall time at a limit.

Issue 28's wall-time rule is stated for sets of up to 1,000 training series of up to 1,000 steps; no set of
the development panel is that large in both. This writes one that is (by default), seeded, so that the
worst case can be timed with the same command as any archive set:

    python bench/ucr_synthetic.py --root=/tmp/synth
    tlbkit-train --gin_file=ucr.gin --gin_param="UCR_NAME = 'Synth1000'" --data_dir=/tmp/synth \
        --model_dir=runs/wall/synth1000

Each class is a sine of its own frequency with a bump at its own position; every series gets a random
phase, amplitude and offset, and Gaussian noise. The task is easy on purpose: the set measures time, not
accuracy.
"""

import os

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("root", None, "Folder to write `UCRArchive_2018/<name>/<name>_{TRAIN,TEST}.tsv` into.")
flags.DEFINE_string("name", "Synth1000", "The set's name.")
flags.DEFINE_integer("train", 1000, "Training series.", lower_bound=1)
flags.DEFINE_integer("test", 1000, "Test series.", lower_bound=1)
flags.DEFINE_integer("length", 1000, "Steps per series.", lower_bound=1)
flags.DEFINE_integer("classes", 5, "Number of classes (labels 1..classes).", lower_bound=2)
flags.DEFINE_float("noise", 0.5, "Standard deviation of the added noise, in units of the signal's amplitude.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.mark_flag_as_required("root")


def make_series(rng, n, length, classes, noise):
    """`(labels, series)`: `n` labels in 1..classes and an `(n, length)` float array."""
    t = np.linspace(0.0, 1.0, length)
    labels = rng.integers(1, classes + 1, size=n)
    freq = 2.0 + 1.5 * labels[:, None]
    centre = labels[:, None] / (classes + 1)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    amplitude = rng.uniform(0.5, 1.5, size=(n, 1))
    offset = rng.normal(0.0, 0.5, size=(n, 1))
    series = amplitude * (np.sin(2 * np.pi * freq * t + phase) + 2.0 * np.exp(-((t - centre) / 0.02) ** 2))
    series = series + offset + rng.normal(0.0, noise, size=(n, length))
    return labels, series


def main(argv):
    del argv
    folder = os.path.join(FLAGS.root, "UCRArchive_2018", FLAGS.name)
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(FLAGS.seed)
    for split, n in (("TRAIN", FLAGS.train), ("TEST", FLAGS.test)):
        labels, series = make_series(rng, n, FLAGS.length, FLAGS.classes, FLAGS.noise)
        path = os.path.join(folder, f"{FLAGS.name}_{split}.tsv")
        np.savetxt(path, np.column_stack([labels, series]), fmt=["%d"] + ["%.4f"] * FLAGS.length, delimiter="\t")
        print(f"wrote {path}: {n} series of {FLAGS.length} steps, {FLAGS.classes} classes")


if __name__ == "__main__":
    app.run(main)
