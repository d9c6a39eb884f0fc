"""Reading a user's labelled data with a trained run's class names (`DataSpec.read_source`), any modality.

A source is a folder or zip whose class sub-folders carry the run's class names (found directly, under a
`<split>/` folder, or under one top folder), a file a plugin reads, or `tfds:NAME[:SPLIT]` for a TFDS
dataset whose label names are the run's.
"""

import os

from tlbkit import data

TFDS_PREFIX = "tfds:"


def class_index(class_names, found, where):
    """`{folder name: label id}` for the class folders `found`, which must all be among `class_names`."""
    index = {name: i for i, name in enumerate(class_names)}
    unknown = [name for name in found if name not in index]
    if unknown:
        raise ValueError(
            f"{where} has class folders {unknown[:5]} that are not among the run's classes {list(class_names)}: "
            "evaluate data whose class folders carry the run's class names."
        )
    return index


def _subfolders(folder):
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))


def labelled_root(source, class_names, split, flag):
    """The folder of `source` (a folder or zip) whose sub-folders are classes of the run.

    Looked for at the source itself, at `<split>/`, and the same under a single top folder.

    Raises:
        FileNotFoundError / ValueError: naming what was found instead.
    """
    root = data.folder_or_zip(source, flag)
    candidates = [root, os.path.join(root, split)]
    tops = _subfolders(root)
    if len(tops) == 1:
        candidates += [os.path.join(root, tops[0]), os.path.join(root, tops[0], split)]
    names = set(class_names)
    for folder in candidates:
        if os.path.isdir(folder):
            found = _subfolders(folder)
            if set(found) & names:
                class_index(class_names, found, folder)  # raises, naming folders that are not classes
                return folder
    raise ValueError(
        f"{source}: no folder of class sub-folders named like the run's classes {list(class_names)} "
        f"(looked in {', '.join(os.path.relpath(c, root) for c in candidates)} of {root})."
    )


def is_tfds(source):
    return str(source).startswith(TFDS_PREFIX)


def tfds_source(source, class_names, split="test"):
    """`(inputs, label)` of `tfds:NAME[:SPLIT]`, labels renumbered by name into the run's class order."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    parts = source[len(TFDS_PREFIX):].split(":", 1)
    name, tfds_split = parts[0], (parts[1] if len(parts) > 1 else split)
    ds, info = tfds.load(name, split=tfds_split, as_supervised=True, with_info=True, data_dir=data.data_dir())
    names = list(info.features[info.supervised_keys[1]].names)
    index = class_index(class_names, names, f"TFDS {name!r}")
    table = tf.constant([index[n] for n in names], tf.int32)
    return ds.map(lambda x, y: (x, tf.gather(table, tf.cast(y, tf.int32))))
