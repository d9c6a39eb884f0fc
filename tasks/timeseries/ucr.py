"""UCR/UEA classification sets as `DataSpec`s: from files by path (`datasets.ts_files`) or a set by name
(`datasets.ucr`). The pieces live beside it: `formats` (reading files), `archive` (finding a set by name),
`series_arrays` (missing values, padding), `augment` (training maps), `inputs` (predict/eval inputs)."""

import numpy as np

from tlbkit_tasks.timeseries.archive import locate
from tlbkit_tasks.timeseries.augment import (check_augment, check_strength, make_train_map, strength_from_data,
                                             warp_strength_from_data)
from tlbkit_tasks.timeseries.formats import read_labelled
from tlbkit_tasks.timeseries.inputs import series_readers
from tlbkit_tasks.timeseries.series_arrays import MISSING, class_names_of, label_ids, series_split, stack_series
from tlbkit import registry
from tlbkit.data import DataSpec


# === DataSpec ===
def stratified_holdout(labels, fraction, seed):
    """(train_index, validation_index): `fraction` of each class held out (at least one example of every
    class with two or more), in a seeded order."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) >= 2:
            held += list(members[: max(int(round(len(members) * fraction)), 1)])
    held = np.array(sorted(held), "int64")
    kept = np.setdiff1d(np.arange(len(labels)), held)
    return rng.permutation(kept), rng.permutation(held)


def series_spec(locate, missing="error", validation_fraction=0.2, seed=0, augment="none", augment_strength=1.0):
    """DataSpec from `.ts` files; see `datasets.ts_files`.

    Args:
        locate: function returning `(train_path, test_path, validation_path)` (None where absent), called
            when the data is needed.
    """
    check_augment(augment)
    augment_strength = check_strength(augment_strength)
    if missing not in MISSING:
        raise ValueError(f"`missing` must be one of {MISSING}. Received: missing={missing!r}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(
            f"`validation_fraction` must be in [0, 1). Received: validation_fraction={validation_fraction!r}"
        )

    def loader():
        train_path, test_path, validation_path = locate()
        if validation_path is not None and validation_fraction:
            raise ValueError("give either validation_path or validation_fraction, not both (set validation_fraction=0).")
        train = read_labelled(train_path)
        if not train.labels:
            raise ValueError(f"{train_path} has no class labels (@classLabel true expected).")
        names = class_names_of(train)
        channels = train.num_channels
        parts = {"train": (train, train_path)}
        for key, path in (("test", test_path), ("validation", validation_path)):
            if path is not None:
                parts[key] = (read_labelled(path), path)
                if parts[key][0].num_channels != channels:
                    raise ValueError(f"{path} has {parts[key][0].num_channels} channels, {train_path} has {channels}.")
        arrays = {}
        longest = max(len(x) for x in train.series)  # every batch is padded to it: the model's length
        for key, (ts, path) in parts.items():
            values, mask, lengths = stack_series(ts.series, missing, path, longest)
            arrays[key] = [values, mask, lengths, np.array(label_ids(ts, names, path), "int32")]
        note = f"the file {validation_path}" if validation_path else None
        if validation_fraction > 0:
            keep, held = stratified_holdout(arrays["train"][3], validation_fraction, seed)
            arrays["validation"] = [a[held] for a in arrays["train"]]
            arrays["train"] = [a[keep] for a in arrays["train"]]
            note = (f"{len(held)} of the {len(keep) + len(held)} training series held out "
                    f"(stratified, {validation_fraction:.0%} of each class, seed {seed}); the test file is not used "
                    "for any choice")
        splits = {k: series_split(*v) for k, v in arrays.items()}
        train_map = None
        if augment != "none":
            strength, warp_strength = augment_strength, None  # None: the warp follows the jitter's strength
            if strength == "auto":
                values, mask, _, labels = arrays["train"]
                strength, separation = strength_from_data(values, mask, labels, seed)
                print(f"tlbkit: augmentation ({augment}) at {strength:.3g} of full strength: the nearest series "
                      f"of another class is {separation:.3g} series standard deviations away (median over "
                      f"{train_path}).", flush=True)
                if augment == "warp_jitter_scale":
                    warp_strength, moved = warp_strength_from_data(values, mask, strength, separation, seed)
                    print(f"tlbkit: time warp at {warp_strength:.3g} of full strength: at {strength:.3g} it "
                          f"moves a series {moved:.3g} series standard deviations (median)"
                          + (", farther than the nearest other class." if warp_strength < strength else "."),
                          flush=True)
            train_map = make_train_map(augment, seed, strength=strength, warp_strength=warp_strength)
        return {"train_map": train_map,
                "train": splits["train"], "validation": splits.get("validation"), "test": splits.get("test"),
                "class_names": names, "num_train_examples": len(arrays["train"][3]), "validation_note": note,
                "padded_shapes": ({"values": [longest, channels], "mask": [longest]}, [])}

    read_inputs, parse_inputs, read_source = series_readers(locate, missing)
    return DataSpec(loader=loader, read_inputs=read_inputs, parse_inputs=parse_inputs, read_source=read_source)


@registry.DATASETS.register("ts_files")
def ts_files(train_path, test_path=None, validation_path=None, missing="error", validation_fraction=0.2, seed=0,
             augment="none", augment_strength=1.0):
    """A classification set from labelled series files: `.ts` (UCR/UEA, uni- or multivariate, any lengths),
    the UCR archive's `.tsv`, `.arff`, or `.csv` with a label column (`formats`; chosen by extension).

    Inputs are `{"values": (T, C) float32, "mask": (T,) bool}`; batches are padded to their longest
    series. Labels are mapped to ids in the order of the train file's `@classLabel` line (`class_names`
    keeps the strings). The validation split is `validation_path`, or (by default) a stratified, seeded
    `validation_fraction` of the training file; the test file is never used to choose anything. Paths
    are absolute or relative to the data folder (`--data_dir`).

    Inputs to `tlbkit-predict`: a CSV file per series (rows = steps, columns = channels), or the series
    as text (`1.0,2.5,...`; channels separated by `:`). `tlbkit-eval --data` reads a `.ts` file.

    Args:
        train_path: str. The training file (`*_TRAIN.ts`, `.tsv`, `.arff` or a `.csv`).
        test_path: str or None. The test file, in any of those formats.
        validation_path: str or None. A separate validation file (then `validation_fraction=0`).
        missing: str. `'?'` values: `"error"`, `"mask"`, `"interpolate"` or `"zero"` (see
            `handle_missing`). Defaults to `"error"`.
        validation_fraction: float. Share of each training class held out for validation (seeded);
            0 = no validation split. Defaults to `0.2`.
        seed: int. Seed of that hold-out and of the augmentation.
        augment: str. `"none"`, `"jitter_scale"`, `"slice_jitter_scale"` or `"warp_jitter_scale"` (see
            `make_train_map`).
            Defaults to `"none"`.
        augment_strength: float in [0, 1] or `"auto"`. Multiplies the jitter, scale and warp of `augment`.
            `"auto"`: full strength unless the training set's classes lie closer together than that
            perturbation (`augment.class_separation`, `augment.auto_strength`: fine-grained sets such as
            spectra), then weaker, so augmented series stay nearer their own class; a time warp is
            weakened further where it would move a series farther than the nearest series of another class
            (`augment.warp_strength_from_data`: spiky series). Defaults to `1.0`.
    """
    from tlbkit import data

    def locate():
        return tuple(None if p is None else data.resolve_path(p, f"datasets.ts_files.{key}")
                     for p, key in ((train_path, "train_path"), (test_path, "test_path"),
                                    (validation_path, "validation_path")))

    return series_spec(locate, missing, validation_fraction, seed, augment, augment_strength)


def locate_ts(name, data_dir=None):
    """(train_path, test_path) of the set `name`: `archive.locate` (kept under this name for callers)."""
    return locate(name, data_dir)


@registry.DATASETS.register("ucr")
def ucr(name, data_dir=None, missing="error", validation_fraction=0.2, seed=0, augment="none", augment_strength=1.0):
    """A UCR/UEA archive set by name, e.g. `"GunPoint"`, `"ItalyPowerDemand"`, `"BasicMotions"`.

    Looks for `<name>_TRAIN` / `<name>_TEST` (`.ts`, `.tsv` or `.arff`) in `data_dir` or, without it, in
    the data folder (`--data_dir`) and then in the copies bundled with the `aeon` package: flat, in
    `<name>/`, under the archives' own folders (`UCRArchive_2018/<name>/`, `Univariate_ts/<name>/`, ...)
    or inside a zip of the archive (`archive.locate`). See `datasets.ts_files` for inputs, labels and splits.

    Args:
        name: str. Archive name.
        data_dir: str or None. A folder (or zip) to search instead of the data folder and aeon's copies.
        missing, validation_fraction, seed, augment, augment_strength: as in `datasets.ts_files`.
    """
    if not name:
        raise ValueError("datasets.ucr needs the set's name, e.g. --gin_param=\"UCR_NAME = 'GunPoint'\" with ucr.gin "
                         f"(or bind datasets.ucr.name). Received: name={name!r}")
    return series_spec(lambda: locate_ts(name, data_dir) + (None,), missing, validation_fraction, seed, augment,
                       augment_strength)
