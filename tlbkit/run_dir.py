"""Everything a run writes into its --model_dir, written atomically, and the run directory's states."""

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile

RESUME_FILE = "resume.json"
CONFIG_FILE = "config.gin"
METRICS_FILE = "metrics.json"
CLASSES_FILE = "classes.json"
EXPORT_FILE = "export.json"  # marks an exported run (a preset): which checkpoint its model.keras is
LOCK_FILE = ".tlbkit.lock"  # held (flock) by the process working in a run or sweep folder; stays, empty

NEW, RESUME, FINISHED = "new", "resume", "finished"


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
    path = os.path.join(folder, LOCK_FILE)
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
    try:
        os.makedirs(model_dir, exist_ok=True)
        probe = os.path.join(model_dir, ".write-test")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        raise _unwritable(model_dir, "--model_dir", e) from e
    saved = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(saved):
        return NEW
    with open(saved) as f:
        same = f.read() == config_text
    if same:
        return FINISHED if os.path.exists(os.path.join(model_dir, METRICS_FILE)) else RESUME
    started = os.path.exists(os.path.join(model_dir, RESUME_FILE))
    if started and not overwrite:
        raise RunDirError(
            f"{model_dir} holds a run with a different gin config (compare {saved}). "
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
