"""Series given to `tlbkit-predict` and `tlbkit-eval --data`: text, CSV files, labelled files, checked against a
trained model's channels and length."""

import os

import numpy as np

from tlbkit_tasks.timeseries.formats import EXTENSIONS, read_labelled
from tlbkit_tasks.timeseries.series_arrays import cut_series, label_ids, series_split, stack_series


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
