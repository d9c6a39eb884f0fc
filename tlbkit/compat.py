"""Every work-around of a Keras bug, in one place.

Each one names the bug, applies only to the Keras versions in which it was seen (`affected`), and has a
test in `tests/test_compat.py` that reproduces the bug without the work-around: when a Keras release
fixes it, that test fails, and the work-around (and its test) can be deleted.
"""

import keras

# The newest Keras release in which each bug below was reproduced (tests/test_compat.py checks again).
MULTI_WORKER_BUILD_LAST_SEEN = "3.15.1"
MULTI_WORKER_SCALAR_LOGS_LAST_SEEN = "3.15.1"


def _version(text):
    return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())


def affected(last_seen, version=None):
    """Whether Keras `version` (default: the installed one) is at most `last_seen`, where the bug was seen."""
    return _version(version or keras.__version__) <= _version(last_seen)


def prepare_multi_worker_fit(model, batch, strategy):
    """Lets `fit` run under `MultiWorkerMirroredStrategy`, where Keras 3.15 fails in two places.

    1. Before the first epoch `fit` builds the metrics and optimizer by averaging one batch across the
       workers (`Trainer._maybe_symbolic_build`); collective ops cannot average integer inputs or labels.
       The model is built here from a local batch instead, and that step is skipped.
    2. `fit` averages the per-step scalar logs with `strategy.reduce("MEAN", v, axis=0)`, which fails on
       scalars under collective ops; they are averaged without an axis instead.

    Does nothing for other strategies or unaffected Keras versions.
    """
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    if affected(MULTI_WORKER_BUILD_LAST_SEEN):
        model._symbolic_build(data_batch=batch)
        model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    if affected(MULTI_WORKER_SCALAR_LOGS_LAST_SEEN):
        _average_scalar_logs_without_axis()


def _average_scalar_logs_without_axis():
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if getattr(tf_trainer.reduce_per_replica, "_tlbkit_patched", False):
        return
    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction == "auto" and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica._tlbkit_patched = True
    tf_trainer.reduce_per_replica = reduce_per_replica
