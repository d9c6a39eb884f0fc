"""Series as arrays: missing values, cutting, padding into (N, T, C) batches, label ids, and unbatched `tf.data`
splits."""

import numpy as np

MISSING = ("error", "mask", "interpolate", "zero")


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


def cut_series(series, length, source, binding="the tokenizer's max_length (tokenizers.series_conv.max_length in "
                                                "ucr.gin)"):
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


# === Labels ===
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
