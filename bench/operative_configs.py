"""The effective configuration of every shipped recipe, to compare two versions of the configs.

For each top-level task config (every `gin/*.gin` but `base.gin`), each task with each overlay stacked on it
(`models/*.gin` but `models/tlb.gin`, `sizes/*.gin`) and each trial of each sweep (`gin/ablations/*.sweep`,
seed 0), it parses the config as `tlbkit-train` does and records:

- `model`: the serialized model the config builds (`train.model(num_classes=3)`), nested configs included;
- `train`: every argument `train` would be called with (its signature's default where the config binds none);
- `dataset`: the dataset configurable and its arguments (defaults included), without loading it;
- `operative`: the gin operative config of building the model (every parameter of every configurable called).

A config that fails to parse or build records its error instead. Write a dump, change the configs, write
another, compare:

    python bench/operative_configs.py --output=/tmp/defaults_before.json
    python bench/operative_configs.py --output=/tmp/defaults_after.json --compare=/tmp/defaults_before.json

The comparison prints each recipe whose `model`, `train` or `dataset` differ (the behaviour), then the
`operative` lines that differ (the spelling of the same values, e.g. a macro's value given by another file),
and the recipes only one dump holds. To dump another checkout's configs (e.g. main's, from
`git archive main | tar -x -C /tmp/main`), put it first on the path: its `tlbkit` and its gin folder are
then imported instead of the installed ones (`--root=/tmp/main`).
"""

import copy
import inspect
import json
import os
import sys
import traceback

from absl import app, flags

flags.DEFINE_string("output", None, "JSON file to write the dump to.")
flags.DEFINE_string("compare", None, "An earlier dump to compare the new one with.")
flags.DEFINE_string("root", None, "A checkout whose tlbkit and gin folder to dump (default: the installed ones).")
flags.DEFINE_boolean("overlays", True, "Also dump every task with every overlay stacked on it.")
FLAGS = flags.FLAGS

NEEDS = {  # bindings some recipes need to build without data (as tests/test_configs.py)
    "ucr": ["UCR_NAME = 'GunPoint'"],
    "imdb.gin": ["tokenizers.vocabulary.vocabulary = ['good', 'bad']"],
    "imdb_cpu.gin": ["tokenizers.vocabulary.vocabulary = ['good', 'bad']"],
}


def use_checkout(root):
    """Imports `tlbkit`, `tlbkit_tasks` and `tlbkit_configs` from the checkout `root` (links in a scratch folder)."""
    import tempfile

    links = tempfile.mkdtemp(prefix="operative_configs_")
    for name, folder in (("tlbkit", "tlbkit"), ("tlbkit_tasks", "tasks"), ("tlbkit_configs", "gin")):
        os.symlink(os.path.join(os.path.abspath(root), folder), os.path.join(links, name))
    sys.path.insert(0, links)


def gin_folder():
    from tlbkit import gin_utils

    return gin_utils.shipped_folder()


def recipes():
    """`{key: gin files}` of every recipe to dump, plus `{key: extra bindings}`."""
    folder = gin_folder()
    tasks = sorted(f for f in os.listdir(folder) if f.endswith(".gin") and f != "base.gin")
    overlays = sorted(f"{d}/{f}" for d in ("models", "sizes") for f in os.listdir(os.path.join(folder, d))
                      if f.endswith(".gin") and f"{d}/{f}" != "models/tlb.gin")
    found = {name: ([name], []) for name in tasks}
    if FLAGS.overlays:
        for name in tasks:
            for overlay in overlays:
                found[f"{name} + {overlay}"] = ([name, overlay], [])
    found.update(sweep_trials(os.path.join(folder, "ablations")))
    for key, (files, params) in found.items():
        for marker, extra in NEEDS.items():
            if any(f == marker or (marker == "ucr" and f.startswith("ucr")) for f in files):
                params[:0] = extra
    return found


def sweep_trials(folder):
    from tlbkit import ablate

    found = {}
    for name in sorted(os.listdir(folder)):
        sweep = ablate.read_sweep_file(os.path.join(folder, name))
        for trial in ablate.make_trials(sweep):
            if trial.seed == sweep.seeds[0]:
                found[f"ablations/{name} [{trial.trial_id}]"] = (list(sweep.gin_files),
                                                               list(sweep.params) + trial.params())
    return found


def plain(value):
    """`value` as JSON data: references and other objects by their text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def arguments(fn, selector, skip=()):
    """`{parameter: value}` a gin configurable is called with: its bindings (evaluated), else its defaults."""
    import gin

    values = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name in skip or p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        try:
            values[p.name] = plain(copy.deepcopy(gin.query_parameter(f"{selector}.{p.name}")))
        except ValueError:
            values[p.name] = "REQUIRED" if p.default is p.empty else plain(p.default)
    return values


def dataset_of():
    """`(selector, arguments)` of the dataset configurable `train.dataset` names."""
    import gin

    from tlbkit import registry

    ref = gin.query_parameter("train.dataset")
    while getattr(getattr(ref, "configurable", None), "name", None) == "macro":
        ref = gin.query_parameter(f"{ref.scoped_selector}.value")
    if not hasattr(ref, "selector"):
        return repr(ref), {}
    kind, name = ref.selector.split(".", 1)
    fn = registry.ALL[kind]._entries[name][0]
    return ref.selector, arguments(fn, ref.selector)


def dump_one(files, params):
    import gin
    import keras

    from tlbkit import gin_utils
    from tlbkit import train as train_lib

    gin.clear_config()
    try:
        gin_utils.parse(files, params)
        record = {"train": arguments(train_lib.train, "train",
                                     skip=("model_dir", "strategy", "is_chief", "on_first_step", "start_time",
                                           "dataset", "model"))}
        record["dataset"] = dict(zip(("selector", "arguments"), dataset_of()))
        model = gin_utils.evaluate_binding("train.model")(num_classes=3)
        record["model"] = plain(keras.saving.serialize_keras_object(model))
        record["operative"] = sorted(line for line in gin.operative_config_str().splitlines()
                                     if line.strip() and not line.startswith("#"))
    except Exception as e:  # noqa: BLE001 -- a failing config is a result too
        record = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}
        if os.environ.get("OPERATIVE_CONFIGS_TRACEBACK"):
            traceback.print_exc()
    finally:
        gin.clear_config()
    return record


def strip_names(config):
    """A serialized model without the layer names Keras numbers per process (`dense_3`), which differ by order."""
    if isinstance(config, dict):
        return {k: strip_names(v) for k, v in config.items() if k not in ("name", "build_config")}
    if isinstance(config, list):
        return [strip_names(v) for v in config]
    return config


def compare(before, after):
    """Lines describing every difference between two dumps (none: identical)."""
    lines = []
    for key in sorted(set(before) | set(after)):
        if key not in after or key not in before:
            lines.append(f"{key}: only in the {'earlier' if key in before else 'new'} dump")
            continue
        a, b = before[key], after[key]
        if "error" in a or "error" in b:
            if a.get("error") != b.get("error"):
                lines.append(f"{key}: error {a.get('error')!r} -> {b.get('error')!r}")
            continue
        for part in ("train", "dataset"):
            for name in sorted(set(a[part]) | set(b[part])):
                if a[part].get(name) != b[part].get(name):
                    lines.append(f"{key}: {part}.{name} {a[part].get(name)!r} -> {b[part].get(name)!r}")
        if strip_names(a["model"]) != strip_names(b["model"]):
            lines.append(f"{key}: model config differs: " + first_difference(strip_names(a["model"]),
                                                                             strip_names(b["model"])))
        removed = sorted(set(a["operative"]) - set(b["operative"]))
        added = sorted(set(b["operative"]) - set(a["operative"]))
        lines += [f"{key}: operative - {line}" for line in removed] + [f"{key}: operative + {line}" for line in added]
    return lines


def first_difference(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return first_difference(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
    return f"{path or '.'}: {json.dumps(a)[:200]} -> {json.dumps(b)[:200]}"


def main(argv):
    del argv
    if FLAGS.root:
        use_checkout(FLAGS.root)
    from tlbkit import plugins

    plugins.load_all()
    dump = {}
    for key, (files, params) in recipes().items():
        dump[key] = dump_one(files, params)
        print(f"{key}: {dump[key].get('error', 'ok')}", file=sys.stderr)
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(dump, f, indent=1, sort_keys=True)
    if FLAGS.compare:
        with open(FLAGS.compare) as f:
            lines = compare(json.load(f), dump)
        print("\n".join(lines) if lines else "identical")


if __name__ == "__main__":
    app.run(main)
