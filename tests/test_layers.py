"""`run_layer_test` (tests/layer_test_case.py) on every engine layer and every shipped tokenizer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layer_test_case import run_layer_test, to_numpy
from tlbkit.layers import AttentionBlock, ClassificationHead, LSTMEncoder, TLBCell, TLBEncoder, TransformerEncoder
from tlbkit_tasks.common import TokenEmbedding
from tlbkit_tasks.text import ByteConvTokenizer, ByteTokenizer, VocabularyTokenizer
from tlbkit_tasks.timeseries import SeriesLinearTokenizer, SeriesPatchTokenizer
from tlbkit_tasks.vision import ConvStemTokenizer, PatchTokenizer

DIM, CHUNK, LATENTS = 16, 4, 3


def tokens(batch=2, length=3 * CHUNK - 1, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, DIM)).astype("float32")


def padding_mask(batch=2, length=3 * CHUNK - 1):
    mask = np.ones((batch, length), bool)
    mask[1, -5:] = False
    return mask


def padding_is_ignored(key="sequence", length=3 * CHUNK - 1):
    """A mask check: the outputs at real positions do not depend on what the padded positions hold."""

    def check(layer):
        mask = padding_mask(length=length)
        x = tokens(length=length)
        noisy = x.copy()
        noisy[~mask] = 100.0
        a, b = layer(x, padding_mask=mask), layer(noisy, padding_mask=mask)
        real = lambda out: to_numpy(out[key])[:, :length][mask]  # noqa: E731 -- TLB pads to whole chunks
        np.testing.assert_allclose(real(a), real(b), atol=1e-4)
        np.testing.assert_allclose(to_numpy(a["state"])[1], to_numpy(b["state"])[1], atol=1e-4)

    return check


def cell(**kwargs):
    return TLBCell(dim=DIM, num_heads=2, num_layers=2, r=1, num_latents=LATENTS, dropout=0.1, **kwargs)


# === Engine layers ===
@pytest.mark.parametrize("norm_mode", ["pre", "qkv"])
def test_attention_block(norm_mode):
    run_layer_test(lambda **kw: AttentionBlock(DIM, num_heads=2, norm_mode=norm_mode, dropout=0.1, **kw), tokens())


def test_attention_block_cross_attention():
    run_layer_test(lambda **kw: AttentionBlock(DIM, num_heads=2, cross_attention=True, **kw), tokens(),
                   call_kwargs={"context": tokens(length=5, seed=1)}, symbolic=False)


@pytest.mark.parametrize("layout", ["paper", "keras_io"])
def test_tlb_cell(layout):
    state = np.random.default_rng(1).normal(size=(2, LATENTS, DIM)).astype("float32")
    run_layer_test(lambda **kw: cell(layout=layout, **kw), (tokens(length=CHUNK), state),
                   call_kwargs={"mask": padding_mask(length=CHUNK)}, symbolic=False)


def test_tlb_encoder():
    run_layer_test(lambda **kw: TLBEncoder(cell(**kw), chunk_size=CHUNK, **kw), tokens(),
                   call_kwargs={"padding_mask": padding_mask()}, mask_check=padding_is_ignored())


def test_transformer_encoder():
    run_layer_test(lambda **kw: TransformerEncoder(DIM, num_heads=2, num_layers=2, **kw), tokens(),
                   call_kwargs={"padding_mask": padding_mask()}, mask_check=padding_is_ignored())


def test_lstm_encoder():
    run_layer_test(lambda **kw: LSTMEncoder(DIM, num_layers=2, **kw), tokens(),
                   call_kwargs={"padding_mask": padding_mask()})


@pytest.mark.parametrize("pooling", ["state", "last_chunk", "mean"])
def test_classification_head(pooling):
    encoded = TLBEncoder(cell(), chunk_size=CHUNK)(tokens(), padding_mask=padding_mask())
    encoded = {k: to_numpy(v) for k, v in encoded.items()}
    run_layer_test(lambda **kw: ClassificationHead(5, pooling=pooling, chunk_size=CHUNK, dropout=0.1, **kw),
                   encoded, symbolic=False, mixed_output_dtype="float32")


def test_mean_pooling_reads_every_real_token_and_refuses_to_stream():
    rng = np.random.default_rng(3)
    seq = rng.normal(size=(2, 6, DIM)).astype("float32")
    mask = np.ones((2, 6), bool)
    mask[1, 4:] = False
    head = ClassificationHead(3, pooling="mean", norm=False)
    encoded = {"sequence": seq, "mask": mask, "state": seq[:, :2]}
    noisy = {**encoded, "sequence": np.where(mask[..., None], seq, 100.0).astype("float32")}
    np.testing.assert_allclose(to_numpy(head(encoded)), to_numpy(head(noisy)), atol=1e-5)  # padding ignored
    np.testing.assert_allclose(to_numpy(head.pool(encoded))[1], seq[1, :4].mean(0), atol=1e-5)
    from tlbkit.models import SequenceClassifier

    model = SequenceClassifier(TLBEncoder(cell(), chunk_size=CHUNK), head)
    with pytest.raises(ValueError, match="pooling='mean'"):
        model.step(tokens()[:, :CHUNK], model.init_state(2))


# === Shipped tokenizers ===
def ids(batch=2, length=9, vocab=12):
    x = np.random.default_rng(0).integers(1, vocab, size=(batch, length)).astype("int32")
    x[1, -3:] = 0
    return x


def test_token_embedding():
    layer = run_layer_test(lambda **kw: TokenEmbedding(12, DIM, max_length=16, pad_id=0, **kw), ids())
    np.testing.assert_array_equal(to_numpy(layer(ids())["mask"]), ids() != 0)


def test_token_embedding_streams_exactly():
    """recall_cpu.gin's tokenizer: tlbkit-stream feeds it chunk by chunk, positions continued."""
    from tlbkit import testing

    model = testing.small_classifier(TokenEmbedding(12, DIM, max_length=16), dim=DIM, chunk_size=CHUNK)
    assert testing.run_streaming_test(model, ids(length=15)) <= 1e-4  # 3 chunks of 4 ids and a partial one


def test_byte_tokenizer():
    texts = tf.constant(["héllo wörld", "", "ab"])
    layer = run_layer_test(lambda **kw: ByteTokenizer(DIM, max_length=8, **kw), texts)
    np.testing.assert_array_equal(to_numpy(layer(texts)["mask"]).sum(1), [8, 0, 2])


def test_byte_conv_tokenizer():
    texts = tf.constant(["héllo wörld, a longer review", "", "abc"])
    layer = run_layer_test(lambda **kw: ByteConvTokenizer(DIM, max_length=32, filters=(8,), **kw), texts)
    out = layer(texts)
    assert tuple(out["tokens"].shape) == (3, 8, DIM)  # 30 bytes -> ceil(30/2)=15 -> 8 tokens
    np.testing.assert_array_equal(to_numpy(out["mask"]).sum(1), [8, 0, 1])
    assert np.abs(to_numpy(out["tokens"])[1]).max() == 0  # an empty text gives only (zeroed) padding


def test_vocabulary_tokenizer():
    texts = tf.constant(["the cat sat", "a dog", ""])
    layer = run_layer_test(
        lambda **kw: VocabularyTokenizer(DIM, max_length=6, vocabulary=["the", "cat", "dog"], **kw), texts)
    np.testing.assert_array_equal(to_numpy(layer(texts)["mask"]).sum(1), [3, 2, 0])


def images(size=16, batch=2):
    return np.random.default_rng(0).uniform(size=(batch, size, size, 3)).astype("float32")


def test_patch_tokenizer():
    run_layer_test(lambda **kw: PatchTokenizer(16, 4, DIM, **kw), images())


@pytest.mark.parametrize("options", [{}, {"downsample": "stride", "norm": "batch", "activation": "gelu"}])
def test_conv_stem_tokenizer(options):
    run_layer_test(lambda **kw: ConvStemTokenizer(16, DIM, filters=(8,), **options, **kw), images())


def series_inputs(batch=2, length=11, channels=3):
    values = np.random.default_rng(0).normal(size=(batch, length, channels)).astype("float32")
    mask = np.ones((batch, length), bool)
    mask[1, 7:] = False
    return {"values": values, "mask": mask}


@pytest.mark.parametrize("make", [
    lambda **kw: SeriesLinearTokenizer(DIM, **kw),
    lambda **kw: SeriesPatchTokenizer(DIM, patch_length=3, **kw),
])
def test_series_tokenizers(make):
    layer = run_layer_test(make, series_inputs())
    out = layer(series_inputs())
    assert to_numpy(out["mask"])[1].sum() < to_numpy(out["mask"])[0].sum()  # the padded series has fewer tokens


def test_layer_test_catches_a_layer_whose_reload_computes_something_else():
    class Forgetful(keras.layers.Layer):
        def __init__(self, scale=2.0, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w * self.scale

        def get_config(self):
            return super().get_config()  # forgets `scale`: a reload computes x * w * 2.0 whatever it was

    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        run_layer_test(lambda **kw: Forgetful(scale=3.0, **kw), tokens(), symbolic=False, fit=False,
                       mixed_precision=False)
