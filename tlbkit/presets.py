"""Presets: trained models by name (keras-hub's `from_preset` habit), and any run exported as one.

A preset is an *exported run*, a folder holding what inference needs and nothing more:

- `model.keras`: the model, config and weights, no optimizer state;
- `config.gin`: the run's config (it names the dataset plugin, whose preprocessing predictions use);
- `classes.json`: the class names;
- `metrics.json`: the run's final metrics;
- `export.json`: which checkpoint of which run, exported when;
- `README.md`: the model card (command, data, seed, accuracy, wall time).

Every binary that takes `--model_dir` of a trained run takes such a folder too, and `--preset=NAME`
finds one by name: tlbkit's own ship as package data (`tlbkit_tasks/presets/<name>/`); a plugin package
adds its own with an entry point naming a package whose sub-folders are presets:

    [project.entry-points."tlbkit.presets"]
    bits = "bits_plugin.presets"

`tlbkit-export --model_dir=RUN --output=FOLDER` (or `export()`) turns any run directory into a preset.
"""

import datetime
import importlib.metadata
import os
import re
import shutil

from tlbkit import run_dir as rd

ENTRY_POINT_GROUP = "tlbkit.presets"
BUILTIN_PACKAGE = "tlbkit_tasks.presets"
MODEL_FILE = "model.keras"
CARD_FILE = "README.md"


class PresetError(ValueError):
    """An unknown preset, or a folder that is not one."""


def _packages():
    names = [BUILTIN_PACKAGE]
    names += [ep.value.split(":")[0] for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]
    return names


def folders():
    """`{name: folder}` of every installed preset (tlbkit's own first; a plugin's may not shadow them)."""
    from tlbkit import gin_utils

    found = {}
    for package in _packages():
        base = gin_utils.package_folder(package)
        if base is None:
            continue
        for name in sorted(os.listdir(base)):
            folder = os.path.join(base, name)
            if os.path.isfile(os.path.join(folder, rd.EXPORT_FILE)):
                found.setdefault(name, folder)
    return found


def available():
    """`{name: one-line summary}` of every installed preset (the summary is the card's first paragraph)."""
    rows = {}
    for name, folder in folders().items():
        rows[name] = card_summary(folder)
    return rows


def card_summary(folder):
    path = os.path.join(folder, CARD_FILE)
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    return lines[0] if lines else ""


def resolve(name_or_path):
    """The folder of a preset given by name, or an exported run's folder given by path.

    Raises:
        PresetError: listing the installed presets.
    """
    path = os.path.expanduser(str(name_or_path))
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, rd.EXPORT_FILE)):
            raise PresetError(f"{path} is not an exported run (no {rd.EXPORT_FILE}); export it with tlbkit-export.")
        return path
    found = folders()
    if name_or_path in found:
        return found[name_or_path]
    raise PresetError(f"unknown preset {name_or_path!r}. Installed presets: {', '.join(found) or '(none)'}.")


def load_model(name_or_path, expected=None):
    """A preset's Keras model (checked: every saved weight restored).

    Args:
        name_or_path: str. An installed preset's name or an exported run's folder.
        expected: optional class; a `TypeError` unless the model is one (what `from_preset` checks).
    """
    from tlbkit import saving

    model = saving.load_model(os.path.join(resolve(name_or_path), MODEL_FILE))
    if expected is not None and not isinstance(model, expected):
        raise TypeError(f"preset {name_or_path!r} holds a {type(model).__name__}, not a {expected.__name__}.")
    return model


def export(model_dir, output_dir, checkpoint="last", notes=None):
    """Writes a run's model as a preset folder (see the module docstring); returns `output_dir`.

    Args:
        model_dir: str. A run directory written by `tlbkit-train` (finished or not).
        output_dir: str. The preset folder to write; it must not exist or be empty.
        checkpoint: str. `"last"` or `"best"`.
        notes: str or None. Extra text for the model card (e.g. the machine it trained on).
    """
    from tlbkit import evaluate, saving

    source = evaluate.checkpoint_path(model_dir, checkpoint)
    for required in (rd.CONFIG_FILE, rd.CLASSES_FILE):
        if not os.path.exists(os.path.join(model_dir, required)):
            raise PresetError(f"{model_dir} holds no {required}: is it a run directory written by tlbkit-train?")
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        raise PresetError(f"{output_dir} exists and is not empty: choose a new --output folder.")
    os.makedirs(output_dir, exist_ok=True)
    model = saving.load_model(source)
    saving.save_for_inference(model, os.path.join(output_dir, MODEL_FILE))
    for name in (rd.CONFIG_FILE, rd.CLASSES_FILE, rd.METRICS_FILE):
        if os.path.exists(os.path.join(model_dir, name)):
            shutil.copyfile(os.path.join(model_dir, name), os.path.join(output_dir, name))
    metrics = rd.read_json(os.path.join(model_dir, rd.METRICS_FILE), default={})
    resume = rd.read_json(os.path.join(model_dir, rd.RESUME_FILE), default={})
    info = {
        "checkpoint": checkpoint,
        "epoch": (metrics.get("best", {}).get("epoch") if checkpoint == "best" else None) or resume.get("epochs_done"),
        "source": os.path.basename(os.path.normpath(model_dir)),  # the run's name; no path of this machine
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "params": int(model.count_params()),
        "model": describe_model(model),
        "class": type(model).__name__,
    }
    rd.atomic_write_json(os.path.join(output_dir, rd.EXPORT_FILE), info)
    rd.atomic_write_text(os.path.join(output_dir, CARD_FILE), model_card(model_dir, output_dir, info, metrics, notes))
    return output_dir


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


def model_card(model_dir, output_dir, info, metrics, notes=None):
    """The README.md of a preset: what it is, how it was trained, how well it does, how to use it."""
    name = os.path.basename(os.path.normpath(output_dir))
    scores = metrics.get("best", metrics) if info["checkpoint"] == "best" else metrics
    classes = rd.read_json(os.path.join(model_dir, rd.CLASSES_FILE))["class_names"]
    command_path = os.path.join(model_dir, "command.txt")
    if os.path.exists(command_path):  # one line per start of the run; a resume repeats the command
        lines = [line for line in open(command_path).read().splitlines() if line.strip()]
        lines = [public_command(line) for line in lines]
        commands = "\n".join(dict.fromkeys(lines))
        if len(lines) > 1:
            commands += f"\n# started {len(lines)} times: {len(lines) - 1} resume(s) from the last checkpoint"
    else:
        commands = "(not recorded)"
    config = open(os.path.join(model_dir, rd.CONFIG_FILE)).read()
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

```python
from tlbkit.models import {cls}
model = {cls}.from_preset("path/to/{name}")
```
"""
