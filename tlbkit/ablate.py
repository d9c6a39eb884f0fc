"""Gin-configured ablations: a grid of `tlbkit-train` runs, aggregated into a table and a plot.

A sweep is a base gin config (files and bindings) plus axes, each a gin binding
with a list of values; the trials are the product of the axes times the seeds.
Each trial runs `python -m tlbkit.bin.train` in its own subprocess (a crash or
a hang of one trial cannot stop the sweep) with its run directory in
`<root>/trials/<trial_id>/`, and the sweep writes:

- `<root>/results.csv`: one row per trial (bindings, seed, status, error,
  metrics from `metrics.json`);
- `<root>/results.md`: mean ± std over seeds per setting, best one in bold;
- `<root>/results.png`: the metric against each axis (mean, std error bars).

Rerunning the same sweep skips finished trials (`metrics.json`), resumes
interrupted ones (`tlbkit-train` resumes by itself) and retries failed ones.

A sweep file (`gin/ablations/*.sweep`) holds one statement per line; `#` starts
a comment and a list may continue over lines while a bracket is open:

    title = Carry the slow state across chunks?   # heading of results.md
    gin_file = recall_cpu.gin                     # repeatable, parsed in order
    gin_search_path = ../my_configs               # repeatable, relative to this file
    plugin = my_package.plugins                   # repeatable (--plugin)
    param train.epochs = 2                        # repeatable: a fixed gin binding
    sweep encoders.tlb.carry_state = [True, False]  # repeatable: one axis each
    seeds = 2                                     # a count (seeds 0..N-1) or a list [0, 7]
    metric = val_accuracy                         # key of metrics.json to compare

Sweep values are gin literals: numbers, strings (`'state'`), booleans, `None`,
macros (`%DIM`) and references (`@encoders.lstm()`).
"""

import concurrent.futures
import csv
import dataclasses
import io
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import tokenize

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # holds tlbkit/ and tasks/
REPO_GIN = os.path.join(PACKAGE_ROOT, "gin")
TRIAL_FILE = "trial.json"
ERROR_FILE = "error.txt"
FIRST_COLUMNS = ("val_accuracy", "test_accuracy", "val_loss", "test_loss", "params", "wall_time_s")


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
        path: str. The `.sweep` file. Its folder is added to the gin search path.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"sweep file {path!r} not found.")
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


def search_paths(sweep):
    return [p for p in list(sweep.gin_search_paths) + [os.getcwd(), REPO_GIN] if os.path.isdir(p)]


def check_sweep(sweep, build_model=True):
    """Parses every trial's gin config in this process (no training).

    Args:
        sweep: `Sweep`.
        build_model: bool. Also construct each trial's model (`train.model`),
            which validates the layers' arguments without building weights.

    Returns:
        dict `{trial_id: error message}` of the trials that do not parse (empty when all do).
    """
    import gin

    from tlbkit import plugins

    plugins.load_all(sweep.plugins)
    for path in search_paths(sweep):
        gin.add_config_file_search_path(path)
    import logging

    errors, root_logger = {}, logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.CRITICAL)  # gin logs every search-path miss as an error
    try:
        for trial in make_trials(sweep):
            errors.update(_check_trial(sweep, trial, build_model))
    finally:
        root_logger.setLevel(level)
    return errors


def _check_trial(sweep, trial, build_model):
    """`{trial_id: message}` when the trial's gin config does not parse (or its model not build)."""
    import gin

    gin.clear_config()
    try:
        gin.parse_config_files_and_bindings(sweep.gin_files, sweep.params + trial.params() + [f"train.seed = {trial.seed}"])
        if build_model:
            gin.get_bindings("train")["model"](num_classes=2)
    except Exception as e:  # noqa: BLE001 -- any failure is this trial's error
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return {trial.trial_id: f"{type(e).__name__}: {first}"}
    finally:
        gin.clear_config()
    return {}


# === Running ===


def _error_summary(stderr_text, returncode, timed_out, timeout):
    """(one-line message, last lines of stderr) of a failed trial."""
    lines = [l.rstrip() for l in stderr_text.splitlines() if l.strip()]
    tail = lines[-20:]
    useful = [l for l in tail if "error" in l.lower() and "--traceback for details" not in l]
    reason = f"timed out after {timeout:g} s" if timed_out else f"exit status {returncode}"
    line = (useful or lines or [""])[-1].strip()
    return (f"{reason}: {line}" if line else reason), tail


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


class _Children:
    """The trial subprocesses alive now, so that an interrupted sweep can end them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.procs = set()
        self.stopping = threading.Event()

    def add(self, proc):
        with self.lock:
            if self.stopping.is_set():
                proc.kill()
            self.procs.add(proc)

    def discard(self, proc):
        with self.lock:
            self.procs.discard(proc)

    def stop_all(self):
        with self.lock:
            self.stopping.set()
            procs = list(self.procs)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def trial_status(trial_dir, args):
    """`"ok"`, `"failed"`, `"pending"` or `"stale"` (it holds a run made with other flags)."""
    saved = _read_json(os.path.join(trial_dir, TRIAL_FILE))
    started = os.path.exists(os.path.join(trial_dir, "config.gin"))
    if started and saved is not None and saved.get("args") != args:
        return "stale"
    if os.path.exists(os.path.join(trial_dir, "metrics.json")):
        return "ok"
    if os.path.exists(os.path.join(trial_dir, ERROR_FILE)):
        return "failed"
    return "pending"


def run_trial(trial_dir, args, timeout=None, children=None, python=None):
    """Runs `python -m tlbkit.bin.train` for one trial; never raises for a failing trial.

    Args:
        trial_dir: str. The trial's run directory (`--model_dir`).
        args: list of str. Its `tlbkit.bin.train` flags (see `train_args`).
        timeout: float or None. Seconds before the trial is killed.
        children: `_Children` that tracks the subprocess, or None.
        python: str. Interpreter. Defaults to this one.

    Returns:
        `(status, error)`: `("ok", None)`, `("failed", one-line message)` (also
        written to `error.txt` with the last lines of stderr) or, when `children`
        was stopped, `("interrupted", ...)` (nothing written: a rerun resumes it).
    """
    os.makedirs(trial_dir, exist_ok=True)
    error_path = os.path.join(trial_dir, ERROR_FILE)
    if os.path.exists(error_path):
        os.remove(error_path)
    _write_json(os.path.join(trial_dir, TRIAL_FILE), {"args": args})
    cmd = [python or sys.executable, "-m", "tlbkit.bin.train", f"--model_dir={trial_dir}"] + list(args)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    timed_out = False
    with open(os.path.join(trial_dir, "stdout.txt"), "w") as out, open(os.path.join(trial_dir, "stderr.txt"), "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        if children is not None:
            children.add(proc)
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            returncode = proc.wait()
        finally:
            if children is not None:
                children.discard(proc)
    if returncode == 0 and os.path.exists(os.path.join(trial_dir, "metrics.json")):
        return "ok", None
    if children is not None and children.stopping.is_set():
        return "interrupted", "sweep interrupted"  # no error.txt: a rerun resumes it
    with open(os.path.join(trial_dir, "stderr.txt"), errors="replace") as f:
        message, tail = _error_summary(f.read(), returncode, timed_out, timeout)
    with open(error_path, "w") as f:
        f.write(message + "\n\nLast lines of stderr.txt:\n" + "\n".join(tail) + "\n")
    return "failed", message


def run_sweep(sweep, root, parallel=1, timeout=None, extra_flags=(), overwrite_stale=False, command=None, log=print):
    """Runs the trials of a sweep that are not finished, then writes the results.

    Finished trials (`metrics.json`) are skipped, interrupted ones resume,
    failed ones are retried. A trial whose directory was finished with other
    flags (the sweep changed) is reported as failed unless `overwrite_stale`.

    Args:
        sweep: `Sweep`.
        root: str. Sweep directory (`trials/`, `results.*`).
        parallel: int. Trials run at once.
        timeout: float or None. Seconds before a trial is killed.
        extra_flags: list of str. More `tlbkit.bin.train` flags for every trial.
        overwrite_stale: bool. Delete stale trial directories and rerun them.
        command: str or None. The command line, recorded in `results.md`.
        log: callable taking a line of progress.

    Returns:
        list of result rows (dicts), as written to `results.csv`.
    """
    if parallel < 1:
        raise ValueError(f"`parallel` must be >= 1. Received: parallel={parallel}")
    trials = make_trials(sweep)
    os.makedirs(os.path.join(root, "trials"), exist_ok=True)
    _write_json(os.path.join(root, "sweep.json"), {**dataclasses.asdict(sweep), "command": command})
    todo, errors = [], {}
    for trial in trials:
        args = train_args(sweep, trial, extra_flags)
        status = trial_status(os.path.join(root, "trials", trial.trial_id), args)
        if status == "ok":
            log(f"skip {trial.trial_id} (finished)")
        elif status == "stale" and not overwrite_stale:
            errors[trial.trial_id] = ("its directory holds a run with other flags (the sweep changed); "
                                      "use another --root, delete it or pass --overwrite_stale")
            log(f"stale {trial.trial_id}: {errors[trial.trial_id]}")
        else:
            if status == "stale":
                shutil.rmtree(os.path.join(root, "trials", trial.trial_id))
            todo.append((trial, args))
    log(f"{len(trials)} trials: {len(trials) - len(todo) - len(errors)} finished, {len(todo)} to run, "
        f"{parallel} at a time.")
    children = _Children()

    def one(job):
        trial, args = job
        if children.stopping.is_set():
            return trial, "interrupted", "sweep interrupted", 0.0
        start = time.time()
        status, error = run_trial(os.path.join(root, "trials", trial.trial_id), args, timeout, children)
        return trial, status, error, time.time() - start

    done = 0
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(one, job) for job in todo]
        try:
            for future in concurrent.futures.as_completed(futures):
                trial, status, error, seconds = future.result()
                done += 1
                if error:
                    errors[trial.trial_id] = error
                value = _read_json(os.path.join(root, "trials", trial.trial_id, "metrics.json"), {}).get(sweep.metric)
                detail = error if error else f"{sweep.metric}={value}"
                log(f"[{done}/{len(todo)}] {trial.trial_id}: {status} ({detail}) in {seconds:.0f} s")
        except BaseException:  # Ctrl-C, SIGTERM: end the running trials too (they resume on a rerun)
            children.stop_all()
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    rows = collect(sweep, root, errors)
    write_results(sweep, root, rows, command)
    return rows


# === Results ===


def _read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _write_json(path, obj):
    from tlbkit import run_dir

    run_dir.atomic_write_json(path, obj)


def collect(sweep, root, errors=None):
    """One row per trial from the trial directories.

    Args:
        sweep: `Sweep`.
        root: str. Sweep directory.
        errors: dict `{trial_id: message}` for trials that failed without `error.txt`.

    Returns:
        list of dicts: `trial_id`, one column per axis, `seed`, `status`
        (`ok`/`failed`/`pending`), `error`, then the metrics.
    """
    rows = []
    for trial in make_trials(sweep):
        trial_dir = os.path.join(root, "trials", trial.trial_id)
        row = {"trial_id": trial.trial_id, **dict(trial.bindings), "seed": trial.seed}
        metrics = _read_json(os.path.join(trial_dir, "metrics.json"))
        error = (errors or {}).get(trial.trial_id)
        if error is None and os.path.exists(os.path.join(trial_dir, ERROR_FILE)):
            with open(os.path.join(trial_dir, ERROR_FILE)) as f:
                error = f.readline().strip()
        if error is not None:
            row.update(status="failed", error=error)
        else:
            row.update(status="ok" if metrics is not None else "pending", error="")
            row.update(metrics or {})
        rows.append(row)
    return rows


def summarize(sweep, rows, metrics):
    """Mean and sample std over seeds of each metric for each setting, in grid order.

    Args:
        sweep: `Sweep`.
        rows: list of dicts from `collect`.
        metrics: list of str. Keys of `metrics.json` to average.

    Returns:
        list of dicts: `setting` (tuple of value texts), `n_ok`, `n`, `errors`
        (list of `(trial_id, message)`)
        and, per metric `m`, `m` (mean, None when no seed finished) and `m_std`
        (sample std, None below 2 finished seeds).
    """
    names = [a.name for a in sweep.axes]
    settings = {}
    for row in rows:
        settings.setdefault(tuple(row[n] for n in names), []).append(row)
    out = []
    for setting, group in settings.items():
        ok = [r for r in group if r["status"] == "ok"]
        entry = {"setting": setting, "n_ok": len(ok), "n": len(group), "errors": [(r["trial_id"], r["error"]) for r in group if r["error"]]}
        for m in metrics:
            values = [float(r[m]) for r in ok if isinstance(r.get(m), (int, float))]
            entry[m] = statistics.fmean(values) if values else None
            entry[m + "_std"] = statistics.stdev(values) if len(values) > 1 else None
        out.append(entry)
    return out


def reported_metrics(metric, rows):
    """`metric` first, then the usual columns present in `rows`."""
    keys = {k for r in rows for k in r}
    extra = [m for m in ("val_accuracy", "test_accuracy", "params", "wall_time_s") if m != metric and m in keys]
    return [metric] + extra


def lower_is_better(metric):
    return any(word in metric for word in ("loss", "error", "time", "params"))


def write_results(sweep, root, rows, command=None, metric=None):
    """Writes `results.csv`, `results.md` and `results.png` into `root`."""
    from tlbkit import run_dir

    metric = metric or sweep.metric
    fixed = ["trial_id"] + [a.name for a in sweep.axes] + ["seed", "status", "error"]
    metric_keys = sorted({k for r in rows for k in r} - set(fixed))
    metric_keys = [k for k in FIRST_COLUMNS if k in metric_keys] + [k for k in metric_keys if k not in FIRST_COLUMNS]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fixed + metric_keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    run_dir.atomic_write_text(os.path.join(root, "results.csv"), out.getvalue())
    metrics = reported_metrics(metric, rows)
    summary = summarize(sweep, rows, metrics)
    run_dir.atomic_write_text(os.path.join(root, "results.md"), markdown(sweep, summary, metrics, command))
    plot(sweep, summary, metric, os.path.join(root, "results.png"))


def _format(mean, std, metric):
    if mean is None:
        return "–"
    digits = 0 if metric == "params" else (1 if "time" in metric else 4)
    text = f"{mean:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if std is not None and metric not in ("params",) else "")


def markdown(sweep, summary, metrics, command=None):
    """The results table: mean ± std over seeds per setting, the best `metrics[0]` in bold."""
    metric = metrics[0]
    lower = lower_is_better(metric)
    means = [s[metric] for s in summary if s[metric] is not None]
    best = (min(means) if lower else max(means)) if means else None
    lines = [f"# {sweep.title}", ""]
    if command:
        lines += ["```", command, "```", ""]
    base = ", ".join(f"`{f}`" for f in sweep.gin_files) or "(none)"
    lines += [f"Gin files: {base}. Fixed bindings: " + (", ".join(f"`{p}`" for p in sweep.params) or "(none)") + ".",
              f"Seeds: {', '.join(map(str, sweep.seeds))}. Cells: mean ± sample std over the seeds that finished; "
              f"best `{metric}` ({'lower' if lower else 'higher'} is better) in bold.", ""]
    header = [f"`{a.name}`" for a in sweep.axes] + [f"`{m}`" for m in metrics] + ["seeds ok"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in summary:
        bold = best is not None and s[metric] == best
        cells = [f"`{v}`" for v in s["setting"]] + [_format(s[m], s[m + "_std"], m) for m in metrics]
        cells += [f"{s['n_ok']}/{s['n']}"]
        if bold:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    failures = [f"- `{trial_id}`: {error}" for s in summary for trial_id, error in s["errors"]]
    if failures:
        lines += ["", "Failed trials (see `trials/<id>/error.txt`):", ""] + failures
    return "\n".join(lines) + "\n"


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def plot(sweep, summary, metric, path):
    """`metric` against each axis: one subplot per axis, one line per setting of the other axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = sweep.axes or [Axis("(no axis)", ["()"])]
    fig, subplots = plt.subplots(1, len(axes), figsize=(4.5 * len(axes), 3.6), squeeze=False)
    for i, (ax, axis) in enumerate(zip(subplots[0], axes)):
        lines = {}
        for s in summary:
            others = tuple(v for j, v in enumerate(s["setting"]) if j != i)
            value = s["setting"][i] if sweep.axes else "()"
            lines.setdefault(others, {})[value] = (s[metric], s[metric + "_std"])
        positions = range(len(axis.values))
        for others, points in lines.items():
            ys = [points.get(v, (None, None))[0] for v in axis.values]
            errs = [points.get(v, (None, None))[1] or 0.0 for v in axis.values]
            ys = [math.nan if y is None else y for y in ys]
            if all(math.isnan(y) for y in ys):
                continue  # every trial of this line failed
            label = ", ".join(f"{a.name.split('.')[-1]}={v}" for a, v in zip([a for j, a in enumerate(sweep.axes) if j != i], others))
            style = "-" if all(_is_number(v) for v in axis.values) else ":"  # dotted: categorical axis
            ax.errorbar(positions, ys, yerr=errs, marker="o", linestyle=style, capsize=4, label=label or None)
        ax.set_xticks(list(positions), [v.removeprefix("@") for v in axis.values], rotation=15 if len(axis.values) > 3 else 0)
        ax.set_xlabel(axis.name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(sweep.title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.replace(tmp, path)
