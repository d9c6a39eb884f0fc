"""The proof that information crosses chunks through the latent bottleneck."""

import keras
import pytest

from tlbkit_tasks.common import TokenEmbedding
from tlbkit_tasks.synthetic.long_range_recall import make_recall_arrays
from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder
from tlbkit.models import SequenceClassifier

LENGTH, CHUNK, CLASSES, VOCAB = 32, 8, 4, 16  # 4 chunks; the label is token 0


def train_recall(carry_state, epochs):
    keras.utils.set_random_seed(0)
    x, y = make_recall_arrays(2048, LENGTH, CLASSES, VOCAB, seed=0)
    xv, yv = make_recall_arrays(512, LENGTH, CLASSES, VOCAB, seed=1)
    cell = TLBCell(dim=32, num_heads=2, num_layers=2, r=1, num_latents=4, dropout=0.0)
    model = SequenceClassifier(
        TLBEncoder(cell, chunk_size=CHUNK, carry_state=carry_state),
        ClassificationHead(CLASSES, pooling="state"),  # reads only after the last chunk
        tokenizer=TokenEmbedding(VOCAB, 32, LENGTH),
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)  # 32 steps per epoch
    return model.evaluate(xv, yv, verbose=0, return_dict=True)["accuracy"]


@pytest.mark.slow
def test_tlb_learns_long_range_recall_and_ablation_cannot():
    assert train_recall(carry_state=True, epochs=3) >= 0.95  # 96 CPU steps
    chance = 1.0 / CLASSES
    assert train_recall(carry_state=False, epochs=3) <= chance + 0.1
