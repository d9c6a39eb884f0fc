"""Presets: trained models by name (keras-hub's `from_preset` habit), and any run exported as one.

A preset is an *exported run*, a folder holding what inference needs and nothing more:

- `model.keras`: the model, config and weights, no optimizer state;
- `config.gin`: the run's config (it names the dataset plugin, whose preprocessing predictions use);
- `classes.json`: the class names;
- `metrics.json`: the run's final metrics;
- `export.json`: which checkpoint of which run, exported when;
- `plugins.json`: the plugin packages the model's classes come from (module, distribution, version);
- `README.md`: the model card (command, data, seed, accuracy, wall time, input contract).

**Loading** (`load_model`, which `tlbkit.load_model` and every `from_preset` call): a preset by name or
folder, a run directory, or a `.keras` file, in any process. The modules that the saved model's classes
come from (recorded in its `.keras` config, and the packages in `plugins.json`) are imported first, so a
plugin's layers register themselves before Keras looks them up; a package that cannot be imported is an
error naming it and the version the preset was saved with.

Every binary that takes `--model_dir` of a trained run takes such a folder too, and `--preset=NAME`
finds one by name. Presets come from *sources*, each an entry point of the group `tlbkit.presets` naming a
package whose sub-folders are presets: tlbkit's own (source `tlbkit`, package data of
`tlbkit_tasks.presets`) and any plugin package's, declared the same way:

    [project.entry-points."tlbkit.presets"]
    bits = "bits_plugin.presets"

A preset is named as gin configs are (`tlbkit.gin_utils`):

- `source:name` (`tlbkit:cifar10_tlb`, `bits:cifar10_tlb`; the source is the entry point's name or its
  package's top-level module): that source's preset, and no other;
- a bare name: the one source that ships it. A name that two sources ship is an error naming both
  qualified names: no source silently replaces another's preset.

`--list_presets` shows each preset with its source.

`tlbkit-export --model_dir=RUN --output=FOLDER` (or `export()`) turns any run directory into a preset.
"""

import datetime
import importlib
import importlib.metadata
import json
import os
import re
import zipfile

from absl import logging

from tlbkit import run_dir as rd

ENTRY_POINT_GROUP = "tlbkit.presets"
BUILTIN_PACKAGE = "tlbkit_tasks.presets"
BUILTIN_SOURCE = "tlbkit"  # the entry-point name of tlbkit's own presets (pyproject.toml)
MODEL_FILE = rd.MODEL_FILE  # the file names of a preset folder: `tlbkit.run_dir.RunDir`
CARD_FILE = rd.CARD_FILE
PLUGINS_FILE = rd.PLUGINS_FILE
ENGINE_PACKAGES = ("keras", "tlbkit")  # what a model's classes may come from without being a plugin


class PresetError(ValueError):
    """An unknown preset, or a folder that is not one."""


def sources():
    """`[(source name, package)]` of every preset source: the entry points of the group `tlbkit.presets`,
    tlbkit's own (`tlbkit`) first. tlbkit's package counts as a source even when no entry point declares it
    (a checkout installed before `pyproject.toml` declared it, or one run from the source tree)."""
    declared = [(ep.name, ep.value.split(":")[0].strip())
                for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]
    if not any(package == BUILTIN_PACKAGE for _, package in declared):
        declared.append((BUILTIN_SOURCE, BUILTIN_PACKAGE))
    return sorted(declared, key=lambda row: row[1] != BUILTIN_PACKAGE)  # stable: plugins in discovery order


def qualified(source, name):
    """The name that selects `source`'s preset `name` alone: `source:name`."""
    return f"{source}:{name}"


def entries():
    """`[(source name, preset name, folder)]` of every installed preset, each source's package folder once."""
    from tlbkit import gin_utils

    found, seen = [], set()
    for source, package in sources():
        base = gin_utils.package_folder(package)
        if base is None:
            if package != BUILTIN_PACKAGE:
                logging.warning("%s entry point %r names %r, which is not an installed package folder; skipped.",
                                ENTRY_POINT_GROUP, source, package)
            continue
        if os.path.realpath(base) in seen:
            continue
        seen.add(os.path.realpath(base))
        for name in sorted(os.listdir(base)):
            folder = os.path.join(base, name)
            if rd.RunDir(folder).is_exported:
                found.append((source, name, folder))
    return found


def folders():
    """`{name: folder}` of every installed preset. A name that one source ships is listed bare; a name that
    several ship only qualified (`tlbkit:cifar10_tlb`, `bits:cifar10_tlb`), the only names that select one."""
    return {name: folder for name, (_, folder) in _listed().items()}


def _listed():
    """`{listed name: (source name, folder)}`: bare names where unambiguous, else qualified names."""
    rows = entries()
    counts = {}
    for _, name, _ in rows:
        counts[name] = counts.get(name, 0) + 1
    return {(name if counts[name] == 1 else qualified(source, name)): (source, folder) for source, name, folder in rows}


def available():
    """`{name: (source name, one-line summary)}` of every installed preset, named as `folders` names them (the
    summary is the card's first paragraph)."""
    return {name: (source, card_summary(folder)) for name, (source, folder) in _listed().items()}


def card_summary(folder):
    path = rd.RunDir(folder).card_path
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    return lines[0] if lines else ""


def _split_qualified(name):
    """`(source name, package, preset name)` for `source:name` whose source is a preset source (by its entry
    point's name or its package's top-level module), else None."""
    source, sep, rest = str(name).partition(":")
    if not sep or not rest:
        return None
    for source_name, package in sources():
        if source in (source_name, package.split(".")[0]):
            return source_name, package, rest
    return None


def resolve(name_or_path):
    """The folder of a preset given by qualified name (`tlbkit:cifar10_tlb`) or name, or of an exported run
    given by path (see the module docstring).

    Args:
        name_or_path: str. `source:name`, a preset name, or an exported run's folder.

    Raises:
        PresetError: an unknown name (listing the installed presets), a bare name that several sources ship
            (naming the qualified names to choose from), or a folder that is not an exported run.
    """
    path = os.path.expanduser(str(name_or_path))
    if os.path.isdir(path):
        if not rd.RunDir(path).is_exported:
            raise PresetError(f"{path} is not an exported run (no {rd.EXPORT_FILE}); export it with tlbkit-export.")
        return path
    rows = entries()
    split = _split_qualified(name_or_path)
    if split is not None:
        source, package, name = split
        for row_source, row_name, folder in rows:
            if row_source == source and row_name == name:
                return folder
        theirs = [row_name for row_source, row_name, _ in rows if row_source == source]
        raise PresetError(f"unknown preset {name_or_path!r}: the source {source!r} ({package}) ships no preset "
                          f"{name!r}. Its presets: {', '.join(theirs) or '(none)'}.")
    found = [(source, folder) for source, name, folder in rows if name == name_or_path]
    if len(found) == 1:
        return found[0][1]
    if len(found) > 1:
        from tlbkit import gin_utils

        raise PresetError(gin_utils.ambiguous("preset", name_or_path, found, qualified))
    raise PresetError(f"unknown preset {name_or_path!r}. Installed presets: {', '.join(folders()) or '(none)'}.")


def locate(name_or_path, checkpoint="last"):
    """`(folder, model file)` of a preset name, an exported run's folder, a run directory (its `checkpoint`)
    or a `.keras` file.

    Raises:
        PresetError: for a name that no installed preset has, or a folder holding no model.
    """
    from tlbkit import evaluate

    path = os.path.expanduser(str(name_or_path))
    if os.path.isfile(path) and path.endswith(".keras"):
        return os.path.dirname(os.path.abspath(path)), path
    if os.path.isdir(path) and not rd.RunDir(path).is_exported:
        try:
            return path, evaluate.checkpoint_path(path, checkpoint)
        except FileNotFoundError as e:
            raise PresetError(f"{path} holds no model to load: {e}") from e
    folder = resolve(name_or_path)  # an exported run holds one model, whichever checkpoint it was
    return folder, rd.RunDir(folder).model_path


# === Plugin packages ===
def archive_config(path):
    """The model config (`config.json`) of a `.keras` archive, as a dict."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def model_modules(config):
    """Sorted modules that the serialized objects of a Keras config come from (Keras' own left out)."""
    found = set()

    def visit(node):
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and "class_name" in node and module.split(".")[0] not in ("keras", "builtins"):
                found.add(module)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(config)
    return sorted(found)


def plugin_requirements(modules):
    """`[{"module", "distribution", "version"}]`: the installed packages that `modules` come from, tlbkit's
    engine and Keras left out (what `plugins.json` records). `distribution`/`version` are None for a module
    that no installed distribution provides (e.g. a folder on PYTHONPATH)."""
    owners = importlib.metadata.packages_distributions()
    rows = {}
    for module in modules:
        top = module.split(".")[0]
        if top in ENGINE_PACKAGES or top in rows or top == "__main__":
            continue
        distribution = (owners.get(top) or [None])[0]
        version = None
        if distribution is not None:
            try:
                version = importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                distribution = None
        rows[top] = {"module": top, "distribution": distribution, "version": version}
    return list(rows.values())


def model_plugins(model):
    """`plugin_requirements` of a model object: the packages of every layer's class (recorded at export)."""
    modules = {type(model).__module__} | {type(layer).__module__ for layer in model._flatten_layers()}
    return plugin_requirements(sorted(modules))


def record_plugins(folder, model):
    """Writes `plugins.json` into a run or preset folder: the plugin packages of `model`'s classes."""
    rd.RunDir(folder).write_plugins(model_plugins(model))


def recorded_plugins(folder):
    """The plugin packages a preset or run folder records (`plugins.json`), or `[]`."""
    return rd.RunDir(folder).read_plugins()


def import_plugins(model_path, recorded=(), what=None):
    """Imports every module that the saved model's classes come from, and the recorded plugin packages.

    Importing a plugin module registers its classes with Keras (and its plugins with gin), which loading
    a model saved with them needs in a fresh process.

    Args:
        model_path: str. The `.keras` file about to be loaded.
        recorded: list of `{"module", "distribution", "version"}` (a folder's `plugins.json`).
        what: str. How errors name the model (e.g. `"preset 'cifar10_tlb'"`).

    Raises:
        PresetError: naming the package that cannot be imported, its distribution and the version the
            model was saved with, and the `pip install` that fixes it.
    """
    what = what or repr(model_path)
    by_top = {row["module"]: row for row in recorded}
    for module in list(by_top) + model_modules(archive_config(model_path)):
        top = module.split(".")[0]
        if top == "__main__":
            continue
        try:
            importlib.import_module(module)
        except ImportError as e:
            row = by_top.get(top, {})
            distribution, version = row.get("distribution"), row.get("version")
            if distribution:
                needs = f"{distribution} {version}" if version else distribution
                fix = f"install it (pip install '{distribution}=={version}')" if version else f"install {distribution}"
            else:
                needs, fix = "a package not recorded", f"install the package that provides {top!r}"
            raise PresetError(f"{what} needs the plugin module {module!r} (saved with {needs}), which cannot be "
                              f"imported: {e}. {fix[0].upper() + fix[1:]}, or put it on PYTHONPATH.") from e
    for row in recorded:
        if row.get("distribution") and row.get("version"):
            try:
                installed = importlib.metadata.version(row["distribution"])
            except importlib.metadata.PackageNotFoundError:
                continue
            if installed != row["version"]:
                logging.warning("%s was saved with %s %s; %s is installed.", what, row["distribution"],
                                row["version"], installed)


# === Loading ===
def accepts(expected, model):
    """Whether `expected.from_preset` returns `model`: it is an `expected`, or an ensemble (an object with
    `members`) whose members all are (an ensemble of classifiers is a classifier)."""
    if isinstance(model, expected):
        return True
    members = getattr(model, "members", None)
    return bool(members) and all(isinstance(m, expected) for m in members)


def load_model(name_or_path, expected=None, num_classes=None, class_names=None, checkpoint="last"):
    """The Keras model that a preset or run holds, whatever its class, loaded in any process.

    The folder's plugin packages are imported first (`import_plugins`); the load is checked (every saved
    weight restored); a model saved without class names gets the folder's `classes.json`.

    Args:
        name_or_path: str. An installed preset's name (or qualified name, `tlbkit:cifar10_tlb`), an
            exported run's folder, a run directory or a `.keras` file.
        expected: optional class. A `TypeError` unless the model is one, or an ensemble of them
            (`accepts`): what `SequenceClassifier.from_preset` and `Ensemble.from_preset` check.
        num_classes: int or None. Given, the classifier gets a new head with this many classes (`new_head`).
        class_names: list of str or None. The new head's class names (implies `num_classes`).
        checkpoint: str. `"last"` or `"best"` (a run directory; an exported run holds one of them).

    Returns:
        A `keras.Model` (`SequenceClassifier`, `Ensemble`, or a plugin's model class).

    Raises:
        PresetError: unknown preset, a folder without a model, or a plugin package that cannot be imported.
        TypeError: the model is not an `expected`.
    """
    from tlbkit import saving

    folder, path = locate(name_or_path, checkpoint)
    what = f"preset {name_or_path!r}" if rd.RunDir(folder).is_exported else repr(str(name_or_path))
    import_plugins(path, recorded_plugins(folder), what)
    model = saving.load_model(path)
    if expected is not None and not accepts(expected, model):
        kind = type(model).__name__
        if getattr(model, "members", None):
            kind += " of " + ", ".join(sorted({type(m).__name__ for m in model.members}))
        raise TypeError(f"{what} holds a {kind}, not a {expected.__name__}: load it with "
                        f"tlbkit.load_model({str(name_or_path)!r}), which returns any model.")
    if getattr(model, "class_names", "absent") is None:
        saved = rd.RunDir(folder).read_classes()
        if saved is not None and len(saved) == getattr(model, "num_classes", None):
            model.class_names = saved
    if num_classes is not None or class_names is not None:
        model = new_head(model, num_classes, class_names)
    return model


def new_head(model, num_classes=None, class_names=None):
    """`model` with a new, freshly initialised classification head (each member's, for an ensemble); the
    tokenizer, encoder and test-time views are the same objects, trained weights included.

    Args:
        model: `SequenceClassifier` or `Ensemble` of them.
        num_classes: int or None. The new class count; None: `len(class_names)`.
        class_names: list of str or None. The new classes' names.

    Raises:
        ValueError: neither given, or `class_names` of another length than `num_classes`.
        TypeError: a model without a head to replace.
    """
    from tlbkit.models import Ensemble, SequenceClassifier
    from tlbkit.models.sequence_classifier import mark_built_from_parts

    if num_classes is None:
        if class_names is None:
            raise ValueError("new_head needs `num_classes` or `class_names`. Received: neither.")
        num_classes = len(class_names)
    if isinstance(model, Ensemble):
        members = [new_head(m, num_classes) for m in model.members]
        return Ensemble(members, class_names=class_names, name=model.name)
    if not isinstance(model, SequenceClassifier):
        raise TypeError(f"a new head needs a SequenceClassifier or an Ensemble of them; got a {type(model).__name__}.")
    config = model.head.get_config()
    if "num_classes" not in config:
        raise TypeError(f"the head {type(model.head).__name__} has no `num_classes` in its config to change.")
    config["num_classes"] = num_classes
    head = type(model.head).from_config(config)
    build = model.head.get_build_config()
    if build:
        head.build_from_config(build)
    net = SequenceClassifier(encoder=model.encoder, head=head, tokenizer=model.tokenizer,
                             test_time_views=model.test_time_views, class_names=class_names, name=model.name)
    mark_built_from_parts(net, net._parts())
    return net


# === Fine-tuning ===
def _part_pairs(net, trained, source):
    """`[(label, part of net, part of trained, is_head)]`: the parts whose weights `initialize_from` copies."""
    from tlbkit.models import Ensemble, SequenceClassifier

    if isinstance(net, Ensemble) and isinstance(trained, Ensemble):
        if net.size != trained.size:
            raise ValueError(f"train.init_from={source!r} holds an ensemble of {trained.size} members; the config builds "
                             f"{net.size}: set models.ensemble.size = {trained.size}.")
        return [(f"member {i} {label}", a, b, head) for i, (m, t) in enumerate(zip(net.members, trained.members))
                for label, a, b, head in _part_pairs(m, t, source)]
    if not (isinstance(net, SequenceClassifier) and isinstance(trained, SequenceClassifier)):
        raise ValueError(f"train.init_from={source!r} holds a {type(trained).__name__} and the config builds a "
                         f"{type(net).__name__}: fine-tuning needs both SequenceClassifiers or both Ensembles (train "
                         "with the preset's config.gin as the first --gin_file).")
    if (net.tokenizer is None) != (trained.tokenizer is None):
        raise ValueError(f"train.init_from={source!r}: one model has a tokenizer and the other none; train with the "
                         "preset's config.gin as the first --gin_file.")
    pairs = [("tokenizer", net.tokenizer, trained.tokenizer, False)] if net.tokenizer is not None else []
    return pairs + [("encoder", net.encoder, trained.encoder, False), ("head", net.head, trained.head, True)]


def initialize_from(net, source, checkpoint="last"):
    """Starts a built model from a trained one's weights (`train.init_from`, `tlbkit-train --init_from`).

    Tokenizer and encoder weights (data statistics, BatchNorm moving averages included) are copied; the head
    too when it has the trained head's shapes and the same class names (or either has none); otherwise
    `net` keeps its new, randomly initialised head: fine-tuning on other classes.

    Args:
        net: a built `SequenceClassifier` or `Ensemble`, of the trained model's design.
        source: str. A preset name or folder, or a run directory.
        checkpoint: str. The run's `"last"` or `"best"` model.

    Returns:
        list of str: the parts given a new head (empty when every part was copied).

    Raises:
        ValueError: when a tokenizer or encoder differs from the trained one, naming it and the first
            weight that differs.
    """
    trained = load_model(source, checkpoint=checkpoint)
    new_names, old_names = getattr(net, "class_names", None), getattr(trained, "class_names", None)
    same_classes = new_names is None or old_names is None or tuple(new_names) == tuple(old_names)
    fresh = []
    for label, part, source_part, is_head in _part_pairs(net, trained, source):
        shapes = [tuple(w.shape) for w in part.weights]
        source_shapes = [tuple(w.shape) for w in source_part.weights]
        if is_head and (shapes != source_shapes or not same_classes):
            fresh.append(label)
            continue
        if type(part) is not type(source_part) or shapes != source_shapes:
            i = next((i for i, (a, b) in enumerate(zip(shapes, source_shapes)) if a != b), min(len(shapes), len(source_shapes)))
            mine = f"{part.weights[i].path} {shapes[i]}" if i < len(shapes) else "nothing"
            theirs = f"{source_part.weights[i].path} {source_shapes[i]}" if i < len(source_shapes) else "nothing"
            raise ValueError(f"train.init_from={source!r}: the {label} the config builds ({type(part).__name__}, "
                             f"{len(shapes)} weights) is not the trained one ({type(source_part).__name__}, "
                             f"{len(source_shapes)} weights); first difference: {mine} vs {theirs}. Train with the "
                             "preset's config.gin as the first --gin_file and change only the data.")
        part.set_weights(source_part.get_weights())
    count, trained_count = getattr(net, "num_classes", "?"), getattr(trained, "num_classes", "?")
    why = f"the trained one has {trained_count}" if count != trained_count else "the trained one's have other names"
    head = f"a new head for {count} classes ({why})" if fresh else "its head too"
    print(f"tlbkit: initialised from {source}: tokenizer and encoder weights, {head}.", flush=True)
    return fresh


def export(model_dir, output_dir, checkpoint="last", notes=None):
    """Writes a run's model as a preset folder (see the module docstring); returns `output_dir`.

    Args:
        model_dir: str. A run directory written by `tlbkit-train` (finished or not).
        output_dir: str. The preset folder to write; it must not exist or be empty.
        checkpoint: str. `"last"` or `"best"`.
        notes: str or None. Extra text for the model card (e.g. the machine it trained on).
    """
    from tlbkit import evaluate, saving

    run, preset = rd.RunDir(model_dir), rd.RunDir(output_dir)
    source = evaluate.checkpoint_path(model_dir, checkpoint)
    for required in (run.config_path, run.classes_path):
        if not os.path.exists(required):
            raise PresetError(f"{model_dir} holds no {os.path.basename(required)}: is it a run directory written by "
                              "tlbkit-train?")
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        raise PresetError(f"{output_dir} exists and is not empty: choose a new --output folder.")
    os.makedirs(output_dir, exist_ok=True)
    import_plugins(source, recorded_plugins(model_dir), repr(model_dir))
    model = saving.load_model(source)
    classes = run.read_classes()
    if getattr(model, "class_names", "absent") is None:  # a run trained before models kept their class names
        model.class_names = classes
    saving.save_for_inference(model, preset.model_path)
    record_plugins(output_dir, model)
    preset.copy_record_from(run)
    metrics = run.read_metrics() or {}
    resume = run.read_resume()
    info = {
        "checkpoint": checkpoint,
        "epoch": (metrics.get("best", {}).get("epoch") if checkpoint == "best" else None) or resume.get("epochs_done"),
        "source": os.path.basename(os.path.normpath(model_dir)),  # the run's name; no path of this machine
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "params": int(model.count_params()),
        "model": describe_model(model),
        "class": type(model).__name__,
    }
    preset.write_export(info)
    card = model_card(model_dir, output_dir, info, metrics, notes, inputs=input_contract(model))
    preset.write_card(card)
    return output_dir


def input_contract(model):
    """One paragraph for the model card: what the model takes (its tokenizer's input contract)."""
    member = (getattr(model, "members", None) or [model])[0]
    tokenizer = getattr(member, "tokenizer", None)
    module = type(tokenizer).__module__ if tokenizer is not None else ""
    if tokenizer is not None and hasattr(tokenizer, "image_size") and hasattr(tokenizer, "input_scale"):
        size = tokenizer.image_size
        return (f"Images of {size}x{size} RGB pixels, (N, {size}, {size}, 3), with values 0-255: uint8, or floats "
                f"as `keras.utils.img_to_array(keras.utils.load_img(path, target_size=({size}, {size})))` gives. "
                f"The model scales them itself (its tokenizer's `input_scale` = 1/{round(1 / tokenizer.input_scale)}): "
                "do not divide by 255 first. `tlbkit-predict` reads image files of any size (resized).")
    if ".text." in module:
        return ("Strings: a list of str (or a NumPy array of UTF-8 bytes), one text per example; "
                "`tlbkit-predict` also reads text files, one example per file.")
    if ".timeseries." in module:
        return ("Series as arrays: (N, T) or (N, T, channels) floats, or `{\"values\": ..., \"mask\": ...}` "
                "for series of several lengths; the model normalises them itself. `tlbkit-predict` reads CSV "
                "files (one row or column of numbers, or rows = time steps).")
    return "What the run's dataset plugin gives the model (docs/usage.md, tlbkit-predict)."


def describe_model(model):
    """What a model card calls the model: `TLB classifier`, `Transformer classifier`, `ensemble of 3 TLB
    classifiers`."""
    members = list(getattr(model, "members", []))
    if members:
        kinds = sorted({describe_model(m) for m in members})
        return f"ensemble of {len(members)} {kinds[0]}s" if len(kinds) == 1 else f"ensemble of {len(members)} models"
    encoder = type(getattr(model, "encoder", None)).__name__
    kind = {"TLBEncoder": "TLB", "TransformerEncoder": "Transformer", "LSTMEncoder": "LSTM"}.get(encoder, encoder)
    return f"{kind} classifier" if hasattr(model, "encoder") else type(model).__name__


def public_command(command):
    """A recorded command as a model card shows it: no folder of the machine it ran on. The data folder
    becomes `DATA`, and any other absolute path (a `--model_dir`, a gin file) its last component."""
    command = re.sub(r"--data_dir=\S+", "--data_dir=DATA", command)
    return re.sub(r"(?<==)(\s*['\"]?)(/[^\s'\"]*)",
                  lambda m: m.group(1) + os.path.basename(m.group(2).rstrip("/")), command)


def model_card(model_dir, output_dir, info, metrics, notes=None, inputs=None):
    """The README.md of a preset: what it is, how it was trained, how well it does, how to use it.

    Args:
        model_dir: str. The exported run.
        output_dir: str. The preset folder (its name is the preset's).
        info: dict. What `export.json` holds.
        metrics: dict. The run's `metrics.json`.
        notes: str or None. Extra text.
        inputs: str or None. The input contract (`input_contract`).
    """
    name = os.path.basename(os.path.normpath(output_dir))
    scores = metrics.get("best", metrics) if info["checkpoint"] == "best" else metrics
    run = rd.RunDir(model_dir)
    classes = run.read_classes()
    if os.path.exists(run.command_path):  # one line per start of the run; a resume repeats the command
        lines = [public_command(line) for line in run.read_commands()]
        commands = "\n".join(dict.fromkeys(lines))
        if len(lines) > 1:
            commands += f"\n# started {len(lines)} times: {len(lines) - 1} resume(s) from the last checkpoint"
    else:
        commands = "(not recorded)"
    config = run.read_config()
    dataset = next((line.split("=", 1)[1].strip() for line in config.splitlines() if line.startswith("DATASET")), "?")
    seed = next((line.split("=", 1)[1].strip() for line in config.splitlines() if line.startswith("train.seed")), "0")

    def pct(key):
        return f"{100 * scores[key]:.2f} %" if isinstance(scores.get(key), (int, float)) else "–"

    validated = "val_accuracy" in scores
    rows = [
        ("checkpoint", f"{info['checkpoint']} (epoch {info['epoch']} of {metrics.get('epochs_completed', '?')})"),
        ("validation accuracy", (pct("val_accuracy") + f" ({scores['val_examples']} examples)") if validated
         else "– (no validation split)"),
        ("test accuracy", pct("test_accuracy") + (f" ({scores['test_examples']} examples)" if "test_examples" in scores else "")),
        ("validation data", metrics.get("validation_data", "the dataset's validation split" if validated else "none")),
        ("parameters", f"{info['params']:,}"),
        ("training wall time", f"{metrics['wall_time_s']:.0f} s" if "wall_time_s" in metrics else "–"),
        ("dataset", f"`{dataset}`"),
        ("seed", seed),
        ("classes", ", ".join(classes)),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    scored = ([f"{pct('val_accuracy')} validation accuracy"] if validated else []) + (
        [f"{pct('test_accuracy')} test accuracy"] if "test_accuracy" in scores else [])
    model = info.get("model", "TLB classifier")
    summary = f"{model[0].upper() + model[1:]} ({len(classes)} classes): {', '.join(scored) or 'not scored'}."
    cls = info.get("class", "SequenceClassifier")
    return f"""# {name}

{summary}

| | |
|---|---|
{table}

{notes.strip() + chr(10) + chr(10) if notes else ''}## Trained with

```
{commands}
```

(`config.gin` here is the run's full config; `DATA` stands for the folder the data files were read from.)

## Use

`path/to/{name}` is this folder; once a package ships it (docs/plugins.md), its name `{name}` does too.

```
tlbkit-predict --preset=path/to/{name} INPUT...
tlbkit-eval --preset=path/to/{name} --data=LABELLED_DATA
```

## Input

{inputs or input_contract(None)}

```python
import tlbkit
model = tlbkit.load_model("path/to/{name}")   # a {cls}, in any process
model.predict_classes(x, top_k=3)             # per input: [(class name, probability), ...], best first
model.class_names                             # the classes, in logit order
tuned = tlbkit.load_model("path/to/{name}", num_classes=5)   # a new head, to fine-tune on other classes
```
"""
