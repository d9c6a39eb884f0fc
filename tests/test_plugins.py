"""Registry and plugin discovery; runs the worked example of docs/plugins.md."""

import json
import os
import re
import subprocess
import sys

import pytest

from binaries import ROOT, assert_eval_reproduces_metrics, run_binary
from tlbkit import registry


def doc_blocks():
    text = open(os.path.join(ROOT, "docs", "plugins.md")).read()
    blocks = re.findall(r"```(?:python)?\n# (\S+)\n(.*?)```", text, flags=re.S)
    return {name: f"# {name}\n{body}" for name, body in blocks}


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("my_plugins")
    blocks = doc_blocks()
    assert set(blocks) == {"bits_plugin.py", "bits.gin"}
    for name, body in blocks.items():
        (d / name).write_text(body)
    return d


def test_unknown_name_lists_registered_names():
    with pytest.raises(registry.UnknownNameError) as e:
        registry.ENCODERS.get("tlbb")
    assert "Did you mean 'tlb'?" in str(e.value) and "lstm, tlb, transformer" in str(e.value)


def test_build_from_name_applies_gin_bindings():
    import gin

    with gin.unlock_config():
        gin.parse_config("heads.classification.pooling = 'last_chunk'\nheads.classification.chunk_size = 3")
    try:
        head = registry.HEADS.build("classification", num_classes=5)
        assert head.pooling == "last_chunk" and head.chunk_size == 3 and head.num_classes == 5
    finally:
        gin.clear_config()


def test_duplicate_name_from_another_module_is_refused():
    class Other:
        pass

    with pytest.raises(ValueError, match="already registered"):
        registry.ENCODERS.register("tlb")(Other)


def test_docs_worked_example_trains_with_plugin_flag(plugin_dir, tmp_path):
    model_dir = tmp_path / "bits"
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{plugin_dir}"}
    proc = run_binary("train", "--plugin=bits_plugin", f"--gin_search_path={plugin_dir}", "--gin_file=bits.gin",
                      f"--model_dir={model_dir}", env=env, check=True)
    assert json.loads(proc.stdout.strip().splitlines()[-1])["epochs_completed"] == 1
    assert open(model_dir / "config.gin").read().startswith("import bits_plugin")
    assert_eval_reproduces_metrics(model_dir, env)  # every weight of the plugin's tokenizer came back
    bits = tmp_path / "x.txt"
    bits.write_text("1011000011110000")
    proc = run_binary("predict", f"--model_dir={model_dir}", str(bits), "0000111100001111", env=env, check=True)
    assert len(re.findall(r"(even|odd)\s+[01]\s+[01]\.\d+", proc.stdout)) == 2


def test_a_layer_without_build_is_not_silently_reinitialised(tmp_path):
    """The pattern docs/plugins.md warns about: sub-layers whose weights appear only on the first call.
    A reload would give fresh weights: training and evaluation fail, naming the layer."""
    d = tmp_path / "no_build"
    d.mkdir()
    blocks = doc_blocks()
    module = re.sub(r"\n    def build\(self, bits_shape=None\):.*?\n\n", "\n", blocks["bits_plugin.py"], flags=re.S)
    assert "def build" not in module
    (d / "bits_plugin.py").write_text(module)
    (d / "bits.gin").write_text(blocks["bits.gin"])
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{d}"}
    model_dir = tmp_path / "run"
    # Training stops after its first checkpoint, which would not reload whole.
    proc = run_binary("train", "--plugin=bits_plugin", f"--gin_search_path={d}", "--gin_file=bits.gin",
                      f"--model_dir={model_dir}", "--gin_param=train.epochs = 3", env=env)
    assert proc.returncode == 2, proc.stdout[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "were not restored" in errors[0] and "bits_tokenizer" in errors[0], proc.stderr
    assert proc.stdout.count("Epoch ") == 1  # not after the last epoch
    proc = run_binary("evaluate", f"--model_dir={model_dir}", env=env)  # and no reload of it passes either
    assert proc.returncode == 2 and "were not restored" in proc.stderr


def test_entry_point_discovery(plugin_dir, tmp_path):
    dist = tmp_path / "site" / "bits_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bits-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tlbkit.plugins]\nbits = bits_plugin\n")
    env = {"PYTHONPATH": os.pathsep.join([ROOT, str(plugin_dir), str(tmp_path / "site")])}
    proc = run_binary("train", "--list", env=env, check=True)
    assert "tokenizers.bits(dim=REQUIRED, max_length=REQUIRED)" in proc.stdout
    assert "datasets.bits_parity(" in proc.stdout
    assert "\ntasks:" not in proc.stdout


# === Issue 29: plugins cannot collide ===
@pytest.fixture(scope="module")
def colliding_plugin(tmp_path_factory):
    """An installed plugin package (entry points `tlbkit.gin`) whose gin folder ships its own `base.gin`."""
    site = tmp_path_factory.mktemp("site")
    configs = site / "clash_plugin" / "configs"
    configs.mkdir(parents=True)
    (site / "clash_plugin" / "__init__.py").write_text("")
    (configs / "__init__.py").write_text("")
    (configs / "base.gin").write_text("include 'tlbkit:base.gin'\ntrain.weight_decay = 0.777\n")
    (configs / "clash.gin").write_text("include 'recall_cpu.gin'\n")
    dist = site / "clash_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: clash-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tlbkit.gin]\nclash = clash_plugin.configs\n")
    return {"PYTHONPATH": os.pathsep.join([ROOT, str(site)])}


def test_a_plugins_base_gin_does_not_replace_tlbkits(colliding_plugin, tmp_path):
    proc = run_binary("train", "--list", env=colliding_plugin, check=True)
    assert "  clash:base.gin  (clash; base.gin alone is ambiguous)" in proc.stdout
    assert "  tlbkit:base.gin  (tlbkit; base.gin alone is ambiguous)" in proc.stdout
    assert "  recall_cpu.gin  (tlbkit)" in proc.stdout and "  clash.gin  (clash)" in proc.stdout
    # recall_cpu.gin includes 'base.gin', which two sources give: an error, not the plugin's weight decay.
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={tmp_path / 'run'}", env=colliding_plugin)
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "config 'base.gin' is given by 2 sources" in proc.stderr and "'tlbkit:base.gin'" in proc.stderr
    assert "'clash:base.gin'" in proc.stderr and not (tmp_path / "run" / "config.gin").exists()


def test_a_qualified_name_selects_one_source(colliding_plugin):
    code = ("import gin\nfrom tlbkit import gin_utils\n"
            "gin_utils.parse(['clash:base.gin'], ['DATASET = None'])\n"
            "print(gin.query_parameter('train.weight_decay'))\n"
            "print(gin_utils.resolve('tlbkit:base.gin'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=dict(os.environ, **colliding_plugin, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    weight_decay, path = proc.stdout.split()
    assert float(weight_decay) == 0.777 and path.endswith(os.path.join("gin", "base.gin"))


def test_a_search_folder_holding_a_shipped_name_is_ambiguous(tmp_path):
    import gin

    from tlbkit import gin_utils

    (tmp_path / "base.gin").write_text("train.weight_decay = 0.5\n")
    try:
        with pytest.raises(gin_utils.GinConfigError, match=r"'base.gin' is given by 2 sources.*name the one you mean"):
            gin_utils.parse(["recall_cpu.gin"], [], [str(tmp_path)])
    finally:
        gin.clear_config()
    assert gin_utils.resolve(str(tmp_path / "base.gin")) == str(tmp_path / "base.gin")


# === Issue 29: nothing silently different after a reload; tlbkit.testing ===
def _scaled_tokenizer_class(with_scale_in_config):
    import keras

    class ScaledTokenizer(keras.layers.Layer):
        """(B, T) values -> (B, T, dim) tokens of `scale * value`."""

        def __init__(self, dim, scale=1.0, **kwargs):
            super().__init__(**kwargs)
            self.dim, self.scale = dim, scale
            self.projection = keras.layers.Dense(dim, name="projection")

        def build(self, shape=None):
            self.projection.build((None, None, 1))

        def call(self, values):
            return {"tokens": self.projection(keras.ops.expand_dims(values, -1) * self.scale)}

        def get_config(self):
            extra = {"scale": self.scale} if with_scale_in_config else {}
            return {**super().get_config(), "dim": self.dim, **extra}

    name = "Scaled" if with_scale_in_config else "ScaledOmitting"
    ScaledTokenizer.__name__ = ScaledTokenizer.__qualname__ = name
    return keras.saving.register_keras_serializable("test_plugins", name)(ScaledTokenizer)


def test_a_get_config_that_omits_an_argument_fails_the_load_naming_the_layer(tmp_path):
    import numpy as np

    from tlbkit import saving, testing

    values = np.linspace(-1, 1, 32, dtype="float32").reshape(2, 16)
    model = testing.small_classifier(_scaled_tokenizer_class(False)(16, scale=3.0, name="scaled_tok"))
    model(values)
    saving.set_probe(model, values)
    saving.save_model(model, str(tmp_path / "m.keras"))
    with pytest.raises(saving.OutputsChangedError,
                       match=r"layer 'scaled_tok' \(ScaledOmitting\): its get_config\(\) omits \['scale'\]"):
        saving.load_model(str(tmp_path / "m.keras"))
    with pytest.raises(saving.OutputsChangedError, match="scaled_tok"):  # and no preset is written from it
        saving.save_for_inference(model, str(tmp_path / "preset.keras"))
    assert not (tmp_path / "preset.keras").exists()
    with pytest.raises(AssertionError, match=r"omits \['scale'\]"):
        testing.run_saving_test(model, values, str(tmp_path))


def test_testing_kit_passes_a_sound_tokenizer_and_streams_a_series_model(tmp_path):
    import numpy as np

    from tlbkit import saving, testing
    from tlbkit_tasks.timeseries import SeriesPatchTokenizer

    values = np.linspace(-1, 1, 32, dtype="float32").reshape(2, 16)
    testing.run_config_test(_scaled_tokenizer_class(True)(16, scale=3.0))
    loaded = testing.run_saving_test(testing.small_classifier(_scaled_tokenizer_class(True)(16, scale=3.0)), values,
                                     str(tmp_path))
    assert saving.get_probe(loaded).shape == (2, 16)  # the probe travels with the loaded model
    series = np.cumsum(np.random.default_rng(0).normal(size=(2, 45, 2)), axis=1).astype("float32")
    model = testing.small_classifier(SeriesPatchTokenizer(16, 2, normalize="none", position_period=4,
                                                          differences=True))
    assert testing.run_streaming_test(model, series) <= 1e-4  # 5 chunks of 8 steps and a partial one
    testing.run_saving_test(model, series, str(tmp_path))


def test_testing_kit_run_layer_test_checks_a_plugins_layer():
    """`tlbkit.testing.run_layer_test` (what tests/test_layers.py runs on tlbkit's layers) on a plugin layer:
    it passes a sound one and names what is wrong with the others."""
    import numpy as np

    from tlbkit import testing

    values = np.linspace(-1, 1, 32, dtype="float32").reshape(2, 16)
    sound = _scaled_tokenizer_class(True)
    layer = testing.run_layer_test(lambda **kw: sound(16, scale=3.0, **kw), values, mixed_precision=False)
    assert layer.built and tuple(layer(values)["tokens"].shape) == (2, 16, 16)
    omitting = _scaled_tokenizer_class(False)
    with pytest.raises(AssertionError, match=r"ScaledOmitting .*: from_config\(get_config\(\)\) with the same "
                                             r"weights computes other outputs"):
        testing.run_layer_test(lambda **kw: omitting(16, scale=3.0, **kw), values, fit=False, mixed_precision=False)
    # Its Dense is not given dtype=self.dtype_policy: under mixed precision it computes in float32.
    with pytest.raises(AssertionError, match=r"under mixed_bfloat16: float outputs of dtypes \['float32'\], "
                                             r"expected bfloat16"):
        testing.run_layer_test(lambda **kw: sound(16, scale=3.0, **kw), values)

    class Unregistered(keras_layer()):
        def call(self, x):
            return x * 2.0

    with pytest.raises(AssertionError, match="Unregistered .* is not registered for serialization"):
        testing.run_layer_test(lambda **kw: Unregistered(**kw), values, fit=False, mixed_precision=False)


def keras_layer():
    import keras

    return keras.layers.Layer
