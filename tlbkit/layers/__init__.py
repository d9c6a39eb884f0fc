"""Keras layers of the engine. They use only `keras.ops`, so they run on any Keras backend."""

from tlbkit import backends

backends.use_compilation_cache()  # under JAX, before anything compiles

from tlbkit.layers.attention_block import AttentionBlock  # noqa: E402
from tlbkit.layers.classification_head import ClassificationHead
from tlbkit.layers.lstm_encoder import LSTMEncoder
from tlbkit.layers.tlb_cell import TLBCell
from tlbkit.layers.tlb_encoder import TLBEncoder
from tlbkit.layers.transformer_encoder import TransformerEncoder

__all__ = [
    "AttentionBlock",
    "ClassificationHead",
    "LSTMEncoder",
    "TLBCell",
    "TLBEncoder",
    "TransformerEncoder",
]
