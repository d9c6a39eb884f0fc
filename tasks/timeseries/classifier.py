"""`TLBClassifier`: the time-series recipe as an estimator with aeon's and scikit-learn's habits."""

import json
import os
import shutil
import tempfile

import numpy as np

from tlbkit_tasks.timeseries import formats

ESTIMATOR_FILE = "estimator.json"


class TLBClassifier:
    """Trains tlbkit's time-series recipe (`ucr.gin` by default) on arrays and predicts like a scikit-learn
    classifier.

    `fit` writes the training series to `<run>/data/train.npz` and trains through the same code as
    `tlbkit-train` (`tlbkit.bin.train.train_from_config`, with `DATASET = @datasets.ts_files()` reading that
    file): the run folder holds the checkpoints, `metrics.json` and `config.gin` as any run does, so
    `tlbkit-eval`, `tlbkit-predict` and `tlbkit-export` work on it. Without `model_dir` the run goes to a
    temporary folder removed with the estimator (`save` keeps the model). The model trains under the Keras
    backend of the process (`KERAS_BACKEND`; JAX is the fastest for these small models on a CPU).

    Args:
        config: str or list of str. Gin config(s), by name or path. Defaults to `"ucr.gin"`.
        gin_params: list of str. Extra bindings, e.g. `["train.epochs = 10"]`.
        model_dir: str or None. Run folder to train in (resumed if it holds an unfinished run of the same
            config). Defaults to a temporary folder.
        seed: int. `train.seed`. Defaults to `0`.
        overwrite: bool. Start afresh in a `model_dir` that holds a run of another config.
        verbose: bool. Print Keras' progress (one line an epoch). Defaults to `True`.

    Attributes (after `fit` or `load`):
        classes_: (k,) array of the labels, in the order of `predict_proba`'s columns.
        model_: the trained Keras model (inputs `{"values": (B, T, C), "mask": (B, T)}`, logits out).
        n_channels_, length_: the channels and the (longest) training length the model reads.
        metrics_: the run's `metrics.json` (after `fit`).

    Example:
    >>> clf = TLBClassifier(gin_params=["train.epochs = 2"])
    >>> clf.fit(X_train, y_train)          # X: (n, channels, length) or (n, length)
    >>> clf.predict(X_test), clf.score(X_test, y_test)
    >>> clf.save("my_model")               # a preset folder; TLBClassifier.load("my_model")
    """

    def __init__(self, config="ucr.gin", gin_params=(), model_dir=None, seed=0, overwrite=False, verbose=True):
        self.config = config
        self.gin_params = gin_params
        self.model_dir = model_dir
        self.seed = seed
        self.overwrite = overwrite
        self.verbose = verbose

    # scikit-learn's estimator protocol (clone, grid search) without depending on it.
    def get_params(self, deep=True):
        del deep
        return {k: getattr(self, k) for k in ("config", "gin_params", "model_dir", "seed", "overwrite", "verbose")}

    def set_params(self, **params):
        for key, value in params.items():
            if key not in self.get_params():
                raise ValueError(f"TLBClassifier has no parameter {key!r}; it has {sorted(self.get_params())}.")
            setattr(self, key, value)
        return self

    # === Training ===
    def fit(self, X, y):
        """Trains on series `X` with labels `y`; returns self.

        Args:
            X: `(n, channels, length)` (aeon's layout) or `(n, length)` array, or a list of `(channels,
                length_i)` / `(length_i,)` arrays of different lengths; NaN marks missing values.
            y: `(n,)` labels of any type (ints, strings, ...).
        """
        from tlbkit import plugins
        from tlbkit.bin import train as train_bin

        series = formats.series_list(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(series):
            raise ValueError(f"y must hold one label per series: {len(series)} series, y of shape {y.shape}.")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"y holds a single class {self.classes_.tolist()}: a classifier needs two or more.")
        text = [formats._label_text(c) for c in self.classes_]
        if len(set(text)) != len(text):
            raise ValueError(f"the labels {self.classes_.tolist()[:10]} are not distinct once written as text.")
        plugins.load_all()
        self._tmp = None if self.model_dir else tempfile.mkdtemp(prefix="tlbkit-estimator-")
        run = os.path.abspath(self.model_dir or self._tmp)
        os.makedirs(os.path.join(run, "data"), exist_ok=True)
        train_path = os.path.join(run, "data", "train.npz")
        formats.write_npz(train_path, X, [formats._label_text(v) for v in y], classes=text)
        configs = [self.config] if isinstance(self.config, str) else list(self.config)
        params = list(self.gin_params) + [
            "DATASET = @datasets.ts_files()",
            f"datasets.ts_files.train_path = {train_path!r}",
            "datasets.ts_files.test_path = None",
            f"train.seed = {int(self.seed)}",
        ]
        with _quiet(not self.verbose):
            self.metrics_ = train_bin.train_from_config(run, configs, params, overwrite=self.overwrite)
        self.run_dir_ = run
        self._load_run_model(run)
        return self

    def _load_run_model(self, folder):
        from tlbkit import evaluate

        self.model_ = evaluate.load_run_model(folder, "last")
        self._set_geometry()

    def _set_geometry(self):
        tokenizer = _first_tokenizer(self.model_)
        self.n_channels_ = getattr(tokenizer, "channels", None)
        self.length_ = getattr(tokenizer, "build_length", None)

    # === Prediction ===
    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError("this TLBClassifier is not fitted: call fit(X, y) or TLBClassifier.load(path) first.")

    def predict_proba(self, X, batch_size=256):
        """`(n, k)` class probabilities (columns in the order of `classes_`).

        Args:
            X: series as `fit` takes them. Series longer than the training length are cut to it (with a
                message); NaN values are interpolated as in training.
            batch_size: int. Series per forward pass.
        """
        from tlbkit import evaluate
        from tlbkit_tasks.timeseries.inputs import user_series

        self._check_fitted()
        series = formats.series_list(X)
        inputs = user_series(series, (self.n_channels_, self.length_), "interpolate",
                             [f"X[{i}]" for i in range(len(series))])
        logits_fn = evaluate.logits_function(self.model_)
        out = []
        for start in range(0, len(series), batch_size):
            batch = {k: v[start:start + batch_size] for k, v in inputs.items()}
            out.append(np.asarray(logits_fn(batch), "float64"))
        logits = np.concatenate(out)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def predict(self, X, batch_size=256):
        """`(n,)` predicted labels (elements of `classes_`)."""
        self._check_fitted()
        return self.classes_[self.predict_proba(X, batch_size).argmax(-1)]

    def score(self, X, y):
        """Accuracy of `predict(X)` against `y`."""
        y = np.asarray(y)
        return float(np.mean(self.predict(X) == y))

    # === Saving ===
    def save(self, path, checkpoint="last"):
        """Writes the fitted model as a preset folder (`tlbkit-export`'s: usable by `tlbkit-predict
        --model_dir`, `from_preset` and `TLBClassifier.load`), plus the labels with their types."""
        from tlbkit import presets

        self._check_fitted()
        if not hasattr(self, "run_dir_"):
            raise RuntimeError("this TLBClassifier was loaded from a preset: copy that folder instead of saving it.")
        presets.export(self.run_dir_, path, checkpoint=checkpoint)
        with open(os.path.join(path, ESTIMATOR_FILE), "w") as f:
            json.dump({"classes": self.classes_.tolist(), "dtype": self.classes_.dtype.str,
                       "params": {k: v for k, v in self.get_params().items() if k != "model_dir"}}, f, indent=1)
        return path

    @classmethod
    def load(cls, path):
        """A fitted TLBClassifier from a folder written by `save` (or any exported series run / preset)."""
        from tlbkit import evaluate

        estimator_file = os.path.join(path, ESTIMATOR_FILE)
        saved = json.load(open(estimator_file)) if os.path.exists(estimator_file) else None
        params = dict(saved["params"]) if saved else {}
        params["gin_params"] = tuple(params.get("gin_params", ()))
        clf = cls(**params)
        clf.model_ = evaluate.load_run_model(path, "last")
        if saved:
            clf.classes_ = np.array(saved["classes"], dtype=np.dtype(saved["dtype"]))
        else:
            clf.classes_ = np.array(evaluate.class_names(path))
        clf._set_geometry()
        return clf

    def __del__(self):
        tmp = getattr(self, "_tmp", None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _first_tokenizer(model):
    """The tokenizer of a classifier, or of an ensemble's first member."""
    if hasattr(model, "members"):
        return _first_tokenizer(model.members[0])
    return getattr(model, "tokenizer", None)


class _quiet:
    """Silences stdout (Keras' progress, tlbkit's notes) while active."""

    def __init__(self, active):
        self.active = active

    def __enter__(self):
        if self.active:
            import contextlib
            import io

            self._redirect = contextlib.redirect_stdout(io.StringIO())
            self._redirect.__enter__()

    def __exit__(self, *exc):
        if self.active:
            self._redirect.__exit__(*exc)
