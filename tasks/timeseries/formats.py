"""Labelled series files in the formats users download: `.ts`, the UCR archive's `.tsv`, `.arff`, `.csv`.

Every reader returns a `TSData` (series as `(T_i, C)` float32 arrays with NaN for missing values, labels as
strings), so the datasets, `tlbkit-eval --data` and the `TLBClassifier` treat them alike:

- `.ts` (sktime/aeon): see `ts_format`.
- `.tsv` / `.txt` (the UCR 2018 archive as distributed): one series per row, the class label first, values
  separated by tabs (commas or spaces are accepted too). Rows may differ in length (variable-length sets);
  a trailing run of `NaN` or empty cells is taken as the end of a shorter series, a `NaN` inside a row as a
  missing value. Univariate.
- `.arff` (Weka, the UEA archive's other official format): numeric attributes then the class attribute
  (univariate), or one relational attribute whose value is a quoted block of channels separated by `\\n`
  (multivariate), then the class. `?` is missing.
- `.csv`: one series per row, one column holding the label: the column named `label`, `class`, `target` or
  `y` in a header line, else the first column (`label_column=` chooses another, by name or index).
- `.npz` (NumPy, what `TLBClassifier` and `write_npz` write): `X` as `(n, channels, length)` (aeon's layout)
  or `(n, length)`, or ragged series as `values` `(total steps, channels)` with their `lengths` `(n,)`;
  `y` `(n,)` labels of any type; optionally `classes`, the label order. NaN is missing. No pickled objects.

`read_labelled(path)` picks the reader by extension; errors name the file and line.
"""

import csv
import io
import os
import re

import numpy as np

from tlbkit_tasks.timeseries.ts_format import TSData, TSFormatError, parse_ts

EXTENSIONS = (".ts", ".tsv", ".arff", ".csv", ".txt", ".npz")
LABEL_HEADERS = ("label", "class", "target", "y")
MISSING_TOKENS = ("", "?", "nan", "NaN", "NAN", "na", "NA")


def _number(token, where):
    token = token.strip()
    if token in MISSING_TOKENS:
        return np.nan
    try:
        return float(token)
    except ValueError:
        raise TSFormatError(f"{where}: not a number: {token[:40]!r}") from None


def _read_text(path, text):
    if text is not None:
        return text
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _label(token):
    """A label as the archives write it: `1`, `1.0` and ` 1` are one class ("1"); other text is kept."""
    token = token.strip().strip("'\"")
    try:
        number = float(token)
    except ValueError:
        return token
    return str(int(number)) if number.is_integer() else token


def _series(values):
    """A row of floats -> (T, 1) with trailing NaN (padding of a shorter series) removed."""
    values = np.asarray(values, "float32")
    real = np.flatnonzero(~np.isnan(values))
    length = real[-1] + 1 if len(real) else 0
    return values[:length, None]


def parse_tsv(path=None, text=None):
    """A UCR-archive `.tsv` file (label first, then the values of one series per row). Returns `TSData`."""
    text = _read_text(path, text)
    name = path or "<text>"
    series, labels = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{name}:{number}"
        cells = line.split("\t") if "\t" in line else (line.split(",") if "," in line else line.split())
        if len(cells) < 2:
            raise TSFormatError(f"{where}: expected a class label then the series' values, got {line[:40]!r}")
        values = _series([_number(c, where) for c in cells[1:]])
        if len(values) == 0:
            raise TSFormatError(f"{where}: the series has no values")
        labels.append(_label(cells[0]))
        series.append(values)
    if not series:
        raise TSFormatError(f"{name}: no series (expected one row per series: the label, then the values)")
    return TSData(series, labels, [], None, {})


# === ARFF ===
_ATTRIBUTE = re.compile(r"@attribute\s+('[^']*'|\"[^\"]*\"|\S+)\s+(.*)", re.IGNORECASE)


def _arff_fields(line):
    """Top-level comma-separated fields of an ARFF data line; quotes group (a relational value)."""
    return next(csv.reader(io.StringIO(line), quotechar="'", skipinitialspace=True))


def parse_arff(path=None, text=None):
    """A Weka `.arff` classification file, univariate or multivariate (relational). Returns `TSData`."""
    text = _read_text(path, text)
    name = path or "<text>"
    attributes, in_data, relational = [], False, False
    series, labels = [], []
    depth = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{name}:{number}"
        if not line or line.startswith("%"):
            continue
        if not in_data:
            lower = line.lower()
            if lower.startswith("@attribute"):
                match = _ATTRIBUTE.match(line)
                if match is None:
                    raise TSFormatError(f"{where}: malformed @attribute line {line[:60]!r}")
                kind = match.group(2).strip()
                if depth == 0:
                    attributes.append((match.group(1).strip("'\""), kind))
                    relational = relational or kind.lower().startswith("relational")
                if kind.lower().startswith("relational"):
                    depth += 1
            elif lower.startswith("@end"):
                depth = max(depth - 1, 0)
            elif lower.startswith("@data"):
                in_data = True
                if len(attributes) < 2:
                    raise TSFormatError(f"{where}: expected value attributes and a class attribute before @data")
                if not attributes[-1][1].startswith("{"):
                    raise TSFormatError(f"{where}: the last attribute {attributes[-1][0]!r} is not nominal "
                                        "({...}): regression or unlabelled files are not supported.")
            continue
        fields = _arff_fields(line)
        if relational:
            if len(fields) != 2:
                raise TSFormatError(f"{where}: expected 'channels',label (a quoted relational value), got "
                                    f"{len(fields)} fields")
            channels = [[_number(v, where) for v in ch.split(",")] for ch in fields[0].split("\\n")]
            if len({len(c) for c in channels}) != 1:
                raise TSFormatError(f"{where}: channels of different lengths {sorted({len(c) for c in channels})}")
            case = np.array(channels, "float32").T
        else:
            if len(fields) != len(attributes):
                raise TSFormatError(f"{where}: {len(fields)} values, but {len(attributes)} attributes are declared")
            case = _series([_number(v, where) for v in fields[:-1]])
        if series and case.shape[1] != series[0].shape[1]:
            raise TSFormatError(f"{where}: {case.shape[1]} channels, but the first case has {series[0].shape[1]}")
        labels.append(_label(fields[-1]))
        series.append(case)
    if not in_data or not series:
        raise TSFormatError(f"{name}: no @data section with cases: is this an .arff file?")
    declared = [_label(c) for c in _arff_fields(attributes[-1][1].strip()[1:-1])]
    return TSData(series, labels, declared, None, {})


# === CSV ===
def parse_csv(path=None, text=None, label_column=None):
    """A `.csv` file of one labelled series per row. Returns `TSData`.

    Args:
        path: str. The file (or give `text`).
        text: str or None. The file's contents.
        label_column: str, int or None. The label's column: a header name or a 0-based index. None: the
            column named `label`/`class`/`target`/`y` when the first line is a header, else the first.
    """
    text = _read_text(path, text)
    name = path or "<text>"
    rows = [(n, r) for n, r in enumerate(csv.reader(io.StringIO(text)), 1) if any(c.strip() for c in r)]
    if not rows:
        raise TSFormatError(f"{name}: no rows")
    first = rows[0][1]
    header = None
    try:
        [float(c) for c in first[1:] if c.strip() not in MISSING_TOKENS]
    except ValueError:
        header, rows = [c.strip() for c in first], rows[1:]
    column = _label_column(label_column, header, name)
    series, labels = [], []
    for number, cells in rows:
        where = f"{name}:{number}"
        if column >= len(cells):
            raise TSFormatError(f"{where}: no column {column} (the label) in a row of {len(cells)}")
        labels.append(_label(cells[column]))
        values = _series([_number(c, where) for i, c in enumerate(cells) if i != column])
        if len(values) == 0:
            raise TSFormatError(f"{where}: the series has no values")
        series.append(values)
    if not series:
        raise TSFormatError(f"{name}: a header but no series")
    return TSData(series, labels, [], None, {})


def _label_column(label_column, header, name):
    if isinstance(label_column, int):
        return label_column
    if label_column is not None:
        if header is None or label_column not in header:
            raise TSFormatError(f"{name}: label_column={label_column!r} is not a column of its header "
                                f"{header[:8] if header else '(no header line)'}")
        return header.index(label_column)
    if header is not None:
        for i, cell in enumerate(header):
            if cell.lower() in LABEL_HEADERS:
                return i
    return 0


# === NumPy ===
def series_list(X, where="X"):
    """Series given as arrays -> list of (T_i, C) float32.

    Args:
        X: `(n, channels, length)` (aeon's layout), `(n, length)` (univariate), or a list of `(channels,
            length_i)` / `(length_i,)` arrays (ragged: series of different lengths).
        where: str. Named in errors.

    Raises:
        ValueError: naming the shape received and the shapes accepted.
    """
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim == 2:
            X = X[:, None, :]
        if X.ndim != 3:
            raise ValueError(f"{where} must be (n, channels, length) or (n, length); received shape {X.shape}.")
        if X.shape[0] == 0 or X.shape[2] == 0:
            raise ValueError(f"{where} holds no series (shape {X.shape}).")
        return [np.asarray(x, "float32").T for x in X]
    series = []
    for i, x in enumerate(X):
        x = np.asarray(x, "float32")
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"{where}[{i}] must be (channels, length) or (length,); received shape {x.shape}.")
        series.append(x.T)
    if not series:
        raise ValueError(f"{where} holds no series.")
    if len({s.shape[1] for s in series}) != 1:
        raise ValueError(f"{where}: series with different channel counts {sorted({s.shape[1] for s in series})}.")
    return series


def _label_text(value):
    """A label as text (numbers as the archives write them: 1.0 -> "1")."""
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("utf-8")
    return _label(str(value))


def write_npz(path, X, y, classes=None):
    """Writes series and labels as a `.npz` that `read_labelled` reads (no pickle; ragged series kept).

    Args:
        path: str. The file to write.
        X: series, as `series_list` takes them.
        y: (n,) labels of any type (written as text).
        classes: optional label order (the `class_names` of a run on this file).
    """
    series = series_list(X)
    if len(y) != len(series):
        raise ValueError(f"{len(series)} series but {len(y)} labels.")
    arrays = {"values": np.concatenate(series), "lengths": np.array([len(s) for s in series], "int64"),
              "y": np.array([_label_text(v) for v in y])}
    if classes is not None:
        arrays["classes"] = np.array([_label_text(c) for c in classes])
    np.savez(path, **arrays)


def parse_npz(path):
    """A `.npz` of series and labels (see the module docstring). Returns `TSData`."""
    with np.load(path, allow_pickle=False) as f:
        keys = set(f.files)
        if "y" not in keys or not ({"X"} <= keys or {"values", "lengths"} <= keys):
            raise TSFormatError(f"{path}: expected arrays X and y (or values, lengths and y); found {sorted(keys)}.")
        if "X" in keys:
            series = series_list(f["X"], f"{path}: X")
        else:
            ends = np.cumsum(f["lengths"])
            values = f["values"] if f["values"].ndim == 2 else f["values"][:, None]
            series = [values[e - n:e].astype("float32") for e, n in zip(ends, f["lengths"])]
        labels = [_label_text(v) for v in f["y"]]
        classes = [_label_text(v) for v in f["classes"]] if "classes" in keys else []
    if len(labels) != len(series):
        raise TSFormatError(f"{path}: {len(series)} series but {len(labels)} labels.")
    return TSData(series, labels, classes, None, {})


def read_labelled(path, label_column=None):
    """Any supported labelled file, by extension (`.ts`, `.tsv`/`.txt`, `.arff`, `.csv`, `.npz`). Returns
    `TSData`.

    Raises:
        ValueError: for another extension, naming the supported ones.
        TSFormatError: for a malformed file, naming file and line.
    """
    extension = os.path.splitext(str(path))[1].lower()
    if extension == ".ts":
        return parse_ts(path)
    if extension in (".tsv", ".txt"):
        return parse_tsv(path)
    if extension == ".arff":
        return parse_arff(path)
    if extension == ".csv":
        return parse_csv(path, label_column=label_column)
    if extension == ".npz":
        return parse_npz(path)
    raise ValueError(f"{path}: unknown series file format {extension or '(no extension)'!r}; tlbkit reads "
                     f"{', '.join(EXTENSIONS)} (docs/usage.md, 'Your own data').")
