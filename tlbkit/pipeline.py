"""tf.data input pipelines built from a dataset plugin's `DataSpec`.

TensorFlow is imported when a pipeline is built, so the engine and its gin registrations load without it
(a JAX- or PyTorch-only machine can build a model from a shipped .gin file).
"""

import inspect


class EmptyDatasetError(ValueError):
    """A split holds no example."""


def check_not_empty(ds, what):
    """Raises EmptyDatasetError if `ds` yields nothing; returns its cardinality (negative: unknown or endless)."""
    card = int(ds.cardinality())
    if card == 0 or (card < 0 and not any(True for _ in ds.take(1))):
        raise EmptyDatasetError(f"The {what} is empty: check the dataset path / split settings.")
    return card


def takes_example_seed(fn):
    """Whether a `train_map` declares an `example_seed` parameter (see `batched`)."""
    try:
        return "example_seed" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        return False


def batched(spec, split, batch_size, training, seed=0, shuffle_buffer=10_000, cache=True):
    """A batched, prefetched pipeline for `split` ("train", "validation", "test").

    Training: cache -> shuffle (seeded, reshuffled every epoch) -> train_map
    (augmentation) -> batch (drop remainder) -> batch_map (MixUp/CutMix) -> prefetch. Evaluation: cache ->
    eval_map -> batch -> prefetch. A training split with fewer examples than `batch_size` (UCR/UEA has
    sets of 12) is repeated before batching, reshuffled at each pass, so that it still gives full batches:
    the pipeline is then endless (an example may recur within a batch).

    A `train_map` with an `example_seed` parameter is called as `train_map(inputs, label, example_seed=s)`,
    `s` a shape-(2,) int64 tensor drawn from `seed` for that example (new ones every epoch). A map that
    draws with stateless ops (`tf.random.stateless_*`) from it draws the same numbers for the same seed,
    whichever thread of the parallel map runs it, so the run is repeatable. A map without that parameter
    is called as `train_map(inputs, label)`; its stateful random ops (Keras random layers, `tf.random.*`
    with an op seed) are shared by the map's threads, so which example gets which draw varies from run
    to run.
    """
    import tensorflow as tf

    spec = spec.load()
    ds = spec.split(split)
    if ds is None:
        return None
    size = check_not_empty(ds, f"'{split}' split")
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if 0 < size < batch_size:
            print(f"tlbkit: the '{split}' split has {size} examples, fewer than one batch ({batch_size}): its "
                  "batches are drawn from it repeated, reshuffled at each pass.")
            ds = ds.repeat()
    fn = spec.train_map if training else spec.eval_map
    if fn is not None and training and takes_example_seed(fn):
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(lambda example, s: fn(*example, example_seed=s),
                                                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    elif fn is not None:
        ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if spec.padded_shapes is not None:
        ds = ds.padded_batch(batch_size, padded_shapes=spec.padded_shapes, drop_remainder=training)
    elif any(None in s.shape for s in tf.nest.flatten(ds.element_spec) if s.shape.rank):
        ds = ds.padded_batch(batch_size, drop_remainder=training)  # variable lengths: pad to each batch's longest
    else:
        ds = ds.batch(batch_size, drop_remainder=training, num_parallel_calls=tf.data.AUTOTUNE)
    if training and spec.batch_map is not None:
        ds = ds.map(spec.batch_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
