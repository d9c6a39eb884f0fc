"""Everything a run writes into its --model_dir, written atomically."""

import contextlib
import csv
import io
import json
import os
import tempfile

RESUME_FILE = "resume.json"


@contextlib.contextmanager
def _atomic_target(path, suffix):
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
    with _atomic_target(path, os.path.basename(path)) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def atomic_save_model(model, path):
    """`model.save` to a temporary `.keras` file, then rename over `path`."""
    with _atomic_target(path, ".keras") as tmp:
        model.save(tmp)


def history_csv(rows):
    """CSV text of a list of per-epoch dicts (columns: epoch first, then sorted keys)."""
    keys = sorted({k for r in rows for k in r if k != "epoch"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["epoch"] + keys)
    writer.writeheader()
    for r in rows:
        writer.writerow(r)
    return out.getvalue()


def read_json(path, default=None):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


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
