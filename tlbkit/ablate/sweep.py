"""Sweeps: their axes, seeds and sweep files, the grid of trials, and a dry check of every trial.

See `tlbkit.ablate` for the sweep-file format.
"""

import dataclasses
import io
import os
import re
import tokenize


class SweepError(ValueError):
    """A malformed sweep (axis, value list, sweep file)."""


@dataclasses.dataclass
class Axis:
    """One swept gin binding.

    Args:
        name: str. Gin binding name (`cells.tlb.r`) or macro (`CHUNK_SIZE`).
        values: list of str. Gin literal texts, e.g. `["1", "2"]`.
    """

    name: str
    values: list


@dataclasses.dataclass
class Sweep:
    """A base gin config and the axes swept over it.

    Args:
        gin_files: list of str. `--gin_file` of every trial, in order.
        gin_search_paths: list of str. `--gin_search_path` of every trial.
        plugins: list of str. `--plugin` modules of every trial.
        params: list of str. Fixed `--gin_param` bindings of every trial.
        axes: list of `Axis`. The grid is their product.
        seeds: list of int. Each setting runs once per seed (`--seed`).
        metric: str. Key of `metrics.json` that the table and the plot compare.
        title: str. Heading of `results.md`.
    """

    gin_files: list = dataclasses.field(default_factory=list)
    gin_search_paths: list = dataclasses.field(default_factory=list)
    plugins: list = dataclasses.field(default_factory=list)
    params: list = dataclasses.field(default_factory=list)
    axes: list = dataclasses.field(default_factory=list)
    seeds: list = dataclasses.field(default_factory=lambda: [0])
    metric: str = "val_accuracy"
    title: str = "Ablation"


@dataclasses.dataclass
class Trial:
    """One run of the grid: a value per axis and a seed.

    Args:
        trial_id: str. Directory name under `<root>/trials/`.
        bindings: list of `(name, value text)`, one per axis.
        seed: int. Passed as `--seed`.
    """

    trial_id: str
    bindings: list
    seed: int

    @property
    def setting(self):
        return tuple(v for _, v in self.bindings)

    def params(self):
        return [f"{name} = {value}" for name, value in self.bindings]


# === Parsing ===


class _SyntaxDelegate:
    """Gin parser delegate that accepts any reference or macro (syntax check only)."""

    def configurable_reference(self, name, evaluate):
        return ("@", name, evaluate)

    def macro(self, name):
        return ("%", name)


def check_value(text):
    """Raises `SweepError` unless `text` is exactly one gin literal."""
    from gin import config_parser

    try:
        parser = config_parser.ConfigParser(text, _SyntaxDelegate())
        parser.parse_value()
        rest = parser.current_token
    except (SyntaxError, ValueError) as e:
        raise SweepError(f"{text!r} is not a gin value: {e}") from e
    if rest.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
        raise SweepError(f"{text!r} is not a single gin value (unexpected {rest.string!r}).")


def split_values(text):
    """Splits a gin list literal into the texts of its elements.

    Args:
        text: str. E.g. `"[1, 2]"` or `"[@encoders.tlb(), @encoders.lstm()]"`.

    Returns:
        list of str, each a gin literal, e.g. `["1", "2"]`.
    """
    text = " ".join(text.splitlines()).strip()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as e:
        raise SweepError(f"cannot read the value list {text!r} (unbalanced brackets or quotes?)") from e
    depth, start, end, values = 0, None, None, []
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
            if depth == 1:
                start = tok.end[1]
                continue
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
            if depth == 0:
                values.append(text[start : tok.start[1]].strip())
                end = tok.end[1]
                break
        elif depth == 1 and tok.type == tokenize.OP and tok.string == ",":
            values.append(text[start : tok.start[1]].strip())
            start = tok.end[1]
        if depth == 0 and tok.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            break
    if end is None or text[end:].strip():
        raise SweepError(f"sweep values must be one list like [1, 2]. Received: {text!r}")
    if len(values) > 1 and not values[-1]:
        values.pop()  # trailing comma
    if values == [""]:
        raise SweepError(f"the value list is empty: {text!r}")
    if any(not v for v in values):
        raise SweepError(f"empty value in the list {text!r}")
    for v in values:
        check_value(v)
    return values


def parse_axis(spec):
    """`"cells.tlb.r = [1, 2]"` -> `Axis("cells.tlb.r", ["1", "2"])`."""
    name, sep, values = spec.partition("=")
    name = name.strip()
    if not sep or not name or not all(part.isidentifier() for part in name.replace("/", ".").split(".")):
        raise SweepError(f"a sweep axis reads 'name = [v1, v2]'. Received: {spec!r}")
    return Axis(name, split_values(values))


def parse_seeds(text):
    """`"3"` -> `[0, 1, 2]`; `"[0, 7]"` or `"0,7"` -> `[0, 7]`."""
    text = str(text).strip()
    try:
        if text.isdigit():
            count = int(text)
            if count < 1:
                raise ValueError
            return list(range(count))
        seeds = [int(s) for s in text.strip("[]() ").split(",") if s.strip()]
        if not seeds:
            raise ValueError
    except ValueError:
        raise SweepError(f"seeds must be a count >= 1 or a list of integers. Received: {text!r}") from None
    return seeds


def read_sweep_file(path):
    """Reads a sweep file (format in the module docstring) into a `Sweep`.

    Args:
        path: str. The `.sweep` file, by path or by name like a gin file (`ablations/carry_state.sweep`
            finds the shipped one). Its folder is added to the gin search path.
    """
    from tlbkit import gin_utils

    try:
        path = gin_utils.resolve(path)
    except gin_utils.GinConfigError as e:
        raise FileNotFoundError(str(e).replace("config file", "sweep file", 1)) from None
    base = os.path.dirname(os.path.abspath(path))
    sweep = Sweep(gin_search_paths=[base], title=os.path.splitext(os.path.basename(path))[0])
    statements, pending = [], ""
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = _strip_comment(line).strip()
            pending = f"{pending} {line}".strip() if pending else line
            if pending and pending.count("[") + pending.count("(") <= pending.count("]") + pending.count(")"):
                statements.append((number, pending))
                pending = ""
    if pending:
        raise SweepError(f"{path}: unclosed bracket at the end of the file: {pending!r}")
    for number, text in statements:
        try:
            _apply_statement(sweep, text, base)
        except SweepError as e:
            raise SweepError(f"{path}:{number}: {e}") from None
    return sweep


def _strip_comment(line):
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _apply_statement(sweep, text, base):
    keyword, _, rest = text.partition(" ")
    if keyword in ("param", "sweep"):
        if keyword == "param":
            sweep.params.append(rest.strip())
        else:
            sweep.axes.append(parse_axis(rest))
        return
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not value:
        raise SweepError(f"expected 'key = value', 'param <binding>' or 'sweep <name> = [...]'. Received: {text!r}")
    if key == "gin_file":
        sweep.gin_files.append(value)
    elif key == "gin_search_path":
        sweep.gin_search_paths.append(os.path.normpath(os.path.join(base, value)))
    elif key == "plugin":
        sweep.plugins.append(value)
    elif key == "seeds":
        sweep.seeds = parse_seeds(value)
    elif key == "metric":
        sweep.metric = value
    elif key == "title":
        sweep.title = value
    else:
        raise SweepError(f"unknown key {key!r}; expected gin_file, gin_search_path, plugin, param, sweep, "
                         "seeds, metric or title.")


def merge_axes(axes, overrides):
    """`axes` with those of `overrides` replacing same-named ones (others appended)."""
    out = list(axes)
    for axis in overrides:
        out = [a for a in out if a.name != axis.name] + [axis]
    return out


def build_sweep(sweep_file=None, gin_files=(), gin_search_paths=(), plugins=(), params=(), axes=(), seeds=None,
                metric=None, title=None):
    """A `Sweep` from an optional sweep file plus command-line additions (which come after it).

    Args:
        sweep_file: str or None. A `.sweep` file.
        gin_files, gin_search_paths, plugins, params: lists of str appended to the file's.
        axes: list of str, e.g. `"cells.tlb.r=[1, 2]"`; an axis named in the file is replaced.
        seeds: str or None. Count or list (see `parse_seeds`); replaces the file's.
        metric: str or None. Replaces the file's (default `val_accuracy`).
        title: str or None. Replaces the file's.
    """
    sweep = read_sweep_file(sweep_file) if sweep_file else Sweep()
    sweep.gin_files += list(gin_files)
    sweep.gin_search_paths += [os.path.abspath(p) for p in gin_search_paths]
    sweep.plugins += list(plugins)
    sweep.params += list(params)
    sweep.axes = merge_axes(sweep.axes, [parse_axis(a) for a in axes])
    if seeds is not None:
        sweep.seeds = parse_seeds(seeds)
    sweep.metric = metric or sweep.metric
    sweep.title = title or sweep.title
    if not sweep.gin_files and not sweep.params:
        raise SweepError("the sweep has no gin config: give --gin_file (or a --sweep_file with 'gin_file = ...').")
    return sweep


# === The grid ===


def _slug(value):
    text = value.strip()
    if text.startswith("@"):
        text = text[1:].removesuffix("()")
    text = text.strip("'\"")
    safe = "".join(ch if ch.isalnum() or ch in "._+-" else "_" for ch in text)
    return safe[:40] or "_"


def make_trials(sweep):
    """The trials of a sweep: product of the axes (first axis slowest) times the seeds.

    Trial ids are readable and stable across reruns: `r=1,num_latents=4,seed=0`
    (the last part of each binding name; the full name where two axes share it).

    Raises:
        SweepError: when two trials would share an id.
    """
    import itertools

    if len({a.name for a in sweep.axes}) != len(sweep.axes):
        raise SweepError(f"an axis appears twice: {[a.name for a in sweep.axes]}")
    short = [a.name.replace("/", ".").split(".")[-1] for a in sweep.axes]
    labels = [s if short.count(s) == 1 else a.name.replace("/", ".") for s, a in zip(short, sweep.axes)]
    trials, seen = [], {}
    for values in itertools.product(*[a.values for a in sweep.axes]):
        for seed in sweep.seeds:
            parts = [f"{label}={_slug(v)}" for label, v in zip(labels, values)] + [f"seed={seed}"]
            trial = Trial(",".join(parts), [(a.name, v) for a, v in zip(sweep.axes, values)], seed)
            if trial.trial_id in seen:
                raise SweepError(f"settings {seen[trial.trial_id]} and {trial.params()} map to the same trial "
                                 f"directory {trial.trial_id!r}; make the values distinct.")
            seen[trial.trial_id] = trial.params()
            trials.append(trial)
    return trials


def train_args(sweep, trial, extra_flags=()):
    """Flags of `tlbkit.bin.train` for a trial (without `--model_dir`)."""
    args = [f"--gin_file={f}" for f in sweep.gin_files]
    args += [f"--gin_search_path={p}" for p in sweep.gin_search_paths]
    args += [f"--plugin={p}" for p in sweep.plugins]
    args += [f"--gin_param={p}" for p in sweep.params + trial.params()]
    return args + [f"--seed={trial.seed}"] + list(extra_flags)


def check_sweep(sweep, build_model=True):
    """Parses every trial's gin config in this process (no training).

    Args:
        sweep: `Sweep`.
        build_model: bool. Also construct each trial's model (`train.model`),
            which validates the layers' arguments without building weights.

    Returns:
        dict `{trial_id: error message}` of the trials that do not parse (empty when all do).
    """
    from tlbkit import plugins

    plugins.load_all(sweep.plugins)
    errors = {}
    for trial in make_trials(sweep):
        errors.update(_check_trial(sweep, trial, build_model))
    return errors


def check_axis_names(sweep):
    """Checks, before any trial is launched, that every axis names something the sweep's config reads.

    A binding axis (`cells.tlb.r`) must name a parameter of a registered configurable: the first trial's config
    is parsed and its model constructed (no weights), which refuses unknown names; a macro axis (`CHUNK_SIZE`) must be a macro that the config defines or reads (`%CHUNK_SIZE`):
    a misspelt macro would otherwise be set in every trial and read by none.

    Args:
        sweep: `Sweep`.

    Raises:
        SweepError: naming the axis and what the config holds instead.
    """
    import gin

    from tlbkit import gin_utils, plugins

    plugins.load_all(sweep.plugins)
    trial = make_trials(sweep)[0]
    gin.clear_config()
    try:
        try:
            gin_utils.parse(sweep.gin_files, sweep.params, sweep.gin_search_paths)
        except Exception as e:  # noqa: BLE001 -- the base config itself is the problem
            raise SweepError(f"the sweep's base config does not parse: {str(e).strip().splitlines()[0]}") from e
        text = gin.config_str()
        defined = set(re.findall(r"^([A-Z_][A-Z0-9_]*) = ", text, flags=re.M))
        for axis in sweep.axes:
            if "." not in axis.name and "/" not in axis.name:
                if axis.name not in defined and not re.search(rf"%{axis.name}\b", text):
                    raise SweepError(
                        f"sweep axis {axis.name!r} is a macro that the config neither defines nor reads; its macros: "
                        f"{', '.join(sorted(defined)) or '(none)'}.")
    finally:
        gin.clear_config()
    errors = _check_trial(sweep, trial, build_model=True)  # layers with **kwargs accept any name until built
    if errors:
        raise SweepError(f"sweep axes {', '.join(a.name for a in sweep.axes)}: {errors[trial.trial_id]}")


def _check_trial(sweep, trial, build_model):
    """`{trial_id: message}` when the trial's gin config does not parse (or its model not build)."""
    import gin

    from tlbkit import gin_utils

    gin.clear_config()
    try:
        gin_utils.parse(sweep.gin_files, sweep.params + trial.params() + [f"train.seed = {trial.seed}"],
                        sweep.gin_search_paths)
        if build_model:
            gin_utils.evaluate_binding("train.model")(num_classes=2)
    except Exception as e:  # noqa: BLE001 -- any failure is this trial's error
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return {trial.trial_id: f"{type(e).__name__}: {first}"}
    finally:
        gin.clear_config()
    return {}
