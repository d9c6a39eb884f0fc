"""UCR/UEA time-series classification sets from files (`.ts`, `.tsv`, `.arff`, `.csv`), by path or by name."""

import os

import numpy as np

from tlbkit_tasks.timeseries.archive import aeon_data_dir, locate  # noqa: F401 (aeon_data_dir: public here too)
from tlbkit_tasks.timeseries.formats import EXTENSIONS, read_labelled
from tlbkit import registry
from tlbkit.data import DataSpec

MISSING = ("error", "mask", "interpolate", "zero")
AUGMENTS = ("none", "jitter_scale", "slice_jitter_scale")


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


def cut_series(series, length, source, binding="tokenizers.series_patch.max_length"):
    """`series` (list of (T_i, C)) with those longer than `length` cut to it, saying how many."""
    if length is None:
        return series
    long = sum(len(s) > length for s in series)
    if long:
        print(f"tlbkit: {long} of the {len(series)} series of {source} are longer than the {length} steps the "
              f"model reads (the longest training series) and were cut to {length}; bind {binding} to choose.")
    return [s[:length] for s in series]


def stack_series(series, missing, source, length=None):
    """List of (T_i, C) -> values (N, T, C) float32, mask (N, T) bool, lengths (N,); T = `length` (longer
    series are cut, see `cut_series`) or the longest series."""
    series = cut_series(series, length, source)
    lengths = np.array([len(s) for s in series], "int32")
    channels = series[0].shape[1]
    width = length or lengths.max()
    values = np.zeros((len(series), width, channels), "float32")
    mask = np.zeros((len(series), width), bool)
    for i, s in enumerate(series):
        v, m = handle_missing(s, missing, f"{source} (case {i + 1})")
        values[i, : len(s)], mask[i, : len(s)] = v, m
    return values, mask, lengths


def series_split(values, mask, lengths, labels):
    """Unbatched tf.data of ({"values": (T_i, C), "mask": (T_i,)}, label), each at its own length."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((values, mask, lengths, np.asarray(labels, "int32")))
    return ds.map(lambda v, m, n, y: ({"values": v[:n], "mask": m[:n]}, y))


# === Augmentation ===
def slice_window(values, mask, ratio, seed=None):
    """Window slicing (Le Guennec et al. 2016): the window of `ratio` x the series' length that starts at a
    random step, stretched back to that length by linear interpolation, so what the series shows sits a
    little earlier or later and is a little wider. A step is kept by `mask` only if both steps it
    interpolates between were. Unbatched `(T, C)` values and `(T,)` mask; TensorFlow ops (a `tf.data` map).

    Args:
        values: (T, C) float tensor.
        mask: (T,) bool tensor.
        ratio: scalar float tensor in (0, 1]: the window's share of the series.
        seed: int or None. Op seed of the window's start.
    """
    import tensorflow as tf

    steps = tf.shape(values)[0]
    last = tf.cast(tf.maximum(steps - 1, 1), values.dtype)
    span = ratio * last
    start = tf.random.uniform([], 0.0, 1.0, seed=seed) * (last - span)
    position = start + tf.cast(tf.range(steps), values.dtype) * (span / last)
    low = tf.cast(tf.floor(position), "int32")
    high = tf.minimum(low + 1, steps - 1)
    weight = (position - tf.cast(low, values.dtype))[:, None]
    sliced = tf.gather(values, low) * (1.0 - weight) + tf.gather(values, high) * weight
    return sliced, tf.logical_and(tf.gather(mask, low), tf.gather(mask, high))


def make_train_map(augment, seed=0, scale=0.1, noise=0.05, min_ratio=0.9):
    """A per-example training map, or None.

    `"jitter_scale"` multiplies each channel of a series by exp(N(0, `scale`)) around its mean and adds
    noise of `noise` times its standard deviation (both computed over the real steps; padding stays
    zero). `"slice_jitter_scale"` first slices a window of a random `min_ratio` to 1 of the series and
    stretches it back to the series' length (`slice_window`): where a shape sits varies too. Small UCR/UEA
    training sets overfit without augmentation.
    """
    if augment not in AUGMENTS:
        raise ValueError(f"`augment` must be one of {AUGMENTS}. Received: augment={augment!r}")
    if augment == "none":
        return None
    import tensorflow as tf

    def train_map(inputs, label):
        values, mask = inputs["values"], inputs["mask"]
        if augment == "slice_jitter_scale":
            values, mask = slice_window(values, mask, tf.random.uniform([], min_ratio, 1.0, seed=seed + 2),
                                         seed=seed + 3)
        weight = tf.cast(mask, values.dtype)[:, None]
        count = tf.maximum(tf.reduce_sum(weight), 1.0)
        mean = tf.reduce_sum(values * weight, 0, keepdims=True) / count
        std = tf.sqrt(tf.reduce_sum(tf.square(values - mean) * weight, 0, keepdims=True) / count) + 1e-6
        factor = tf.exp(tf.random.normal(tf.shape(mean), stddev=scale, seed=seed))
        jitter = tf.random.normal(tf.shape(values), stddev=noise, seed=seed + 1) * std
        return {"values": (mean + (values - mean) * factor + jitter) * weight, "mask": mask}, label

    return train_map


# === User inputs (tlbkit-predict) and labelled data (tlbkit-eval --data) ===
def parse_series_text(text, where="input"):
    """One series written as text -> (T, C) float32 with NaN for `?`/blank values.

    Values are separated by commas (or whitespace); channels, as in the `.ts` format, by `:`
    (`1,2,3:4,5,6` is 3 steps of 2 channels).
    """
    channels = []
    for part in text.strip().split(":"):
        cells = [c for c in (part.split(",") if "," in part else part.split())]
        try:
            channels.append([np.nan if c.strip() in ("", "?", "nan", "NaN") else float(c) for c in cells])
        except ValueError:
            raise ValueError(f"{where}: not a number in {part[:60]!r} (values separated by commas, "
                             "channels by ':').") from None
    if not channels or not channels[0]:
        raise ValueError(f"{where} holds no numbers.")
    lengths = {len(c) for c in channels}
    if len(lengths) != 1:
        raise ValueError(f"{where}: channels of different lengths {sorted(lengths)}.")
    return np.array(channels, "float32").T


def read_csv_series(path):
    """One series from a CSV file -> (T, C) float32 with NaN for blank / `?` values.

    Format: numbers separated by commas (or whitespace); an optional first line of column names is
    skipped. One row or one column is a univariate series; otherwise rows are time steps and columns
    are channels.
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


def user_series(series, geometry, missing, names):
    """Model inputs of user series (list of (T, C) arrays), checked against the training data's
    `geometry` = (channels, longest series), each None when unknown."""
    channels, length = geometry
    for s, name in zip(series, names):
        if channels is not None and s.shape[1] != channels:
            hint = " (rows are time steps, columns channels)" if s.shape[0] == channels else ""
            raise ValueError(f"{name}: {s.shape[1]} channels, but the model reads {channels}{hint}.")
    values, mask, _ = stack_series(cut_series(series, length, "the inputs"), missing, "input")
    return {"values": values, "mask": mask}


def series_readers(locate, missing):
    """`(read_inputs, parse_inputs, read_source)` of a .ts dataset. The channel count they check comes
    from the training file when it is present (else the model's own shape check applies)."""

    def geometry():
        """(channels, longest training series) from the training file, or (None, None) without it."""
        try:
            train = read_labelled(locate()[0])
        except FileNotFoundError:
            return None, None
        return train.num_channels, max(len(x) for x in train.series)

    def read_inputs(paths):
        return user_series([read_csv_series(p) for p in paths], geometry(), missing, paths)

    def parse_inputs(texts):
        return user_series([parse_series_text(t, f"input {t[:30]!r}") for t in texts], geometry(), missing, texts)

    def read_source(source, class_names, split="test"):
        from tlbkit import data

        path = data.resolve_path(source, "--data")
        if os.path.isdir(path):
            suffixes = tuple(f"_{split.upper()}{ext.upper()}" for ext in EXTENSIONS)
            found = sorted(f for f in os.listdir(path) if f.upper().endswith(suffixes))
            if len(found) != 1:
                raise ValueError(f"{path}: expected one *_{split.upper()} file ({', '.join(EXTENSIONS)}), "
                                 f"found {found or 'none'}.")
            path = os.path.join(path, found[0])
        test = read_labelled(path)
        channels, length = geometry()
        if channels not in (None, test.num_channels):
            raise ValueError(f"{path} has {test.num_channels} channels; the model reads {channels}.")
        values, mask, lengths = stack_series(test.series, missing, path, length)
        return series_split(values, mask, lengths, label_ids(test, list(class_names), path))

    return read_inputs, parse_inputs, read_source


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


def stratified_holdout(labels, fraction, seed):
    """(train_index, validation_index): `fraction` of each class held out (at least one example of every
    class with two or more), in a seeded order."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) >= 2:
            held += list(members[: max(int(round(len(members) * fraction)), 1)])
    held = np.array(sorted(held), "int64")
    kept = np.setdiff1d(np.arange(len(labels)), held)
    return rng.permutation(kept), rng.permutation(held)


def series_spec(locate, missing="error", validation_fraction=0.2, seed=0, augment="none"):
    """DataSpec from `.ts` files; see `datasets.ts_files`.

    Args:
        locate: function returning `(train_path, test_path, validation_path)` (None where absent), called
            when the data is needed.
    """
    if missing not in MISSING:
        raise ValueError(f"`missing` must be one of {MISSING}. Received: missing={missing!r}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(
            f"`validation_fraction` must be in [0, 1). Received: validation_fraction={validation_fraction!r}"
        )

    def loader():
        train_path, test_path, validation_path = locate()
        if validation_path is not None and validation_fraction:
            raise ValueError("give either validation_path or validation_fraction, not both (set validation_fraction=0).")
        train = read_labelled(train_path)
        if not train.labels:
            raise ValueError(f"{train_path} has no class labels (@classLabel true expected).")
        names = class_names_of(train)
        channels = train.num_channels
        parts = {"train": (train, train_path)}
        for key, path in (("test", test_path), ("validation", validation_path)):
            if path is not None:
                parts[key] = (read_labelled(path), path)
                if parts[key][0].num_channels != channels:
                    raise ValueError(f"{path} has {parts[key][0].num_channels} channels, {train_path} has {channels}.")
        arrays = {}
        longest = max(len(x) for x in train.series)  # every batch is padded to it: the model's length
        for key, (ts, path) in parts.items():
            values, mask, lengths = stack_series(ts.series, missing, path, longest)
            arrays[key] = [values, mask, lengths, np.array(label_ids(ts, names, path), "int32")]
        note = f"the file {validation_path}" if validation_path else None
        if validation_fraction > 0:
            keep, held = stratified_holdout(arrays["train"][3], validation_fraction, seed)
            arrays["validation"] = [a[held] for a in arrays["train"]]
            arrays["train"] = [a[keep] for a in arrays["train"]]
            note = (f"{len(held)} of the {len(keep) + len(held)} training series held out "
                    f"(stratified, {validation_fraction:.0%} of each class, seed {seed}); the test file is not used "
                    "for any choice")
        splits = {k: series_split(*v) for k, v in arrays.items()}
        return {"train": splits["train"], "validation": splits.get("validation"), "test": splits.get("test"),
                "class_names": names, "num_train_examples": len(arrays["train"][3]), "validation_note": note,
                "padded_shapes": ({"values": [longest, channels], "mask": [longest]}, [])}

    read_inputs, parse_inputs, read_source = series_readers(locate, missing)
    return DataSpec(loader=loader, read_inputs=read_inputs, parse_inputs=parse_inputs, read_source=read_source,
                    train_map=make_train_map(augment, seed))


@registry.DATASETS.register("ts_files")
def ts_files(train_path, test_path=None, validation_path=None, missing="error", validation_fraction=0.2, seed=0,
             augment="none"):
    """A classification set from labelled series files: `.ts` (UCR/UEA, uni- or multivariate, any lengths),
    the UCR archive's `.tsv`, `.arff`, or `.csv` with a label column (`formats`; chosen by extension).

    Inputs are `{"values": (T, C) float32, "mask": (T,) bool}`; batches are padded to their longest
    series. Labels are mapped to ids in the order of the train file's `@classLabel` line (`class_names`
    keeps the strings). The validation split is `validation_path`, or (by default) a stratified, seeded
    `validation_fraction` of the training file; the test file is never used to choose anything. Paths
    are absolute or relative to the data folder (`--data_dir`).

    Inputs to `tlbkit-predict`: a CSV file per series (rows = steps, columns = channels), or the series
    as text (`1.0,2.5,...`; channels separated by `:`). `tlbkit-eval --data` reads a `.ts` file.

    Args:
        train_path: str. The training file (`*_TRAIN.ts`, `.tsv`, `.arff` or a `.csv`).
        test_path: str or None. The test file, in any of those formats.
        validation_path: str or None. A separate validation file (then `validation_fraction=0`).
        missing: str. `'?'` values: `"error"`, `"mask"`, `"interpolate"` or `"zero"` (see
            `handle_missing`). Defaults to `"error"`.
        validation_fraction: float. Share of each training class held out for validation (seeded);
            0 = no validation split. Defaults to `0.2`.
        seed: int. Seed of that hold-out and of the augmentation.
        augment: str. `"none"`, `"jitter_scale"` or `"slice_jitter_scale"` (see `make_train_map`).
            Defaults to `"none"`.
    """
    from tlbkit import data

    def locate():
        return tuple(None if p is None else data.resolve_path(p, f"datasets.ts_files.{key}")
                     for p, key in ((train_path, "train_path"), (test_path, "test_path"),
                                    (validation_path, "validation_path")))

    return series_spec(locate, missing, validation_fraction, seed, augment)


def locate_ts(name, data_dir=None):
    """(train_path, test_path) of the set `name`: `archive.locate` (kept under this name for callers)."""
    return locate(name, data_dir)


@registry.DATASETS.register("ucr")
def ucr(name, data_dir=None, missing="error", validation_fraction=0.2, seed=0, augment="none"):
    """A UCR/UEA archive set by name, e.g. `"GunPoint"`, `"ItalyPowerDemand"`, `"BasicMotions"`.

    Looks for `<name>_TRAIN` / `<name>_TEST` (`.ts`, `.tsv` or `.arff`) in `data_dir` or, without it, in
    the data folder (`--data_dir`) and then in the copies bundled with the `aeon` package: flat, in
    `<name>/`, under the archives' own folders (`UCRArchive_2018/<name>/`, `Univariate_ts/<name>/`, ...)
    or inside a zip of the archive (`archive.locate`). See `datasets.ts_files` for inputs, labels and splits.

    Args:
        name: str. Archive name.
        data_dir: str or None. A folder (or zip) to search instead of the data folder and aeon's copies.
        missing, validation_fraction, seed, augment: as in `datasets.ts_files`.
    """
    if not name:
        raise ValueError("datasets.ucr needs the set's name, e.g. --gin_param=\"UCR_NAME = 'GunPoint'\" with ucr.gin "
                         f"(or bind datasets.ucr.name). Received: name={name!r}")
    return series_spec(lambda: locate_ts(name, data_dir) + (None,), missing, validation_fraction, seed, augment)
