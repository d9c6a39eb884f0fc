"""Presets: the shipped ones load and predict right after install; any run exports as one."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from binaries import run_binary
from tlbkit import presets


def test_the_cifar_preset_ships_and_predicts(tmp_path):
    assert "cifar10_tlb" in presets.available()
    folder = presets.resolve("cifar10_tlb")
    for name in ("model.keras", "config.gin", "classes.json", "metrics.json", "export.json", "README.md"):
        assert os.path.exists(os.path.join(folder, name)), name
    assert os.path.getsize(os.path.join(folder, "model.keras")) < 8e6  # weights only, no optimizer state
    card = open(os.path.join(folder, "README.md")).read()
    for text in ("validation accuracy", "training wall time", "tlbkit-train", "seed"):
        assert text in card, text
    classes = json.load(open(os.path.join(folder, "classes.json")))["class_names"]
    image = tmp_path / "some.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(image)
    proc = run_binary("predict", "--preset=cifar10_tlb", str(image), check=True)
    row = proc.stdout.strip().splitlines()[-1].split()
    assert row[0] == str(image) and row[1] in classes and 0 < float(row[3]) <= 1


def test_from_preset_gives_the_keras_model():
    from tlbkit.models import SequenceClassifier

    model = SequenceClassifier.from_preset("cifar10_tlb")
    logits = model(np.zeros((2, 32, 32, 3), "float32"))
    assert tuple(logits.shape) == (2, 10)
    with pytest.raises(presets.PresetError, match="unknown preset 'nope'.*cifar10_tlb"):
        SequenceClassifier.from_preset("nope")


def test_any_run_exports_as_a_preset_that_predicts_the_same(tmp_path, shared_recall_run):
    model_dir = shared_recall_run  # trained with --data_dir=its parent folder
    out = tmp_path / "exported"
    run_binary("export", f"--model_dir={model_dir}", f"--output={out}", "--notes=made by a test", check=True)
    card = open(out / "README.md").read()
    assert "made by a test" in card and "--data_dir=DATA" in card
    for name in ("README.md", "export.json"):  # a published preset names no folder of the machine it came from
        assert str(model_dir.parent) not in open(out / name).read(), name
    assert not (out / "last.keras").exists() and (out / "model.keras").exists()
    ids = ",".join(["1"] + ["7"] * 15)
    a = run_binary("predict", f"--model_dir={model_dir}", ids, check=True).stdout.strip().splitlines()[-1]
    b = run_binary("predict", f"--preset={out}", ids, check=True).stdout.strip().splitlines()[-1]
    assert a == b
    proc = run_binary("export", f"--model_dir={model_dir}", f"--output={out}")
    assert proc.returncode == 2 and "not empty" in proc.stderr
    proc = run_binary("predict", f"--preset={out}", "--checkpoint=best", ids)
    assert proc.returncode == 2 and "holding only its 'last' model" in proc.stderr


# === Loading anything, in any process ===
def run_python(code, timeout=600):
    """Runs `python -c code` in a fresh process (nothing imported but what `code` imports); -> CompletedProcess."""
    import subprocess
    import sys

    from binaries import ROOT

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)


def test_a_fresh_process_loads_the_shipped_preset_by_path_and_by_name():
    folder = presets.resolve("cifar10_tlb")
    code = f"""
import sys, numpy as np, tlbkit
from tlbkit.models import SequenceClassifier
assert "tlbkit_tasks" not in sys.modules
by_path = SequenceClassifier.from_preset({folder!r})
by_name = tlbkit.load_model("cifar10_tlb")
x = np.full((2, 32, 32, 3), 128, "uint8")
print(type(by_path).__name__, type(by_name).__name__, by_path.class_names[0],
      float(np.abs(np.asarray(by_path(x)) - np.asarray(by_name(x))).max()), by_path.predict_classes(x, top_k=2)[0][0][0])
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    kinds = proc.stdout.split()
    assert kinds[:3] == ["SequenceClassifier", "SequenceClassifier", "airplane"] and float(kinds[3]) == 0.0
    assert kinds[4] in json.load(open(os.path.join(folder, "classes.json")))["class_names"]


def test_saving_load_model_works_in_a_process_that_imported_only_tlbkit_saving(tmp_path):
    # A checkpoint of tlbkit's and a plugin's classes: keras.saving cannot find them unless they are
    # registered, and `import tlbkit` registers nothing (it keeps --help fast).
    from test_time_budget import tiny_model

    from tlbkit import saving

    model = tiny_model(3)
    x = np.arange(32).reshape(2, 16) % 12
    model(x)
    saving.set_probe(model, x)
    path = str(tmp_path / "tiny.keras")
    saving.save_model(model, path)
    proc = run_python(f"from tlbkit import saving; print(type(saving.load_model({path!r})).__name__)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-1] == "SequenceClassifier"


def test_gin_configs_find_registered_models_when_only_tlbkit_was_imported():
    code = """
from tlbkit import gin_utils
gin_utils.parse(["recall_cpu.gin"], [])
print(type(gin_utils.evaluate_binding("train.model")(num_classes=3)).__name__)
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-1] == "SequenceClassifier"


def tiny_image_classifier(class_names=("cat", "dog", "owl")):
    from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder
    from tlbkit.models import SequenceClassifier
    from tlbkit_tasks.vision import PatchTokenizer

    model = SequenceClassifier(
        encoder=TLBEncoder(TLBCell(dim=8, num_latents=2, num_heads=2, num_layers=1, r=1), chunk_size=2),
        head=ClassificationHead(len(class_names)), tokenizer=PatchTokenizer(image_size=8, patch_size=4, dim=8),
        class_names=class_names)
    model(np.zeros((1, 8, 8, 3), "uint8"))
    return model


def save_as_run(model, folder):
    """`model` saved as a run directory's last model (what load_model takes besides presets)."""
    os.makedirs(folder, exist_ok=True)
    model.save(os.path.join(folder, "last.keras"))
    presets.record_plugins(folder, model)
    return str(folder)


def test_class_names_and_the_input_scale_are_saved_and_predict_classes_names_them(tmp_path):
    model = tiny_image_classifier()
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3)).astype("uint8")
    loaded = presets.load_model(save_as_run(model, tmp_path / "run"))
    assert loaded.class_names == ("cat", "dog", "owl") and loaded.tokenizer.input_scale == pytest.approx(1 / 255)
    logits = np.asarray(loaded(images))
    np.testing.assert_allclose(logits, np.asarray(model(images)), atol=1e-6)
    # uint8, 0-255 floats and the image divided by 255 with input_scale=1 are one function of the pixels.
    np.testing.assert_allclose(np.asarray(loaded(images.astype("float32"))), logits, atol=1e-6)
    rows = loaded.predict_classes(images, top_k=2)
    assert len(rows) == 5 and all(len(r) == 2 and r[0][1] >= r[1][1] for r in rows)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert rows[0][0] == (("cat", "dog", "owl")[int(probs[0].argmax())], pytest.approx(float(probs[0].max())))
    assert len(loaded.predict_classes(images[:1], top_k=10)[0]) == 3
    with pytest.raises(ValueError, match="top_k=0"):
        loaded.predict_classes(images, top_k=0)
    with pytest.raises(ValueError, match="names 2 classes but the model gives 3 logits"):
        loaded.class_names = ["cat", "dog"]
    with pytest.raises(ValueError, match="input_scale=-1"):
        type(loaded.tokenizer)(image_size=8, patch_size=4, dim=8, input_scale=-1)


def test_an_ensemble_loads_through_load_model_and_sequence_classifier_from_preset(tmp_path):
    import tlbkit
    from tlbkit.models import Ensemble, SequenceClassifier

    ensemble = Ensemble([tiny_image_classifier(), tiny_image_classifier()], class_names=["cat", "dog", "owl"])
    images = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3)).astype("uint8")
    expected = np.asarray(ensemble(images))
    folder = save_as_run(ensemble, tmp_path / "ens")
    for model in (tlbkit.load_model(folder), SequenceClassifier.from_preset(folder), Ensemble.from_preset(folder)):
        assert isinstance(model, Ensemble) and model.class_names == ("cat", "dog", "owl")
        np.testing.assert_allclose(np.asarray(model(images)), expected, atol=1e-6)
    assert model.predict_classes(images)[0][0][0] in ("cat", "dog", "owl")
    single = save_as_run(tiny_image_classifier(), tmp_path / "single")
    with pytest.raises(TypeError, match=r"holds a SequenceClassifier, not a Ensemble: load it with tlbkit.load_model"):
        Ensemble.from_preset(single)


def test_a_missing_plugin_package_is_named_with_the_version_it_was_saved_with(tmp_path):
    import zipfile

    folder = save_as_run(tiny_image_classifier(), tmp_path / "run")
    path = os.path.join(folder, "last.keras")
    with zipfile.ZipFile(path) as z:
        files = {name: z.read(name) for name in z.namelist()}
    files["config.json"] = files["config.json"].replace(b"tlbkit_tasks.vision.patch_tokenizer", b"bits_plugin.layers")
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    with open(os.path.join(folder, presets.PLUGINS_FILE), "w") as f:
        json.dump({"plugins": [{"module": "bits_plugin", "distribution": "bits-plugin", "version": "1.2.0"}]}, f)
    with pytest.raises(presets.PresetError, match=r"needs the plugin module 'bits_plugin'.*bits-plugin 1\.2\.0.*"
                                                  r"pip install 'bits-plugin==1\.2\.0'"):
        presets.load_model(folder)


def test_from_preset_with_num_classes_keeps_the_trained_encoder_and_gives_a_new_head(tmp_path):
    import tlbkit
    from tlbkit.models import Ensemble, SequenceClassifier

    model = tiny_image_classifier()
    folder = save_as_run(model, tmp_path / "run")
    tuned = SequenceClassifier.from_preset(folder, class_names=["rose", "tulip"])
    images = np.random.default_rng(2).integers(0, 256, (4, 8, 8, 3)).astype("uint8")
    assert tuple(np.shape(tuned(images))) == (4, 2) and tuned.class_names == ("rose", "tulip")
    for part in ("tokenizer", "encoder"):
        for a, b in zip(getattr(tuned, part).get_weights(), getattr(model, part).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert tuned.head.num_classes == 2 and tuned.predict_classes(images)[0][0][0] in ("rose", "tulip")
    tuned.compile(optimizer="adam", loss=keras_loss())
    tuned.fit(images, np.array([0, 1, 0, 1]), epochs=1, verbose=0)  # trains as any Keras model
    ensemble = save_as_run(Ensemble([tiny_image_classifier(), tiny_image_classifier()]), tmp_path / "ens")
    assert tuple(np.shape(tlbkit.load_model(ensemble, num_classes=5)(images))) == (4, 5)


def keras_loss():
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


CIFAR_ZIP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                         "cifar10-train-jpg.zip")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CIFAR_ZIP), reason=f"no CIFAR-10 zip at {CIFAR_ZIP}")
def test_the_cifar_preset_scores_uint8_and_load_img_images():
    """What users hold: uint8 pixels and Keras' load_img + img_to_array floats (0-255) of held-out images."""
    import io
    import zipfile

    import keras

    import tlbkit
    from tlbkit_tasks.vision.image_folder import holdout

    with zipfile.ZipFile(CIFAR_ZIP) as z:
        names = sorted(n for n in z.namelist() if n.lower().endswith(".jpg"))  # train/<class>/<file>, sorted
        classes = sorted({n.split("/")[-2] for n in names})
        _, held_out = holdout(len(names), 10_000, None, 0)  # the preset's validation images
        picked = [names[i] for i in held_out[:500]]
        floats = np.stack([keras.utils.img_to_array(keras.utils.load_img(io.BytesIO(z.read(n)))) for n in picked])
    labels = np.array([classes.index(n.split("/")[-2]) for n in picked])
    model = tlbkit.load_model("cifar10_tlb")
    assert list(model.class_names) == classes
    uint8 = floats.astype("uint8")
    assert np.array_equal(uint8, floats)  # img_to_array gives the pixel values as floats
    logits = np.asarray(model.predict(uint8, batch_size=250, verbose=0))
    assert (logits.argmax(-1) == labels).mean() >= 0.80
    np.testing.assert_array_equal(np.asarray(model.predict(floats, batch_size=250, verbose=0)), logits)
    top = model.predict_classes(uint8[:20], top_k=3)
    assert np.mean([row[0][0] == classes[y] for row, y in zip(top, labels[:20])]) >= 0.5


# === Issue 29: presets keep their provenance ===
@pytest.fixture()
def clashing_presets(tmp_path, monkeypatch):
    """An installed plugin package (entry point `tlbkit.presets`, source `clash`) shipping its own `cifar10_tlb`
    (a copy of tlbkit's) and `clash_only`; on sys.path here, and as PYTHONPATH for subprocesses."""
    import shutil

    from binaries import ROOT

    site = tmp_path / "site"
    package = site / "clash_presets" / "presets"
    package.mkdir(parents=True)
    (site / "clash_presets" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    shipped = presets.resolve("cifar10_tlb")
    for name in ("cifar10_tlb", "clash_only"):
        shutil.copytree(shipped, package / name)
    dist = site / "clash_presets-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: clash-presets\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tlbkit.presets]\nclash = clash_presets.presets\n")
    monkeypatch.syspath_prepend(str(site))
    return {"site": site, "folder": str(package / "cifar10_tlb"), "tlbkit_folder": shipped,
            "env": {"PYTHONPATH": os.pathsep.join([ROOT, str(site)])}}


def test_a_preset_name_two_sources_ship_is_an_error_naming_the_qualified_names(clashing_presets):
    import tlbkit

    with pytest.raises(presets.PresetError, match=r"preset 'cifar10_tlb' is given by 2 sources: tlbkit \(.*\), "
                                                  r"clash \(.*\); name the one you mean: 'tlbkit:cifar10_tlb' or "
                                                  r"'clash:cifar10_tlb'"):
        presets.resolve("cifar10_tlb")
    with pytest.raises(presets.PresetError, match="is given by 2 sources"):
        tlbkit.load_model("cifar10_tlb")
    assert presets.resolve("clash:cifar10_tlb") == clashing_presets["folder"]
    assert presets.resolve("clash_presets:cifar10_tlb") == clashing_presets["folder"]  # the package's name
    assert presets.resolve("tlbkit:cifar10_tlb") == clashing_presets["tlbkit_folder"]
    assert presets.resolve("clash_only").endswith(os.path.join("clash_presets", "presets", "clash_only"))
    listed = presets.available()
    assert "cifar10_tlb" not in listed and listed["tlbkit:cifar10_tlb"][0] == "tlbkit"
    assert listed["clash:cifar10_tlb"][0] == "clash" and listed["clash_only"][0] == "clash"
    with pytest.raises(presets.PresetError, match=r"the source 'clash' \(clash_presets.presets\) ships no preset "
                                                  r"'nope'. Its presets: cifar10_tlb, clash_only"):
        presets.resolve("clash:nope")
    model = tlbkit.load_model("clash:cifar10_tlb")
    assert model.class_names[0] == "airplane"


def test_list_presets_shows_sources_and_preset_refuses_an_ambiguous_name(clashing_presets):
    proc = run_binary("predict", "--list_presets", env=clashing_presets["env"], check=True)
    lines = proc.stdout.splitlines()
    assert any(line.startswith("tlbkit:cifar10_tlb") and "(tlbkit)" in line for line in lines), proc.stdout
    assert any(line.startswith("clash:cifar10_tlb") and "(clash)" in line for line in lines), proc.stdout
    assert any(line.startswith("clash_only ") and "(clash)" in line for line in lines), proc.stdout
    proc = run_binary("predict", "--preset=cifar10_tlb", "x.jpg", env=clashing_presets["env"])
    assert proc.returncode == 2 and "'tlbkit:cifar10_tlb' or 'clash:cifar10_tlb'" in proc.stderr, proc.stderr[-2000:]


def test_list_presets_names_each_source_without_plugins():
    from tlbkit.bin import cli

    line = next(line for line in cli.list_presets().splitlines() if line.startswith("cifar10_tlb "))
    assert "(tlbkit)" in line and presets.sources()[0] == ("tlbkit", presets.BUILTIN_PACKAGE)


def test_other_test_time_views_keep_class_names_probe_and_build(tmp_path):
    """tlbkit-eval --test_time_views rebuilds the model around its parts: nothing it carries is lost."""
    from tlbkit import evaluate, saving
    from tlbkit.models import Ensemble

    images = np.random.default_rng(3).integers(0, 256, (2, 8, 8, 3)).astype("uint8")
    for model in (tiny_image_classifier(), Ensemble([tiny_image_classifier(), tiny_image_classifier()],
                                                    class_names=["cat", "dog", "owl"])):
        model(images)
        saving.set_probe(model, images)
        saving.save_model(model, str(tmp_path / f"{type(model).__name__}.keras"))
        loaded = presets.load_model(str(tmp_path / f"{type(model).__name__}.keras"))  # the probe read back
        for views in ("flip", "none"):
            copy = evaluate.with_test_time_views(loaded, views)
            assert copy.class_names == ("cat", "dog", "owl") and copy.built, (type(model).__name__, views)
            assert copy.predict_classes(images)[0][0][0] in ("cat", "dog", "owl")
            np.testing.assert_array_equal(saving.get_probe(copy), images)
        saving.save_model(copy, str(tmp_path / "rescored.keras"))  # a copy saves, with its probe, and reloads
        assert saving.load_model(str(tmp_path / "rescored.keras")).class_names == ("cat", "dog", "owl")
