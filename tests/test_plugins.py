"""Registry and plugin discovery; runs the worked example of docs/plugins.md."""

import json
import os
import re

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
