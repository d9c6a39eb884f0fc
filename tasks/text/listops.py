"""LRA-style ListOps, generated here: nested MAX/MIN/MED/SM lists over the digits 0-9.

An expression is a whitespace-separated token string such as
`[MAX 2 9 [MIN 4 7 ] 0 ]` (value 9); its label is its value (10 classes).
`[SM` is the sum modulo 10 and `[MED` the median rounded down (`int(np.median)`,
as in the Long Range Arena generator). Generation is deterministic given the
seed: trees are drawn as in the LRA generator (each argument below
`max_depth` is a nested list with probability `op_probability`, else a
digit; 2 to `max_args` arguments per list) and redrawn until their token
count lies in [`min_length`, `max_length`].

Reference: Nangia & Bowman, 2018, arXiv:1804.06028; Tay et al., Long Range
Arena, 2021, arXiv:2011.04006.
"""

import hashlib
import json
import os
import random

import numpy as np

from tlbkit import checks, data, registry
from tlbkit_tasks.text import text_data

OPERATORS = ("[MAX", "[MIN", "[MED", "[SM")
END = "]"
VOCABULARY = [str(d) for d in range(10)] + list(OPERATORS) + [END]


def apply_operator(op, values):
    if op == "[MAX":
        return max(values)
    if op == "[MIN":
        return min(values)
    if op == "[MED":
        return int(np.median(values))
    if op == "[SM":
        return sum(values) % 10
    raise ValueError(f"unknown ListOps operator {op!r}; expected one of {OPERATORS}")


class _TooLong(Exception):
    pass


def _draw(rng, depth, max_depth, max_args, op_probability, budget, out):
    """Appends one subtree's tokens to `out`; returns its value. Raises _TooLong past `budget` tokens."""
    if depth == 1 or (depth < max_depth and rng.random() < op_probability):
        op = OPERATORS[rng.randrange(len(OPERATORS))]
        out.append(op)
        values = [
            _draw(rng, depth + 1, max_depth, max_args, op_probability, budget, out)
            for _ in range(rng.randint(2, max_args))
        ]
        out.append(END)
        if len(out) > budget:
            raise _TooLong
        return apply_operator(op, values)
    value = rng.randrange(10)
    out.append(str(value))
    if len(out) > budget:
        raise _TooLong
    return value


def generate_expression(rng, min_length, max_length, max_depth, max_args, op_probability, max_tries=100_000):
    """One (tokens list, value) with min_length <= len(tokens) <= max_length."""
    for _ in range(max_tries):
        out = []
        try:
            value = _draw(rng, 1, max_depth, max_args, op_probability, max_length, out)
        except _TooLong:
            continue
        if len(out) >= min_length:
            return out, value
    raise ValueError(
        f"no ListOps expression with {min_length} to {max_length} tokens in {max_tries} draws "
        f"(max_depth={max_depth}, max_args={max_args}, op_probability={op_probability}): "
        "widen the length range or raise max_depth/max_args/op_probability."
    )


def generate_listops(num_examples, seed=0, min_length=1, max_length=2000, max_depth=10, max_args=10,
                     op_probability=0.25):
    """`num_examples` (expression string, value) pairs: lists of str and int32 array."""
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 0:
        raise ValueError(f"`num_examples` must be an integer >= 0. Received: num_examples={num_examples!r}")
    checks.in_range("max_length", max_length, 3, 1_000_000)
    checks.positive_int("min_length", min_length)
    checks.in_range("max_depth", max_depth, 1, 100)
    checks.in_range("max_args", max_args, 2, 1000)
    if min_length > max_length:
        raise ValueError(
            f"`min_length` must be <= max_length. Received: min_length={min_length}, max_length={max_length}"
        )
    rng = random.Random(seed)
    texts, values = [], []
    for _ in range(num_examples):
        tokens, value = generate_expression(rng, min_length, max_length, max_depth, max_args, op_probability)
        texts.append(" ".join(tokens))
        values.append(value)
    return texts, np.asarray(values, dtype="int32")


def _cached_split(n, seed, params, cache_dir):
    if not cache_dir:
        return generate_listops(n, seed, **params)
    key = hashlib.sha1(json.dumps({"n": n, "seed": seed, **params}, sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(os.path.expanduser(cache_dir), f"listops-{key}.npz")
    if os.path.exists(path):
        with np.load(path, allow_pickle=False) as data:
            return [t for t in data["texts"].tolist()], data["labels"]
    texts, labels = generate_listops(n, seed, **params)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + f".{os.getpid()}.tmp.npz"
    np.savez(tmp, texts=np.array(texts, dtype=str), labels=labels)
    os.replace(tmp, path)
    return texts, labels


def read_expressions(paths):
    """One expression per file (surrounding whitespace and newlines stripped)."""
    return np.array([t.strip() for t in text_data.read_text_files(paths)], dtype=object)


def read_tsv(source, class_names, split="test"):
    """`DataSpec.read_source` of ListOps: a TSV file of `expression<TAB>value` lines (the Long Range
    Arena's `basic_test.tsv` layout; a `Source<TAB>Target` header line is skipped)."""
    path = data.resolve_path(source, "--data")
    texts, labels, index = [], [], {name: i for i, name in enumerate(class_names)}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.rstrip("\r\n").split("\t")
            if number == 1 and fields[0] == "Source":
                continue
            if len(fields) != 2 or fields[1].strip() not in index:
                raise ValueError(f"{path}:{number}: expected 'expression<TAB>label' with a label in {list(class_names)}.")
            texts.append(fields[0].strip().encode())
            labels.append(index[fields[1].strip()])
    return text_data.text_split(texts, labels)


@registry.DATASETS.register("listops")
def listops(
    num_train=96_000,
    num_validation=2_000,
    num_test=2_000,
    min_length=500,
    max_length=2_000,
    max_depth=10,
    max_args=10,
    op_probability=0.25,
    seed=0,
    cache_dir="auto",
):
    """ListOps generated on the fly (no download); labels are the values 0-9.

    Inputs are expression strings (tokenize with `tokenizers.vocabulary`,
    `split='whitespace'`, `lowercase=False`, `vocabulary=VOCABULARY`).
    The splits use seeds `seed`, `seed + 1`, `seed + 2`. Generated splits are
    cached as `.npz` files (generating the LRA-sized set takes minutes).

    Args:
        num_train, num_validation, num_test: int. Split sizes.
        min_length, max_length: int. Token count range of an expression.
        max_depth: int. Deepest nesting (the root list is depth 1).
        max_args: int. Most arguments of one list (at least 2).
        op_probability: float. Chance that an argument is a nested list.
        seed: int. Data seed.
        cache_dir: str or None. Cache folder; `"auto"` = `$TLBKIT_CACHE/listops`
            (or `~/.cache/tlbkit/listops`), None = no cache.

    Inputs to `tlbkit-predict`: an expression as an argument (`"[MAX 2 9 ]"`), a line of standard input,
    or a file holding one. `tlbkit-eval --data` reads a TSV file of `expression<TAB>value` lines.
    """
    params = dict(min_length=min_length, max_length=max_length, max_depth=max_depth, max_args=max_args,
                  op_probability=op_probability)
    if cache_dir == "auto":
        cache_dir = data.cache_root("listops")

    def loader():
        splits = [
            _cached_split(n, seed + i, params, cache_dir) if n else None
            for i, n in enumerate((num_train, num_validation, num_test))
        ]
        return text_data.text_fields(splits[0], splits[1], splits[2], [str(d) for d in range(10)],
                                     f"{num_validation} generated expressions (seed {seed + 1})")

    return text_data.text_spec(loader, read_inputs=read_expressions, read_source=read_tsv)
