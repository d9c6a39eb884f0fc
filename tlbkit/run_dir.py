"""The run directory (`RunDir`): every file a run writes into its --model_dir, written atomically, and its states."""

import contextlib
import csv
import io
import json
import os
import re
import shutil
import tempfile

RESUME_FILE = "resume.json"
CONFIG_FILE = "config.gin"
OPERATIVE_CONFIG_FILE = "operative_config.gin"
COMMAND_FILE = "command.txt"
METRICS_FILE = "metrics.json"
CLASSES_FILE = "classes.json"
PLUGINS_FILE = "plugins.json"  # {"plugins": [{"module", "distribution", "version"}]}, in runs and presets
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
CHECKPOINTS = ("last", "best")  # a run's two models, `<name>.keras`
CHECKPOINT_SUFFIX = ".keras"
TENSORBOARD_DIR = "tensorboard"
TENSORBOARD_CONFIG_DIR = "config"  # inside TENSORBOARD_DIR: the operative config as text
VIZ_DIR = "viz"
SCRATCH_DIR = ".worker-scratch"  # a non-chief worker's checkpoints (only the chief writes the run)
EXPORT_FILE = "export.json"  # marks an exported run (a preset): which checkpoint its model.keras is
MODEL_FILE = "model.keras"  # the one model of an exported run
CARD_FILE = "README.md"  # an exported run's model card
EXPORT_COPIES = (CONFIG_FILE, CLASSES_FILE, METRICS_FILE)  # what an export copies from its run
LOCK_FILE = ".tlbkit.lock"  # held (flock) by the process working in a run or sweep folder; stays, empty

NEW, RESUME, FINISHED = "new", "resume", "finished"


class RunDir:
    """A run directory (`--model_dir`): the path of every file a run writes there, and their readers and writers.

    Every module that reads or writes a run folder asks this class for the path; every writer is atomic
    (a temporary file beside the target, then a rename), so a kill never leaves a truncated file. Readers
    of a missing file return None (`read_resume`: `{}`, `read_plugins` and `read_commands`: `[]`).

    Layout of a run (`tlbkit-train`; docs/usage.md, "The run directory"):

        command.txt            at each start: the command line, one line per start
        config.gin             at the first start: the full parsed config (what reruns are compared with)
        classes.json           at start: {"class_names": [...]}, label id = position
        plugins.json           at start: the plugin packages of the model's classes
        operative_config.gin   after the first training step: every parameter used, defaults included
        last.keras             every epoch: model and optimizer state after the last finished epoch
        best.keras             when the monitored validation metric improves
        resume.json            every epoch: epochs done, history, best value and epoch, wall time so far
        history.csv            every epoch: one row per epoch
        curves.png             loss and accuracy curves: at most every 30 s, and at the end
        tensorboard/           during training: Keras' TensorBoard callback; config/ holds the operative config
        metrics.json           at the end: the final metrics (the run is finished once it exists)
        eval_*.json            by tlbkit-eval (`eval_path`)
        viz/                   by tlbkit-viz
        .tlbkit.lock           at each start: empty; the training process's flock (`locked`)
        .worker-scratch/       on a non-chief worker only: its own last.keras/best.keras

    An exported run (a preset, `tlbkit.presets.export`) holds `model.keras`, `README.md` (its model card),
    `export.json` (which checkpoint of which run), `plugins.json` and the run's `config.gin`,
    `classes.json` and `metrics.json`. A sweep (`tlbkit.ablate`) adds its own files to its trials' folders.

    Args:
        path: str or path-like. The folder (need not exist yet).

    Example:

    >>> run = RunDir("runs/recall")
    >>> run.checkpoint("best")
    'runs/recall/best.keras'
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def __fspath__(self):
        return self.path

    def __repr__(self):
        return f"RunDir({self.path!r})"

    def _file(self, name):
        return os.path.join(self.path, name)

    # === Paths ===
    @property
    def config_path(self):
        return self._file(CONFIG_FILE)

    @property
    def operative_config_path(self):
        return self._file(OPERATIVE_CONFIG_FILE)

    @property
    def command_path(self):
        return self._file(COMMAND_FILE)

    @property
    def classes_path(self):
        return self._file(CLASSES_FILE)

    @property
    def plugins_path(self):
        return self._file(PLUGINS_FILE)

    @property
    def resume_path(self):
        return self._file(RESUME_FILE)

    @property
    def metrics_path(self):
        return self._file(METRICS_FILE)

    @property
    def history_path(self):
        return self._file(HISTORY_FILE)

    @property
    def curves_path(self):
        return self._file(CURVES_FILE)

    @property
    def tensorboard_dir(self):
        return self._file(TENSORBOARD_DIR)

    @property
    def tensorboard_config_dir(self):
        return os.path.join(self.tensorboard_dir, TENSORBOARD_CONFIG_DIR)

    @property
    def viz_dir(self):
        return self._file(VIZ_DIR)

    @property
    def lock_path(self):
        return self._file(LOCK_FILE)

    @property
    def export_path(self):
        return self._file(EXPORT_FILE)

    @property
    def model_path(self):
        """The one model of an exported run (`model.keras`)."""
        return self._file(MODEL_FILE)

    @property
    def card_path(self):
        return self._file(CARD_FILE)

    def checkpoint(self, name="last"):
        """The `.keras` file of the run's `"last"` or `"best"` model."""
        if name not in CHECKPOINTS:
            raise ValueError(f"`checkpoint` must be one of {CHECKPOINTS}. Received: checkpoint={name!r}")
        return self._file(name + CHECKPOINT_SUFFIX)

    def scratch(self):
        """The `RunDir` where a non-chief worker keeps its checkpoints (it writes nothing else)."""
        return RunDir(self._file(SCRATCH_DIR))

    def eval_path(self, split, checkpoint, data=None, views=None):
        """`eval_[<data>_]<split>_<checkpoint>[_views-<views>].json`: where `tlbkit-eval` writes a result.

        Args:
            split: str. The scored split.
            checkpoint: str. `"last"` or `"best"`.
            data: str or None. The other labelled data scored (its base name goes into the file name).
            views: str or None. The test-time views.
        """
        name = f"{_slug(os.path.basename(os.path.normpath(data)))}_{split}" if data is not None else split
        suffix = f"_views-{_slug(views)}" if views is not None else ""
        return self._file(f"eval_{name}_{checkpoint}{suffix}.json")

    # === State ===
    @property
    def is_exported(self):
        """Whether the folder is an exported run (a preset): it holds `export.json`."""
        return os.path.isfile(self.export_path)

    @property
    def is_finished(self):
        """Whether the run wrote its final metrics."""
        return os.path.exists(self.metrics_path)

    # === Readers and writers ===
    def read_config(self):
        """The saved `config.gin` text, or None."""
        if not os.path.exists(self.config_path):
            return None
        with open(self.config_path) as f:
            return f.read()

    def write_config(self, text):
        atomic_write_text(self.config_path, text)

    def write_operative_config(self, text):
        atomic_write_text(self.operative_config_path, text)

    def append_command(self, line):
        """Adds one line (a start's command line) to `command.txt`."""
        append_text(self.command_path, line + "\n")

    def read_commands(self):
        """The non-empty lines of `command.txt` (one per start), or `[]`."""
        if not os.path.exists(self.command_path):
            return []
        with open(self.command_path) as f:
            return [line for line in f.read().splitlines() if line.strip()]

    def read_classes(self):
        """The class names (`classes.json`), or None."""
        saved = read_json(self.classes_path)
        return None if saved is None else list(saved["class_names"])

    def write_classes(self, names):
        atomic_write_json(self.classes_path, {"class_names": list(names)})

    def read_plugins(self):
        """The plugin packages recorded in `plugins.json`, or `[]`."""
        return list(read_json(self.plugins_path, default={}).get("plugins", []))

    def write_plugins(self, rows):
        atomic_write_json(self.plugins_path, {"plugins": rows})

    def read_resume(self):
        """`resume.json` (epochs done, history, ...), or `{}` for a run that finished no epoch."""
        return read_json(self.resume_path, default={})

    def write_resume(self, state):
        atomic_write_json(self.resume_path, state)

    def read_metrics(self):
        """The final metrics (`metrics.json`), or None for an unfinished run."""
        return read_json(self.metrics_path)

    def write_metrics(self, metrics):
        atomic_write_json(self.metrics_path, metrics)

    def write_history(self, rows, curves=True):
        """`history.csv` and (unless `curves` is False) `curves.png` from the per-epoch rows."""
        atomic_write_text(self.history_path, history_csv(rows))
        if curves:
            plot_curves(rows, self.curves_path)

    def save_checkpoint(self, model, name="last"):
        """Saves `model` (with its optimizer) as the run's `name` checkpoint; returns the path."""
        path = self.checkpoint(name)
        atomic_save_model(model, path)
        return path

    def read_export(self):
        """`export.json` of an exported run, or None."""
        return read_json(self.export_path)

    def write_export(self, info):
        atomic_write_json(self.export_path, info)

    def write_card(self, text):
        atomic_write_text(self.card_path, text)

    def copy_record_from(self, run):
        """Copies `EXPORT_COPIES` (config, classes, metrics) that `run` holds into this folder, atomically."""
        for name in EXPORT_COPIES:
            source = os.path.join(run.path, name)
            if os.path.exists(source):
                with open(source, "rb") as f:
                    atomic_write_bytes(self._file(name), f.read())


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "data"


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (unwritable, or holding another run)."""


def _unwritable(folder, flag, error):
    return RunDirError(f"{flag} {folder!r} is not writable: {error.strerror}. Choose another {flag}.")


@contextlib.contextmanager
def locked(folder, flag="--model_dir"):
    """Holds an exclusive lock on a run (or sweep) folder while the `with` block runs.

    Two processes writing one folder overwrite each other's checkpoints; with the lock the second one
    stops at once with a clear error instead. The lock is an advisory `flock` on the empty file
    `LOCK_FILE` in the folder (created if missing, never written, left in place), so the operating system
    releases it when its process ends, however it ends: there is no stale lock to clean up. Where `fcntl`
    does not exist (Windows) the folder is not locked.

    Args:
        folder: str. The folder (created if missing).
        flag: str. The flag that named it, for the error message.

    Raises:
        RunDirError: the folder is not writable, or another process holds its lock.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = RunDir(folder).lock_path
    try:
        os.makedirs(folder, exist_ok=True)
        handle = open(path, "a")
    except OSError as e:
        raise _unwritable(folder, flag, e) from e
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            raise RunDirError(
                f"{folder} is in use by another tlbkit process (it holds the lock {path}); two processes in one "
                f"folder would overwrite each other's files. Wait for that process to end or stop it, or choose "
                f"another {flag}.") from e
        yield
    finally:
        handle.close()  # closing releases the lock


def prepare(model_dir, config_text, overwrite=False):
    """Checks the run directory before a training run; returns `NEW`, `RESUME` or `FINISHED`.

    - No `config.gin`: a new run (the folder is created).
    - The same `config.gin`: `FINISHED` when `metrics.json` exists (nothing may be written then: a
      finished run stays byte-identical), else `RESUME`.
    - Another `config.gin`: refused unless `overwrite`; but a start that never finished an epoch
      (it failed before or during its first epoch: no `resume.json`) is replaced without asking.
    Replacing empties the folder (but for `LOCK_FILE`, which the caller may hold: `locked`).

    Raises:
        RunDirError: the folder is not writable, or holds another run and `overwrite` is False.
    """
    run = RunDir(model_dir)
    try:
        os.makedirs(model_dir, exist_ok=True)
        probe = os.path.join(model_dir, ".write-test")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        raise _unwritable(model_dir, "--model_dir", e) from e
    saved = run.read_config()
    if saved is None:
        return NEW
    if saved == config_text:
        return FINISHED if run.is_finished else RESUME
    started = os.path.exists(run.resume_path)
    if started and not overwrite:
        raise RunDirError(
            f"{model_dir} holds a run with a different gin config (compare {run.config_path}). "
            "Pass --overwrite to start afresh there, or choose a new --model_dir."
        )
    if not started:
        print(f"tlbkit: {model_dir} holds a start with another config that never finished an epoch; replacing it.")
    for entry in os.listdir(model_dir):
        if entry == LOCK_FILE:
            continue
        path = os.path.join(model_dir, entry)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    return NEW


@contextlib.contextmanager
def atomic_target(path, suffix):
    """Yields a temporary path beside `path`; on success renames it over `path`, else removes it."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(path, data):
    """Writes `data` to `path` through a temporary file and a rename: never a truncated file."""
    with atomic_target(path, os.path.basename(path)) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def atomic_save_model(model, path):
    """`saving.save_model` (the model, and its probe outputs) to a temporary `.keras` file, then rename over
    `path`."""
    from tlbkit import saving

    with atomic_target(path, ".keras") as tmp:
        saving.save_model(model, tmp)


def history_csv(rows):
    """CSV text of a list of per-epoch dicts (columns: epoch first, then sorted keys)."""
    keys = sorted({k for r in rows for k in r if k != "epoch"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["epoch"] + keys)
    writer.writeheader()
    for r in rows:
        writer.writerow(r)
    return out.getvalue()


def append_text(path, text):
    """Appends `text` to a small text file (read, extend, atomic rewrite)."""
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    atomic_write_text(path, old + text)


def read_json(path, default=None):
    """The JSON object in `path`; `default` when the file does not exist.

    Raises:
        ValueError: naming the file when it is not valid JSON.
    """
    if not os.path.exists(path):
        return default
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); delete or repair it.") from e


def plot_curves(rows, path):
    """Loss and accuracy curves (train and validation) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    metrics = [m for m in ("loss", "accuracy") if any(m in r for r in rows)]
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(5 * max(len(metrics), 1), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for key, label in ((metric, "train"), ("val_" + metric, "validation")):
            values = [r.get(key) for r in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
