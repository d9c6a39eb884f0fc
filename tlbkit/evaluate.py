"""Evaluation and prediction with a run's model: the one path behind `metrics.json`, `tlbkit-eval` and
`tlbkit-predict`.

Every evaluation reports accuracy and the plain cross-entropy of the logits (`cross_entropy`: no label
smoothing, whatever the training loss used) and says which model it scored (`checkpoint`: `last`, the
model at the end of training, or `best`, the epoch with the best validation accuracy).
"""

import os

import numpy as np

from tlbkit import backends, pipeline
from tlbkit import run_dir as rd
from tlbkit import saving

CHECKPOINTS = rd.CHECKPOINTS
LOSS = "cross_entropy"  # the name of the reported loss: plain cross-entropy of the logits


# === The run's pieces ===
def run_spec():
    """The run's `DataSpec` from its parsed config (`train.dataset`), not loaded: cheap."""
    from tlbkit import gin_utils

    return gin_utils.evaluate_binding("train.dataset")


def checkpoint_path(model_dir, checkpoint="last"):
    """The `.keras` file of a run's `last`/`best` model, or of an exported run (`model.keras`).

    Raises:
        FileNotFoundError: naming what the folder holds instead.
    """
    run = rd.RunDir(model_dir)
    path = run.checkpoint(checkpoint)  # ValueError for a name not in CHECKPOINTS
    if os.path.exists(path):
        return path
    exported = run.read_export()
    if exported is not None:
        if exported.get("checkpoint") != checkpoint:
            raise FileNotFoundError(
                f"{model_dir} is an exported run holding only its {exported.get('checkpoint')!r} model; "
                f"drop --checkpoint={checkpoint}."
            )
        return run.model_path
    if checkpoint == "best" and os.path.exists(run.checkpoint("last")):
        metrics = run.read_metrics()
        if metrics is None:
            why = "this unfinished run has validated no epoch yet"
        elif "val_accuracy" in metrics:
            why = ("the run has a validation split but validated no epoch while training (train.validation_freq "
                   "larger than the epochs it ran)")
        else:
            why = "the run had no validation split to select it on"
        raise FileNotFoundError(f"{model_dir} holds no {os.path.basename(path)}: {why}. Use --checkpoint=last.")
    raise FileNotFoundError(f"{model_dir} holds no {os.path.basename(path)}: train it first with tlbkit-train.")


def load_run_model(model_dir, checkpoint="last"):
    """A run's model, loaded and checked (every saved weight restored)."""
    return saving.load_model(checkpoint_path(model_dir, checkpoint))


def class_names(model_dir, spec=None):
    """The run's class names (`classes.json`, written when training starts; else from the dataset)."""
    saved = rd.RunDir(model_dir).read_classes()
    if saved is not None:
        return saved
    spec = (spec or run_spec()).load()
    return list(spec.class_names or [str(i) for i in range(spec.num_classes)])


def logits_function(model):
    """`inputs -> logits` for batches of a `tf.data` pipeline, compiled once for the Keras backend in use.

    - TensorFlow: a `tf.function` (evaluation runs the chunk loop as a graph), batches passed as they come.
    - JAX: `model.stateless_call` under `jax.jit`, fed the batch as NumPy arrays and the model's current
      weights at each call. A batch smaller than the first one (the last of a split) is padded to the first
      one's size by repeating its last example, and its logits cut back, so that one compiled shape serves a
      whole evaluation (examples do not interact at inference).
    - Other backends: a ValueError (`tlbkit.backends`).

    Args:
        model: keras.Model. Maps a batch of inputs (an array or a structure of arrays) to logits.

    Returns:
        callable: `batch -> logits` (a backend tensor; `np.asarray` makes it NumPy).
    """
    import keras

    backends.check_supported("tlbkit.evaluate")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return _jax_logits_function(model)


def _to_numpy(batch):
    import keras

    return keras.tree.map_structure(np.asarray, batch)


def _pad_to(batch, size):
    """`batch` with its last example repeated until it holds `size` examples."""
    import keras

    def pad(x):
        return np.concatenate([x, np.repeat(x[-1:], size - len(x), axis=0)]) if np.ndim(x) else x

    return keras.tree.map_structure(pad, batch)


def _jax_logits_function(model):
    import keras

    call = backends.jax_inference(model)
    sizes = {}  # "first": the first batch's size, to which later ones are padded

    def jax_logits(batch):
        batch = _to_numpy(batch)
        n = len(next(x for x in keras.tree.flatten(batch) if np.ndim(x)))
        size = sizes.setdefault("first", n)
        padded = 0 < n < size
        if padded:
            batch = _pad_to(batch, size)
        logits = call(batch)
        return logits[:n] if padded else logits

    return jax_logits


# === Metrics ===
def evaluate_model(model, spec, split, batch_size=256, logits_fn=None):
    """`{"examples", "accuracy", "cross_entropy"}` of `model` on one split of `spec`.

    Raises:
        ValueError: when `spec` has no such split.
    """
    from tlbkit.metrics import accuracy, cross_entropy

    ds = pipeline.batched(spec, split, batch_size, training=False, cache=False)
    if ds is None:
        present = [s for s in ("train", "validation", "test") if spec.split(s) is not None]
        raise ValueError(f"the run's dataset has no {split!r} split; it has {', '.join(present) or 'none'}: use "
                         + " or ".join(f"--split={s}" for s in present) + (" or --data." if present else "--data."))
    backends.check_numeric_inputs(ds.element_spec[0], "the run's dataset")
    logits_fn = logits_fn or logits_function(model)
    total, correct, loss_sum = 0, 0.0, 0.0
    for inputs, labels in ds:
        labels = np.asarray(labels)
        logits = logits_fn(inputs)
        correct += float(np.sum(np.asarray(accuracy(labels, logits))))
        loss_sum += float(np.sum(np.asarray(cross_entropy(labels, logits))))
        total += int(np.shape(labels)[0])
    return {"examples": total, "accuracy": correct / total, LOSS: loss_sum / total}


def read_labelled(spec, source, names, split="test"):
    """The spec's evaluation pipeline on a user's labelled data (`DataSpec.read_source`), as its test split."""
    if spec.read_source is None:
        raise ValueError("this run's dataset plugin cannot read other labelled data (its DataSpec has no read_source).")
    return spec.with_test(spec.read_source(source, list(names), split))


def with_test_time_views(model, views):
    """A copy of `model` sharing its parts and weights, with other test-time views: `"none"` (one view) or a
    registered views name (`"flip"`). The copy keeps what the model carries besides its parts: its class
    names, its probe input (`saving.get_probe`) and whether it is built.

    Args:
        model: `SequenceClassifier`, or `Ensemble` of them (each member gets the views).
        views: str. `"none"` or a registered views name.

    Raises:
        ValueError: for a model without a `test_time_views` attribute (not a `SequenceClassifier`, nor an
            `Ensemble` of them).
        UnknownNameError: for a name nothing registered (naming the registered ones).
    """
    from tlbkit import registry, saving
    from tlbkit.models.sequence_classifier import mark_built_from_parts

    class_names = getattr(model, "class_names", None)
    if hasattr(model, "members"):  # an Ensemble: each member with the views
        members = [with_test_time_views(m, views) for m in model.members]
        copy, parts = type(model)(members, class_names=class_names, name=model.name), members
    elif not hasattr(model, "test_time_views"):
        raise ValueError(f"{type(model).__name__} has no test-time views to replace; drop --test_time_views.")
    else:
        copy = type(model)(encoder=model.encoder, head=model.head, tokenizer=model.tokenizer,
                           test_time_views=None if views == "none" else registry.VIEWS.build(views),
                           class_names=class_names, name=model.name)
        parts = copy._parts()
    mark_built_from_parts(copy, parts)
    if saving.get_probe(model) is not None:
        setattr(copy, saving.PROBE_ATTRIBUTE, saving.get_probe(model))
    return copy


def evaluate(model_dir, split="validation", source=None, checkpoint="last", batch_size=256, output="auto",
             test_time_views=None):
    """Scores a run's model on one of its splits, or on other labelled data; writes the result as JSON.

    Args:
        model_dir: str. Run directory (or exported run).
        split: str. `"train"`, `"validation"` or `"test"`; with `source`, the split folder to look for
            inside it (a folder holding `test/<class>/...`), if any.
        source: str or None. Other labelled data, read by the run's dataset plugin with the run's class
            names (a folder, a zip, a `.ts` file, `tfds:name:split`, ...). The training data need not be
            present.
        checkpoint: str. `"last"` or `"best"`.
        batch_size: int.
        output: str or None. JSON file to write the result to; `"auto"` is
            `<model_dir>/eval_<split>_<checkpoint>.json`, with `source` `eval_<data name>_<split>_<checkpoint>.json`
            (`..._views-<name>.json` with `test_time_views`); None writes nothing.
        test_time_views: str or None. Score the model with other test-time views than it was saved with:
            `"none"` (one view: what the trained function gives without them) or a registered views name
            (`"flip"`). None: the model as saved.

    Returns:
        dict: `checkpoint`, `loss` (the name of the loss), `split` (and `data` with a source), `examples`, `accuracy`,
        `cross_entropy`, and `test_time_views` when given.
    """
    if test_time_views not in (None, "none"):
        from tlbkit import registry

        registry.VIEWS.get(test_time_views)  # an unknown name fails before anything loads
    spec = run_spec()
    if source is not None:
        spec = read_labelled(spec, source, class_names(model_dir, spec), split)
    model = load_run_model(model_dir, checkpoint)
    if test_time_views is not None:
        model = with_test_time_views(model, test_time_views)
    metrics = evaluate_model(model, spec, "test" if source is not None else split, batch_size)
    where = {"data": os.path.abspath(source), "split": split} if source is not None else {"split": split}
    result = {"checkpoint": checkpoint, "loss": LOSS, **where, **metrics}
    if test_time_views is not None:
        result["test_time_views"] = test_time_views
    if output == "auto":
        output = rd.RunDir(model_dir).eval_path(split, checkpoint, source, test_time_views)
    if output is not None:
        rd.atomic_write_json(output, result)
    return result


# === Predictions ===
def read_examples(spec, inputs):
    """Model inputs for a list of user inputs, each a file path or (for tasks that parse text) raw text."""
    files = [x for x in inputs if os.path.isfile(x)]
    raw = [x for x in inputs if not os.path.isfile(x)]
    if raw and spec.parse_inputs is None:
        raise FileNotFoundError(f"input file not found: {raw[0]} (this task reads only files)")
    if files and spec.read_inputs is None:
        raise ValueError("this dataset plugin cannot read user files (its DataSpec has no read_inputs).")
    batches = []
    if files:
        batches.append((files, spec.read_inputs(files)))
    if raw:
        batches.append((raw, spec.parse_inputs(raw)))
    return batches


def predict(model_dir, inputs, checkpoint="last", batch_size=256):
    """Predicted label and probability for each input, in input order.

    Args:
        model_dir: str. Run directory (or exported run, e.g. a preset).
        inputs: list of str. File paths that the run's dataset plugin reads (`read_inputs`) or, for tasks
            whose plugin parses text (`parse_inputs`), the inputs themselves (a review, a sequence).
        checkpoint: str. `"last"` or `"best"`.
        batch_size: int.

    Returns:
        A list of dicts: input, label, label_id, probability.
    """
    import tensorflow as tf

    spec = run_spec()
    model = load_run_model(model_dir, checkpoint)
    names = class_names(model_dir, spec)
    logits_fn = logits_function(model)
    by_input = {}
    for group, examples in read_examples(spec, list(inputs)):
        ds = tf.data.Dataset.from_tensor_slices((examples, np.zeros(len(group), "int32")))
        probs = []
        ds = pipeline.batched(spec.with_test(ds), "test", batch_size, training=False, cache=False)
        backends.check_numeric_inputs(ds.element_spec[0], "the run's dataset")
        for batch, _ in ds:
            logits = np.asarray(logits_fn(batch), "float64")
            e = np.exp(logits - logits.max(-1, keepdims=True))
            probs.append(e / e.sum(-1, keepdims=True))
        for text, p in zip(group, np.concatenate(probs)):
            by_input[text] = {"input": text, "label": names[int(p.argmax())], "label_id": int(p.argmax()),
                              "probability": float(p.max())}
    return [by_input[x] for x in inputs]
