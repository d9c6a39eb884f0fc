"""One worker of a 2-worker `MultiWorkerMirroredStrategy` fit of a tiny integer-input model, with none, one
or both of tlbkit's work-arounds (tests/test_compat.py runs two of these and looks at how they end).

    python multi_worker_fit.py none|build|both   (TF_CONFIG set by the caller)
"""

import sys

import numpy as np
import tensorflow as tf

import keras
from tlbkit import compat

mode = sys.argv[1]
strategy = tf.distribute.MultiWorkerMirroredStrategy()
ids = np.random.default_rng(0).integers(0, 10, size=(64, 8)).astype("int32")
labels = (ids[:, 0] % 2).astype("int32")
ds = tf.data.Dataset.from_tensor_slices((ids, labels)).batch(16).repeat()
with strategy.scope():
    model = keras.Sequential([keras.Input((8,), dtype="int32"), keras.layers.Embedding(10, 4),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    batch = next(iter(ds))
    if mode in ("build", "both"):
        model._symbolic_build(data_batch=batch)
        model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    if mode == "both":
        compat._average_scalar_logs_without_axis()
model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)
print("fit finished")
