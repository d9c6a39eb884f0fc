"""Finding a UCR/UEA set by name in the layouts users download.

A set `<Name>` is its `<Name>_TRAIN` and `<Name>_TEST` files (`.ts`, `.tsv` or `.arff`, tried in that order),
looked for in each search folder

- flat (`<folder>/<Name>_TRAIN.ts`) or in a `<Name>/` sub-folder;
- under the archives' own top folders: `UCRArchive_2018/` (the UCR 2018 download, `.tsv`),
  `Univariate_ts/`, `Multivariate_ts/`, `Univariate_arff/`, `Multivariate_arff/` (the UEA downloads);
- inside a `.zip`: the search folder itself may be a zip, or hold zips (`UCRArchive_2018.zip`); only the
  set's two files are extracted, once, into the cache (`$TLBKIT_CACHE/archives/`).

The search folders are `data_dir` when given, else the data folder (`--data_dir`), then the copies bundled
with the `aeon` package (found without importing aeon).
"""

import hashlib
import importlib.util
import os
import zipfile

ARCHIVE_FOLDERS = ("UCRArchive_2018", "Univariate_ts", "Multivariate_ts", "Univariate_arff", "Multivariate_arff")
SET_EXTENSIONS = (".ts", ".tsv", ".arff")


def aeon_data_dir():
    """aeon's bundled `datasets/data` folder, found without importing aeon (None if absent)."""
    spec = importlib.util.find_spec("aeon")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = os.path.join(location, "datasets", "data")
        if os.path.isdir(folder):
            return folder
    return None


def _candidates(name):
    """Relative paths (without the `_TRAIN<ext>` suffix) where a set may sit inside a search folder."""
    bases = [os.path.join(name, name), name]
    for top in ARCHIVE_FOLDERS:
        bases += [os.path.join(top, name, name), os.path.join(top, name)]
    return bases


def _in_folder(name, folder):
    for base in _candidates(name):
        for ext in SET_EXTENSIONS:
            train = os.path.join(folder, f"{base}_TRAIN{ext}")
            if os.path.exists(train):
                test = os.path.join(folder, f"{base}_TEST{ext}")
                return train, test if os.path.exists(test) else None
    return None


def _in_zip(name, zip_path):
    """The set's files extracted from `zip_path` (once, into the cache), or None when the zip lacks them."""
    from tlbkit import data

    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = {m.replace("\\", "/"): m for m in archive.namelist()}
            for ext in SET_EXTENSIONS:
                wanted = f"{name}_TRAIN{ext}".lower()
                train = sorted(m for m in members if m.lower().rsplit("/", 1)[-1] == wanted)
                if not train:
                    continue
                prefix = train[0][: -len(wanted)]
                test = next((m for m in members if m.lower() == f"{prefix}{name}_TEST{ext}".lower()), None)
                stat = os.stat(zip_path)
                key = f"{os.path.abspath(zip_path)}:{stat.st_size}:{int(stat.st_mtime)}"
                target = data.cache_root("archives", hashlib.sha1(key.encode()).hexdigest()[:10])
                paths = []
                for member in (train[0], test):
                    if member is None:
                        paths.append(None)
                        continue
                    path = os.path.join(target, member)
                    if not os.path.exists(path):
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        tmp = f"{path}.part{os.getpid()}"
                        with archive.open(members[member]) as src, open(tmp, "wb") as dst:
                            dst.write(src.read())
                        os.replace(tmp, path)
                    paths.append(path)
                return tuple(paths)
    except zipfile.BadZipFile:
        return None
    return None


def search_folders(data_dir=None):
    """Where `locate` looks: `data_dir`, else the data folder then aeon's bundled sets."""
    from tlbkit import data

    if data_dir:
        return [os.path.abspath(os.path.expanduser(data_dir))]
    folders = [p for p in [data.data_dir()] if p]
    if aeon_data_dir():
        folders.append(aeon_data_dir())
    return folders


def locate(name, data_dir=None):
    """`(train_path, test_path or None)` of the set `name` (see the module docstring).

    Raises:
        FileNotFoundError: naming the folders searched, the layouts understood and the fix.
    """
    folders = search_folders(data_dir)
    for folder in folders:
        if os.path.isfile(folder) and folder.lower().endswith(".zip"):
            found = _in_zip(name, folder)
        elif os.path.isdir(folder):
            found = _in_folder(name, folder)
            for zip_name in [] if found else sorted(os.listdir(folder)):
                if zip_name.lower().endswith(".zip"):
                    found = _in_zip(name, os.path.join(folder, zip_name))
                    if found:
                        break
        else:
            found = None
        if found:
            return found
    known = aeon_data_dir()
    listed = sorted(d for d in os.listdir(known) if os.path.isdir(os.path.join(known, d))) if known else []
    where = f"in {', '.join(folders)}" if folders else "(no data_dir given and the aeon package is not installed)"
    raise FileNotFoundError(
        f"no {name}_TRAIN.ts, .tsv or .arff {where} (looked flat, in {name}/, under "
        f"{'/, '.join(ARCHIVE_FOLDERS)}/ and inside .zip files). Pass --data_dir (or datasets.ucr.data_dir) as the "
        f"folder holding UCRArchive_2018/, that folder itself, or the archive's zip; or `pip install --no-deps aeon` "
        f"for its bundled sets" + (f": {', '.join(listed)}." if listed else ".")
    )
