"""What a dataset plugin hands to the trainer, and where datasets find their files.

**The data folder.** Dataset bindings name files relative to the data folder (`path =
'cifar10-train-jpg.zip'`), which the binaries take from `--data_dir` or the environment variable
`TLBKIT_DATA_DIR` (TFDS's `data_dir` habit). `resolve_path` looks there first, then in the current
directory; an absolute path is taken as it is. TFDS datasets receive the same folder as their `data_dir`
unless their own binding sets one.

**The cache.** Archives are extracted once into `$TLBKIT_CACHE` (default `~/.cache/tlbkit`), and decoded
images and generated datasets are cached there too; deleting the folder only costs the time to redo it.
"""

import dataclasses
import hashlib
import os
import shutil
import tempfile
import zipfile
from typing import Any, Callable, Optional, Sequence

DATA_DIR_ENV = "TLBKIT_DATA_DIR"
CACHE_ENV = "TLBKIT_CACHE"


# === Where files are ===
def data_dir():
    """The data folder (`--data_dir` or `$TLBKIT_DATA_DIR`), or None when neither is set."""
    value = os.environ.get(DATA_DIR_ENV)
    return os.path.abspath(os.path.expanduser(value)) if value else None


def set_data_dir(path):
    """Sets the data folder for this process and the processes it starts (what `--data_dir` does)."""
    if path:
        os.environ[DATA_DIR_ENV] = os.path.abspath(os.path.expanduser(path))


def cache_root(*parts):
    """`$TLBKIT_CACHE` (default `~/.cache/tlbkit`), joined with `parts`."""
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tlbkit")
    return os.path.join(base, *parts)


def resolve_path(path, binding):
    """The existing file or folder that a dataset binding names.

    Args:
        path: str. Absolute, or relative to the data folder or the current directory.
        binding: str. The gin binding that holds `path` (named in the error).

    Returns:
        The absolute path.

    Raises:
        FileNotFoundError: naming the binding, the places searched and the fix.
    """
    path = os.path.expanduser(str(path))
    if os.path.isabs(path):
        candidates = [path]
    else:
        candidates = ([os.path.join(data_dir(), path)] if data_dir() else []) + [os.path.abspath(path)]
    for candidate in candidates:
        if os.path.exists(candidate):
            return candidate
    if os.path.isabs(path):
        where = "that absolute path does not exist"
    elif data_dir():
        where = f"searched the data folder {data_dir()} and the current directory {os.getcwd()}"
    else:
        where = f"searched the current directory {os.getcwd()}; no data folder is set"
    raise FileNotFoundError(
        f"{binding} = {path!r} not found ({where}). Pass --data_dir=FOLDER (or set ${DATA_DIR_ENV}) to the "
        f"folder that holds it, or bind {binding} to an absolute path."
    )


def extract_zip(zip_path, cache_dir=None):
    """Extracts `zip_path` once into a cache folder and returns that folder.

    The folder is named after the archive's path, size and modification time, so a changed archive is
    extracted again; extraction goes to a temporary folder that is renamed when complete, so an
    interrupted extraction is never mistaken for a finished one.

    Args:
        zip_path: str. The archive.
        cache_dir: str or None. Parent folder of the extraction. Defaults to `cache_root("extracted")`.
    """
    if not os.path.isfile(zip_path):
        raise FileNotFoundError(f"zip file not found: {zip_path}")
    stat = os.stat(zip_path)
    key = hashlib.sha1(f"{os.path.abspath(zip_path)}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:10]
    stem = os.path.splitext(os.path.basename(zip_path))[0]
    base = cache_dir or cache_root("extracted")
    target = os.path.join(base, f"{stem}-{key}")
    if os.path.isdir(target):
        return target
    os.makedirs(base, exist_ok=True)
    print(f"tlbkit: extracting {zip_path} to {target} (once)", flush=True)
    tmp = tempfile.mkdtemp(prefix=f".{stem}-", dir=base)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tmp)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(target):  # another process may have won the race
            raise
    return target


def folder_or_zip(path, binding, cache_dir=None):
    """A folder: `path` itself, or the extraction of `path` when it is a `.zip` (resolved as `resolve_path`)."""
    path = resolve_path(path, binding)
    if os.path.isfile(path) and path.lower().endswith(".zip"):
        return extract_zip(path, cache_dir)
    if not os.path.isdir(path):
        raise ValueError(f"{binding} = {path!r} is neither a folder nor a .zip file.")
    return path


# === DataSpec ===
@dataclasses.dataclass
class DataSpec:
    """The splits and metadata of a classification dataset.

    Each split is an *unbatched* `tf.data.Dataset` of `(inputs, label)` pairs (the trainer batches,
    shuffles and prefetches). `inputs` is whatever the task's tokenizer reads (an image, a byte string,
    a series...).

    A plugin whose data is expensive to read gives a `loader` instead of the data fields: a function
    returning a dict of them (`train`, `validation`, `test`, `class_names`, `num_classes`,
    `num_train_examples`, `padded_shapes`, `validation_note`, `batch_map`, `train_map`: a map that depends
    on the training data), called once, when `load()` is first asked for. So the dataset function itself stays cheap, and `tlbkit-predict` (or `tlbkit-eval
    --data=...`), which need only `read_inputs` / `read_source` and the maps, never touch the training
    data.

    Args:
        train: training split.
        validation: validation split (or None).
        test: test split (or None).
        num_classes: int. Number of labels (defaults to `len(class_names)`).
        class_names: optional list of label names, index = label id.
        train_map: optional function applied per example to the training split only (augmentation),
            after shuffling. One with an `example_seed` parameter gets a seed per example, for
            stateless random ops: a run then repeats to the bit (`tlbkit.pipeline.batched`).
        eval_map: optional function applied per example to the evaluation splits.
        batch_map: optional function applied to each *training batch* (e.g. MixUp/CutMix; may turn
            labels into (B, classes) soft targets).
        read_inputs: optional `read_inputs(paths) -> batch` used by `tlbkit-predict` to read user files
            into model inputs (before `eval_map`).
        parse_inputs: optional `parse_inputs(texts) -> batch`: model inputs from inputs given as text
            (command-line arguments, lines of standard input), for `tlbkit-predict`.
        read_source: optional `read_source(source, class_names, split) -> tf.data.Dataset` of
            `(inputs, label)` read from a user's labelled data (a folder, a zip, a file, `tfds:name:split`)
            with the labels numbered as in `class_names`; used by `tlbkit-eval --data`.
        padded_shapes: optional shapes for `padded_batch` (variable-length inputs).
        num_train_examples: optional int, for progress bars and schedules.
        validation_note: optional str saying where the validation split comes from (recorded in
            `metrics.json`), e.g. "20% of the training file, seeded".
        loader: optional zero-argument function returning the data fields (see above).
    """

    train: Any = None
    validation: Any = None
    test: Any = None
    num_classes: Optional[int] = None
    class_names: Optional[Sequence[str]] = None
    train_map: Optional[Callable] = None
    eval_map: Optional[Callable] = None
    batch_map: Optional[Callable] = None
    read_inputs: Optional[Callable] = None
    parse_inputs: Optional[Callable] = None
    read_source: Optional[Callable] = None
    padded_shapes: Any = None
    num_train_examples: Optional[int] = None
    validation_note: Optional[str] = None
    loader: Optional[Callable[[], dict]] = None

    LOADED_FIELDS = ("train", "validation", "test", "num_classes", "class_names", "num_train_examples",
                     "padded_shapes", "validation_note", "batch_map", "train_map")

    def __post_init__(self):
        if self.num_classes is None and self.class_names is not None:
            self.num_classes = len(self.class_names)
        self._loaded = None

    def load(self):
        """This spec with its data: the loader's fields filled in (loaded once), or the spec itself."""
        if self.loader is None:
            return self
        if self._loaded is None:
            fields = dict(self.loader())
            unknown = sorted(set(fields) - set(self.LOADED_FIELDS))
            if unknown:
                raise TypeError(f"a DataSpec loader returned unknown fields {unknown}; allowed: {self.LOADED_FIELDS}")
            self._loaded = dataclasses.replace(self, loader=None, **fields)
        return self._loaded

    def split(self, name):
        """The split `"train"`, `"validation"` (or `"val"`) or `"test"` (None when absent); loads the data."""
        spec = self.load()
        if name == "train":
            return spec.train
        if name in ("validation", "val"):
            return spec.validation
        if name == "test":
            return spec.test
        raise ValueError(f"Unknown split {name!r}; use one of: train, validation, test.")

    def with_test(self, dataset):
        """A copy whose test split is `dataset` and which loads nothing (for evaluation on other data)."""
        return dataclasses.replace(self, loader=None, train=None, validation=None, test=dataset)
