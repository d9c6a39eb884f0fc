"""Class names and class predictions of a classifier model (`SequenceClassifier`, `Ensemble`)."""

import numpy as np


def check_class_names(class_names, num_classes=None):
    """`class_names` as a tuple of str (None stays None), checked against the model's class count.

    Args:
        class_names: None or a sequence of distinct str.
        num_classes: int or None. The number of logits the model gives, when known.

    Raises:
        ValueError: naming the received value and what was expected.
    """
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)) or not all(isinstance(n, str) for n in class_names):
        raise ValueError(f"`class_names` must be a list of str, one per class. Received: class_names={class_names!r}")
    names = tuple(class_names)
    if len(set(names)) != len(names):
        raise ValueError(f"`class_names` must be distinct. Received: class_names={list(names)}")
    if num_classes is not None and len(names) != num_classes:
        raise ValueError(f"`class_names` names {len(names)} classes but the model gives {num_classes} logits. "
                         f"Received: class_names={list(names)}")
    return names


def as_model_inputs(x):
    """User inputs as a model takes them: str (or a list of str) becomes a NumPy array of UTF-8 bytes (what
    text tokenizers read); arrays, dicts and tensors are returned as they are."""
    if isinstance(x, (str, bytes)):
        x = [x]
    if isinstance(x, (list, tuple)) and x and all(isinstance(v, (str, bytes)) for v in x):
        return np.array([v.encode("utf-8") if isinstance(v, str) else v for v in x], dtype=object)
    return x


def _num_examples(x):
    import keras

    first = next(t for t in keras.tree.flatten(x) if t is not None)
    return int(np.shape(first)[0])


def predict_logits(model, x, batch_size=256):
    """(N, num_classes) float64 logits of `model` on inputs `x`, in batches, inference mode.

    Numeric inputs go through `model.predict` (compiled); string inputs (text) through calls on batches,
    which `predict`'s array adapter cannot take.
    """
    import keras

    x = as_model_inputs(x)
    leaves = [t for t in keras.tree.flatten(x) if t is not None]
    if all(np.asarray(t).dtype != object for t in leaves):
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), "float64")
    n, out = _num_examples(x), []
    for start in range(0, n, batch_size):
        batch = keras.tree.map_structure(lambda t: None if t is None else t[start:start + batch_size], x)
        out.append(np.asarray(keras.ops.convert_to_numpy(model(batch, training=False)), "float64"))
    return np.concatenate(out)


def predict_classes(model, x, top_k=1, batch_size=256):
    """The `top_k` most probable classes of each input, as `(class name, probability)` pairs, best first.

    Args:
        model: a classifier (`SequenceClassifier`, `Ensemble`) with `class_names` (class ids as str
            when it has none).
        x: what the model takes: images (N, H, W, C) of 0-255 pixels (uint8 or float), a list of str
            (text), series arrays (N, T) or (N, T, C) or `{"values", "mask"}`, token ids...
        top_k: int. How many classes per input. Defaults to `1`.
        batch_size: int. Defaults to `256`.

    Returns:
        A list with one list per input of `top_k` `(name, probability)` tuples, most probable first.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"`top_k` must be a positive int. Received: top_k={top_k!r}")
    logits = predict_logits(model, x, batch_size)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    names = getattr(model, "class_names", None) or tuple(str(i) for i in range(probs.shape[-1]))
    if len(names) != probs.shape[-1]:
        raise ValueError(f"{model.name!r} gives {probs.shape[-1]} logits but has {len(names)} class names.")
    k = min(top_k, probs.shape[-1])
    order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return [[(names[i], float(p[i])) for i in row] for row, p in zip(order, probs)]


class ClassNames:
    """Mixin of the classifier models (`SequenceClassifier`, `Ensemble`): `class_names`, checked against the
    model's `num_classes`, and `predict_classes`."""

    @property
    def class_names(self):
        """Tuple of the class names in logit order, or None (then `predict_classes` gives class ids)."""
        return self._class_names

    @class_names.setter
    def class_names(self, value):
        self._class_names = check_class_names(value, self.num_classes)

    def predict_classes(self, x, top_k=1, batch_size=256):
        """The `top_k` most probable classes of each input: `(class name, probability)` pairs, best first.

        Args:
            x: what the model takes: images (N, H, W, C) of 0-255 pixels, a list of str, series arrays
                (N, T[, C])...
            top_k: int. Classes per input. Defaults to `1`.
            batch_size: int. Defaults to `256`.

        Returns:
            A list, one list of `top_k` `(name, probability)` tuples per input.

        Example:
        >>> model.predict_classes(np.zeros((1, 32, 32, 3), "uint8"), top_k=2)  # doctest: +SKIP
        [[('frog', 0.41), ('cat', 0.22)]]
        """
        return predict_classes(self, x, top_k, batch_size)
