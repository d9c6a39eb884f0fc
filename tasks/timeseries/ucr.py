"""UCR/UEA time-series classification sets from `.ts` files, by path or by name (aeon's copies)."""

import importlib.util
import os

import numpy as np

from tlbkit_tasks.timeseries.ts_format import parse_ts
from tlbkit import registry
from tlbkit.data import DataSpec

MISSING = ("error", "mask", "interpolate", "zero")


# === Missing values ===
def _interpolate(series):
    out = series.copy()
    steps = np.arange(len(series))
    for c in range(series.shape[1]):
        known = ~np.isnan(series[:, c])
        out[:, c] = np.interp(steps, steps[known], series[known, c]) if known.any() else 0.0
    return out


def handle_missing(series, missing, source):
    """(T, C) with NaN -> (values without NaN, (T,) bool mask) under the `missing` policy.

    `"error"`: raise; `"mask"`: a step with any missing channel is masked out
    (like padding); `"interpolate"`: linear interpolation in time per channel
    (the nearest value at the ends); `"zero"`: replace by 0.
    """
    if missing not in MISSING:
        raise ValueError(f"`missing` must be one of {MISSING}. Received: missing={missing!r}")
    nan = np.isnan(series)
    mask = np.ones(len(series), bool)
    if not nan.any():
        return series, mask
    if missing == "error":
        raise ValueError(
            f"{source} has {int(nan.sum())} missing values ('?'); choose how to handle them with "
            f"missing='mask', 'interpolate' or 'zero' (e.g. --gin_param=\"datasets.ucr.missing = 'interpolate'\")."
        )
    if missing == "mask":
        mask = ~nan.any(axis=1)
        return np.where(nan, 0.0, series).astype("float32"), mask
    if missing == "interpolate":
        return _interpolate(series).astype("float32"), mask
    return np.where(nan, 0.0, series).astype("float32"), mask


def stack_series(series, missing, source):
    """List of (T_i, C) -> values (N, T_max, C) float32, mask (N, T_max) bool, lengths (N,)."""
    lengths = np.array([len(s) for s in series], "int32")
    channels = series[0].shape[1]
    values = np.zeros((len(series), lengths.max(), channels), "float32")
    mask = np.zeros((len(series), lengths.max()), bool)
    for i, s in enumerate(series):
        v, m = handle_missing(s, missing, f"{source} (case {i + 1})")
        values[i, : len(s)], mask[i, : len(s)] = v, m
    return values, mask, lengths


def series_split(values, mask, lengths, labels):
    """Unbatched tf.data of ({"values": (T_i, C), "mask": (T_i,)}, label), each at its own length."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((values, mask, lengths, np.asarray(labels, "int32")))
    return ds.map(lambda v, m, n, y: ({"values": v[:n], "mask": m[:n]}, y))


# === User files (tlbkit-predict) ===
def read_csv_series(path):
    """One series from a CSV file -> (T, C) float32 with NaN for blank / `?` values.

    Format: numbers separated by commas (or whitespace); an optional first
    line of column names is skipped. One row or one column is a univariate
    series; otherwise rows are time steps and columns are channels.
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    for k, line in enumerate(lines):
        cells = [c.strip() for c in (line.split(",") if "," in line else line.split())]
        try:
            rows.append([np.nan if c in ("", "?", "nan", "NaN") else float(c) for c in cells])
        except ValueError:
            if k == 0:
                continue  # header
            raise ValueError(f"{path}:{k + 1}: not a number in {line[:60]!r}") from None
    if not rows:
        raise ValueError(f"{path} holds no numbers (expected one row or column of numbers per file).")
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"{path}: rows have different numbers of values ({sorted({len(r) for r in rows})}).")
    table = np.array(rows, "float32")
    if table.shape[0] == 1:
        table = table.T
    return table


def make_read_inputs(channels, missing):
    def read_inputs(paths):
        series = []
        for path in paths:
            s = read_csv_series(path)
            if s.shape[1] != channels:
                hint = " (rows are time steps, columns channels)" if s.shape[0] == channels else ""
                raise ValueError(f"{path}: {s.shape[1]} channels, but the model reads {channels}{hint}.")
            series.append(s)
        values, mask, _ = stack_series(series, missing, "input")
        return {"values": values, "mask": mask}

    return read_inputs


# === DataSpec ===
def class_names_of(data):
    if data.class_labels:
        return list(data.class_labels)
    names = sorted(set(data.labels))
    try:
        return sorted(names, key=float)
    except ValueError:
        return names


def label_ids(data, class_names, source):
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(data.labels) - set(index))
    if unknown:
        raise ValueError(f"{source}: labels {unknown[:5]} are not among the training labels {class_names}.")
    return [index[label] for label in data.labels]


def series_spec(train_path, test_path=None, validation_path=None, missing="error", validation_fraction=0.0, seed=0):
    """DataSpec from `.ts` files; see `datasets.ts_files`."""
    if missing not in MISSING:
        raise ValueError(f"`missing` must be one of {MISSING}. Received: missing={missing!r}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(
            f"`validation_fraction` must be in [0, 1). Received: validation_fraction={validation_fraction!r}"
        )
    train = parse_ts(train_path)
    if not train.labels:
        raise ValueError(f"{train_path} has no class labels (@classLabel true expected).")
    names = class_names_of(train)
    channels = train.num_channels
    parts = {"train": (train, train_path)}
    for key, path in (("test", test_path), ("validation", validation_path)):
        if path is not None:
            parts[key] = (parse_ts(path), path)
            if parts[key][0].num_channels != channels:
                raise ValueError(f"{path} has {parts[key][0].num_channels} channels, {train_path} has {channels}.")
    arrays = {}
    for key, (data, path) in parts.items():
        values, mask, lengths = stack_series(data.series, missing, path)
        arrays[key] = [values, mask, lengths, np.array(label_ids(data, names, path), "int32")]
    if validation_fraction > 0:
        if "validation" in arrays:
            raise ValueError("give either validation_path or validation_fraction, not both.")
        n = len(arrays["train"][3])
        order = np.random.default_rng(seed).permutation(n)
        cut = max(int(round(n * validation_fraction)), 1)
        arrays["validation"] = [a[order[:cut]] for a in arrays["train"]]
        arrays["train"] = [a[order[cut:]] for a in arrays["train"]]
    elif "validation" not in arrays and "test" in arrays:
        arrays["validation"] = arrays["test"]  # UCR has no validation split: monitor on test
    splits = {k: series_split(*v) for k, v in arrays.items()}
    return DataSpec(
        train=splits["train"],
        validation=splits.get("validation"),
        test=splits.get("test"),
        num_classes=len(names),
        class_names=names,
        read_inputs=make_read_inputs(channels, missing),
        padded_shapes=({"values": [None, channels], "mask": [None]}, []),
        num_train_examples=len(arrays["train"][3]),
    )


@registry.DATASETS.register("ts_files")
def ts_files(train_path, test_path=None, validation_path=None, missing="error", validation_fraction=0.0, seed=0):
    """A classification set from `.ts` files (UCR/UEA format, uni- or multivariate, any lengths).

    Inputs are `{"values": (T, C) float32, "mask": (T,) bool}`; batches are
    padded to their longest series. Labels are mapped to ids in the order of
    the train file's `@classLabel` line (`class_names` keeps the strings).
    Without a validation split (`validation_path`, `validation_fraction`),
    the test split doubles as the validation split: its numbers are for
    monitoring only (report the test accuracy of a fixed number of epochs).

    Args:
        train_path: str. The `*_TRAIN.ts` file.
        test_path: str or None. The `*_TEST.ts` file.
        validation_path: str or None. A separate validation file.
        missing: str. `'?'` values: `"error"`, `"mask"`, `"interpolate"` or
            `"zero"` (see `handle_missing`). Defaults to `"error"`.
        validation_fraction: float. Hold out this share of train (seeded).
        seed: int. Seed of that hold-out.
    """
    return series_spec(train_path, test_path, validation_path, missing, validation_fraction, seed)


def aeon_data_dir():
    """aeon's bundled `datasets/data` folder, found without importing aeon (None if absent)."""
    spec = importlib.util.find_spec("aeon")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = os.path.join(location, "datasets", "data")
        if os.path.isdir(folder):
            return folder
    return None


def locate_ts(name, data_dir=None):
    """(train_path, test_path) of `name` in `data_dir` (flat or `<name>/` subfolder) or in aeon's data."""
    folders = [os.path.expanduser(data_dir)] if data_dir else []
    if not data_dir and aeon_data_dir():
        folders.append(aeon_data_dir())
    for folder in folders:
        for base in (os.path.join(folder, name), folder):
            train = os.path.join(base, f"{name}_TRAIN.ts")
            if os.path.exists(train):
                test = os.path.join(base, f"{name}_TEST.ts")
                return train, test if os.path.exists(test) else None
    known = aeon_data_dir()
    listed = sorted(d for d in os.listdir(known) if os.path.isdir(os.path.join(known, d))) if known else []
    where = f"in {', '.join(folders)}" if folders else "(no data_dir given and the aeon package is not installed)"
    raise FileNotFoundError(
        f"no {name}_TRAIN.ts {where}. Pass datasets.ucr.data_dir (a folder of UCR/UEA .ts files) or "
        f"`pip install --no-deps aeon` for its bundled sets" + (f": {', '.join(listed)}." if listed else ".")
    )


@registry.DATASETS.register("ucr")
def ucr(name, data_dir=None, missing="error", validation_fraction=0.0, seed=0):
    """A UCR/UEA archive set by name, e.g. `"GunPoint"`, `"ItalyPowerDemand"`, `"BasicMotions"`.

    Looks for `<name>_TRAIN.ts` / `<name>_TEST.ts` in `data_dir` (directly or in
    `data_dir/<name>/`) or, without `data_dir`, in the copies bundled with the
    `aeon` package (located without importing aeon). See `datasets.ts_files`
    for inputs, labels and splits.

    Args:
        name: str. Archive name.
        data_dir: str or None. Folder of `.ts` files.
        missing, validation_fraction, seed: as in `datasets.ts_files`.
    """
    train, test = locate_ts(name, data_dir)
    return series_spec(train, test, None, missing, validation_fraction, seed)
