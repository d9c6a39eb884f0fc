"""A reader for the sktime/aeon `.ts` format of the UCR/UEA classification archives.

Layout: `#` or `%` comment lines, `@key value` header lines, `@data`, then
one case per line:

    dim1_v1,dim1_v2,...:dim2_v1,...:label          (@timeStamps false)
    (t1,v1),(t2,v2),...:(t1,v1),...:label           (@timeStamps true)

Dimensions are separated by `:`, the class label (when `@classLabel true`)
is the last field. Cases may differ in length (`@equalLength false`); the
dimensions of one case may too: shorter ones are padded with NaN (missing).
`?` (or an empty value) is a missing value and becomes NaN; what happens to
NaN is decided by the dataset (`missing=`), not here. Time stamps are read
and dropped (the values are taken in file order).
"""

import dataclasses
import re
from typing import List, Optional

import numpy as np

TRUE = ("true", "1", "yes")


class TSFormatError(ValueError):
    """A malformed `.ts` file; the message names the file and line."""


@dataclasses.dataclass
class TSData:
    """Parsed cases of one `.ts` file.

    Attributes:
        series: list of (T_i, C) float32 arrays (NaN = missing).
        labels: list of str class labels (empty without `@classLabel true`).
        class_labels: the labels declared by `@classLabel`, in file order.
        problem_name: str.
        header: dict of every `@key` (lower-cased) to its raw value.
    """

    series: List[np.ndarray]
    labels: List[str]
    class_labels: List[str]
    problem_name: Optional[str]
    header: dict

    @property
    def num_channels(self):
        return self.series[0].shape[1] if self.series else 0

    @property
    def has_missing(self):
        return any(np.isnan(s).any() for s in self.series)


def _number(token, where):
    token = token.strip()
    if token in ("?", "", "nan", "NaN"):
        return np.nan
    try:
        return float(token)
    except ValueError:
        raise TSFormatError(f"{where}: not a number: {token[:40]!r}") from None


_STAMPED = re.compile(r"\(([^()]*)\)")


def _dimension(text, timestamps, where):
    text = text.strip()
    if not text:
        return np.zeros([0], "float32")
    if timestamps:
        pairs = _STAMPED.findall(text)
        if not pairs:
            raise TSFormatError(f"{where}: expected (timestamp,value) pairs, got {text[:40]!r}")
        return np.array([_number(p.rsplit(",", 1)[-1], where) for p in pairs], "float32")
    return np.array([_number(v, where) for v in text.split(",")], "float32")


def _numeric(field, timestamps):
    """Whether a `:`-separated field holds numbers (a dimension) rather than a class label."""
    try:
        _dimension(field, timestamps, "")
        return True
    except TSFormatError:
        return False


def _split_fields(line, timestamps):
    if not timestamps:
        return line.split(":")
    fields, depth, start = [], 0, 0  # ':' inside time stamps (12:30) must not split
    for i, ch in enumerate(line):
        depth += ch == "("
        depth -= ch == ")"
        if ch == ":" and depth == 0:
            fields.append(line[start:i])
            start = i + 1
    fields.append(line[start:])
    return fields


def parse_ts(path=None, text=None):
    """Parses a `.ts` file (or its `text`). Returns `TSData`; raises `TSFormatError`."""
    if text is None:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    name = path or "<text>"
    header, in_data = {}, False
    series, labels = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{name}:{number}"
        if not line or line.startswith(("#", "%")):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise TSFormatError(f"{where}: expected an @header line or @data before the data, got {line[:40]!r}")
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
                if _flag(header, "targetlabel"):
                    raise TSFormatError(f"{where}: regression files (@targetLabel true) are not supported.")
                continue
            header[key] = value.strip()
            continue
        timestamps = _flag(header, "timestamps")
        has_label = _flag(header, "classlabel")
        fields = _split_fields(line, timestamps)
        if has_label:
            if len(fields) < 2:
                raise TSFormatError(f"{where}: expected values and a class label separated by ':'")
            labels.append(fields[-1].strip())
            fields = fields[:-1]
        elif len(fields) > 1 and not _numeric(fields[-1], timestamps):
            declared = header.get("classlabel")
            raise TSFormatError(
                f"{where}: the line ends in {fields[-1].strip()[:20]!r}, a class label, but the header "
                + (f"says @classLabel {declared}" if declared is not None else "has no @classLabel line")
                + ": declare the labels with @classLabel true followed by them (e.g. @classLabel true up down).")
        dims = [_dimension(f, timestamps, where) for f in fields]
        length = max(len(d) for d in dims)
        if length == 0:
            raise TSFormatError(f"{where}: the case has no values")
        case = np.full((length, len(dims)), np.nan, "float32")
        for c, d in enumerate(dims):
            case[: len(d), c] = d
        if series and case.shape[1] != series[0].shape[1]:
            raise TSFormatError(
                f"{where}: {case.shape[1]} dimensions, but the first case has {series[0].shape[1]}"
            )
        series.append(case)
    if not in_data:
        raise TSFormatError(f"{name}: no @data line: is this a .ts file?")
    _check_header(name, header, series, labels)
    class_labels = header.get("classlabel", "").split()[1:]
    return TSData(series, labels, class_labels, header.get("problemname"), header)


def _flag(header, key):
    """Whether header `@key` starts with true (`@classLabel true 1 2` -> True)."""
    words = header.get(key, "").split()
    return bool(words) and words[0].lower() in TRUE


def _check_header(name, header, series, labels):
    if not series:
        raise TSFormatError(f"{name}: no case after @data")
    channels = series[0].shape[1]
    if _flag(header, "univariate") and channels != 1:
        raise TSFormatError(f"{name}: @univariate true but the cases have {channels} dimensions")
    if "dimensions" in header and header["dimensions"].isdigit() and int(header["dimensions"]) != channels:
        raise TSFormatError(f"{name}: @dimensions {header['dimensions']} but the cases have {channels}")
    if _flag(header, "equallength") and header.get("serieslength", "").isdigit():
        expected = int(header["serieslength"])
        bad = next((i for i, s in enumerate(series) if s.shape[0] != expected), None)
        if bad is not None:
            raise TSFormatError(
                f"{name}: @seriesLength {expected} but case {bad + 1} has {series[bad].shape[0]} values"
            )
    declared = header.get("classlabel", "").split()[1:]
    if declared:
        unknown = sorted(set(labels) - set(declared))
        if unknown:
            raise TSFormatError(f"{name}: labels {unknown[:5]} are not declared in @classLabel {' '.join(declared)}")
