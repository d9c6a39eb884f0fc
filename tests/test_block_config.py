"""`BlockConfig`: the hyper-parameters `TLBCell` shares with its `AttentionBlock`s, stored and serialised once."""

import dataclasses

import keras
import numpy as np
import pytest

from tlbkit.layers import AttentionBlock, TLBCell
from tlbkit.layers.block_config import BlockConfig

# A TLBCell config as written before BlockConfig existed (the keys of the shipped cifar10_tlb preset's cell):
# flat keys, `key_dim` None. Saved `.keras` files hold exactly this.
OLD_CELL_CONFIG = {
    "name": "tlb_cell", "trainable": True, "dtype": "float32",
    "dim": 16, "num_heads": 4, "key_dim": None, "ffn_ratio": 2, "num_layers": 4, "r": 2, "num_latents": 3,
    "dropout": 0.0, "attention_dropout": 0.0, "initial_state": "learned", "layout": "paper", "norm_mode": "pre",
    "read_slow": True, "gelu_approximate": False, "custom_gradient": True,
}
OLD_BLOCK_KEYS = {"dim", "num_heads", "key_dim", "ffn_ratio", "dropout", "attention_dropout", "norm_mode",
                  "cross_attention", "norm_epsilon", "gelu_approximate", "custom_gradient"}


def test_cell_config_round_trips_through_block_config():
    cell = TLBCell(dim=16, num_heads=2, key_dim=4, ffn_ratio=1.5, num_layers=2, r=1, num_latents=3, dropout=0.2,
                   attention_dropout=0.1, layout="keras_io", norm_mode="qkv", gelu_approximate=True,
                   custom_gradient=False)
    config = cell.get_config()
    assert set(config) >= set(OLD_CELL_CONFIG)  # the flat keys of before, no nesting
    assert BlockConfig.from_dict(config) == cell.block_config
    assert cell.block_config.to_dict().items() <= config.items()
    # Each block holds the cell's config (key_dim resolved) and adds only its own two settings.
    for block in cell.fast_blocks + [cell.slow_block]:
        assert block.block_config == cell.block_config.resolved()
        assert set(block.get_config()) - set(keras.layers.Layer().get_config()) == OLD_BLOCK_KEYS
    again = TLBCell.from_config(config)
    assert again.block_config == cell.block_config and again.get_config() == config
    assert (again.dim, again.key_dim, again.dropout, again.norm_mode) == (16, 4, 0.2, "qkv")


def test_old_flat_cell_config_loads():
    cell = TLBCell.from_config(dict(OLD_CELL_CONFIG))
    assert cell.block_config == BlockConfig(dim=16, num_heads=4, key_dim=None, ffn_ratio=2)
    assert cell.key_dim is None and cell.fast_blocks[0].key_dim == 4
    assert cell.get_config() == {**OLD_CELL_CONFIG, "dtype": cell.get_config()["dtype"]}
    # And through Keras' own deserialisation, with weights: the same outputs as the layer it came from.
    x = np.random.default_rng(0).normal(size=(2, 4, 16)).astype("float32")
    cell.build()
    state = cell.get_initial_state(2)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))  # built too
    restored.set_weights(cell.get_weights())
    for a, b in zip(cell(x, state), restored(x, state)):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_attention_block_config_unchanged():
    block = AttentionBlock(16, num_heads=2, dropout=0.1)
    config = block.get_config()
    assert config["key_dim"] == 8  # resolved, as before
    assert AttentionBlock.from_config(config).get_config() == config
    made = AttentionBlock.from_block_config(BlockConfig(dim=16, num_heads=2, dropout=0.1), name=block.name)
    assert made.get_config() == config


def test_block_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        BlockConfig(dim=16).dim = 8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dim=0), "`dim` must be an integer >= 1. Received: dim=0"),
        (dict(dim=10, num_heads=4), "dim=10 is not divisible by num_heads=4"),
        (dict(dim=10, num_heads=4, key_dim=0), "Received: key_dim=0"),
        (dict(dim=16, ffn_ratio=0), "Received: ffn_ratio=0"),
        (dict(dim=16, attention_dropout=1.0), "`attention_dropout` must be in [0, 1)"),
        (dict(dim=16, norm_mode="post"), "'pre', 'qkv'. Received: norm_mode='post'"),
    ],
)
def test_bad_block_config(kwargs, message):
    with pytest.raises(ValueError) as e:
        BlockConfig(**kwargs)
    assert message in str(e.value)
    with pytest.raises(ValueError) as e:  # the cell reports it the same way
        TLBCell(**{"num_heads": 1, **kwargs})
    assert message in str(e.value)
