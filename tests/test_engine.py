"""Core engine tests. They run under the current KERAS_BACKEND; test_backends.py reruns them under JAX."""

import os
import zipfile

import numpy as np
import pytest

import keras
from keras import ops

from tlbkit.layers import AttentionBlock, ClassificationHead, LSTMEncoder, TLBCell, TLBEncoder, TransformerEncoder
from tlbkit.layers import attention_math
from tlbkit.models import SequenceClassifier

DIM, CHUNK, LATENTS = 16, 4, 3


def make_encoder(layout="paper", initial_state="learned", dropout=0.0, **kw):
    cell_kw = dict(dim=DIM, num_heads=2, num_layers=2, r=1, num_latents=LATENTS, dropout=dropout,
                   initial_state=initial_state, layout=layout)
    cell_kw.update(kw)
    return TLBEncoder(TLBCell(**cell_kw), chunk_size=CHUNK)


@pytest.fixture(scope="module")
def encoder():
    keras.utils.set_random_seed(1)
    enc = make_encoder()
    enc(np.zeros((1, 4 * CHUNK, DIM), "float32"))
    return enc


def tokens(batch=2, length=4 * CHUNK, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, DIM)).astype("float32")


def np_(x):
    return keras.ops.convert_to_numpy(x)


def keras_config_text(path):
    """The `config.json` of a `.keras` archive, as text."""
    with zipfile.ZipFile(path) as archive:
        return archive.read("config.json").decode()


def saved_with_old_names(model, folder, renames):
    """`model` saved to `folder`/old.keras with each `{new text: old text}` of its config.json put back, as a
    file written before a rename holds it (each new text must occur once)."""
    model.save(folder / "new.keras")
    with zipfile.ZipFile(folder / "new.keras") as src, zipfile.ZipFile(folder / "old.keras", "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                text = data.decode()
                for new, old in renames.items():
                    assert text.count(new) == 1, new
                    text = text.replace(new, old)
                data = text.encode()
            dst.writestr(item, data)
    return folder / "old.keras"


# === Shapes and dtypes ===
def test_encoder_output_shapes(encoder):
    out = encoder(tokens(length=4 * CHUNK - 1))
    assert tuple(out["sequence"].shape) == (2, 4 * CHUNK, DIM)
    assert tuple(out["mask"].shape) == (2, 4 * CHUNK)
    assert tuple(out["state"].shape) == (2, LATENTS, DIM)
    assert tuple(out["states"].shape) == (2, 4, LATENTS, DIM)
    assert not np_(out["mask"])[:, -1].any() and np_(out["mask"])[:, :-1].all()


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_public_layers_shapes_and_dtypes(policy):
    keras.config.set_dtype_policy(policy)
    compute = "float32" if policy == "float32" else "bfloat16"
    x = tokens(length=2 * CHUNK)
    block = AttentionBlock(DIM, num_heads=2)
    assert block(x).shape == x.shape and block(x).dtype == compute
    cell = TLBCell(dim=DIM, num_heads=2, num_layers=2, r=2, num_latents=LATENTS)
    out, state = cell(x[:, :CHUNK], cell.get_initial_state(2))
    assert tuple(out.shape) == (2, CHUNK, DIM) and tuple(state.shape) == (2, LATENTS, DIM)
    assert out.dtype == compute and state.dtype == compute
    for enc in (TLBEncoder(cell, CHUNK), TransformerEncoder(DIM, num_heads=2, num_layers=1), LSTMEncoder(DIM)):
        res = enc(x)
        assert res["sequence"].shape[-1] == DIM and res["sequence"].dtype == compute
        for pooling in ("state", "last_chunk", "mean"):
            logits = ClassificationHead(5, pooling=pooling, chunk_size=CHUNK)(res)
            assert tuple(logits.shape) == (2, 5) and logits.dtype == "float32"


def test_learned_and_zero_initial_state():
    zero = make_encoder(initial_state="zeros")
    np.testing.assert_array_equal(np_(zero.init_state(3)), 0.0)
    learned = make_encoder(initial_state="learned")
    learned(tokens())
    s = np_(learned.init_state(3))
    assert s.shape == (3, LATENTS, DIM) and np.abs(s).sum() > 0
    np.testing.assert_allclose(s[0], s[2])


# === Recurrence semantics ===
def test_causality(encoder):
    x = tokens()
    changed = x.copy()
    changed[:, 2 * CHUNK :] = tokens(seed=5)[:, 2 * CHUNK :]  # chunks 2 and 3 change
    a, b = encoder(x), encoder(changed)
    np.testing.assert_allclose(np_(a["sequence"])[:, : 2 * CHUNK], np_(b["sequence"])[:, : 2 * CHUNK], atol=1e-6)
    np.testing.assert_allclose(np_(a["states"])[:, :2], np_(b["states"])[:, :2], atol=1e-6)
    assert np.abs(np_(a["states"])[:, 2] - np_(b["states"])[:, 2]).max() > 1e-3


def test_state_carries_information_across_chunks(encoder):
    x = tokens()
    changed = x.copy()
    changed[:, :CHUNK] = tokens(seed=6)[:, :CHUNK]  # only chunk 0 changes
    a, b = encoder(x), encoder(changed)
    assert np.abs(np_(a["sequence"])[:, -CHUNK:] - np_(b["sequence"])[:, -CHUNK:]).max() > 1e-4


def test_streaming_equals_whole_sequence(encoder):
    x = tokens(length=4 * CHUNK - 2)  # last chunk is partial
    whole = encoder(x)
    state = encoder.init_state(2)
    outs = []
    for start in range(0, x.shape[1], CHUNK):
        out, state = encoder.step(x[:, start : start + CHUNK], state)
        outs.append(np_(out))
    streamed = np.concatenate(outs, axis=1)
    np.testing.assert_allclose(streamed, np_(whole["sequence"])[:, : x.shape[1]], atol=1e-5)
    np.testing.assert_allclose(np_(state), np_(whole["state"]), atol=1e-5)


def test_padding_does_not_change_outputs(encoder):
    x = tokens(length=3 * CHUNK + 2)
    mask = np.ones(x.shape[:2], bool)
    mask[0, 5:] = False  # row 0: 5 real tokens, the rest padding
    noisy = x.copy()
    noisy[0, 5:] = np.random.default_rng(9).normal(size=noisy[0, 5:].shape) * 10
    a, b = encoder(x, padding_mask=mask), encoder(noisy, padding_mask=mask)
    np.testing.assert_allclose(np_(a["sequence"]), np_(b["sequence"]), atol=1e-5)
    np.testing.assert_allclose(np_(a["state"]), np_(b["state"]), atol=1e-5)
    # The state after the last real chunk is kept through the all-padding chunks.
    np.testing.assert_allclose(np_(a["states"])[0, 1], np_(a["state"])[0], atol=1e-6)
    # Same as feeding the 5 real tokens alone.
    alone = encoder(x[:1, :5])
    np.testing.assert_allclose(np_(alone["state"])[0], np_(a["state"])[0], atol=1e-5)


def test_carry_state_false_cuts_the_slow_stream():
    enc = make_encoder(initial_state="learned")
    enc(tokens())
    cut = TLBEncoder(enc.cell, chunk_size=CHUNK, carry_state=False)
    x = tokens()
    changed = x.copy()
    changed[:, :CHUNK] = tokens(seed=6)[:, :CHUNK]
    a, b = cut(x), cut(changed)
    np.testing.assert_allclose(np_(a["state"]), np_(b["state"]), atol=1e-6)
    np.testing.assert_allclose(np_(a["sequence"])[:, CHUNK:], np_(b["sequence"])[:, CHUNK:], atol=1e-6)


def test_dropout_is_active_in_training_and_deterministic_in_inference():
    enc = make_encoder(dropout=0.3, attention_dropout=0.3)
    x = tokens()
    a = np_(enc(x, training=True)["state"])
    b = np_(enc(x, training=True)["state"])
    assert np.abs(a - b).max() > 1e-4
    np.testing.assert_allclose(np_(enc(x)["state"]), np_(enc(x)["state"]))


def test_training_and_inference_loops_agree(encoder):
    # Without dropout the differentiable (training) loop and the XLA-compilable inference loop compute
    # the same function.
    x = tokens(length=3 * CHUNK + 1)
    a, b = encoder(x, training=True), encoder(x, training=False)
    for key in ("sequence", "state", "states"):
        np.testing.assert_allclose(np_(a[key]), np_(b[key]), atol=1e-6)


def test_serial_loop_agrees(encoder):
    serial = TLBEncoder(encoder.cell, chunk_size=CHUNK, parallel_iterations=1)
    x = tokens()
    for training in (False, True):
        np.testing.assert_allclose(np_(serial(x, training=training)["sequence"]),
                                   np_(encoder(x, training=training)["sequence"]), atol=1e-6)


def test_unrolled_loop_agrees(encoder):
    unrolled = TLBEncoder(encoder.cell, chunk_size=CHUNK, unroll=True)
    x = tokens()
    np.testing.assert_allclose(np_(unrolled(x)["sequence"]), np_(encoder(x)["sequence"]), atol=1e-6)


def test_attention_scores_are_distributions(encoder):
    out = encoder(tokens(), return_attention_scores=True)
    att = np_(out["attention"])
    assert att.shape == (2, 4, 2, LATENTS, CHUNK)
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)


# === Hand-written gradients ===
def gradients(loss_fn, variables):
    """Gradients of `loss_fn()` w.r.t. Keras variables, under TensorFlow or JAX."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn()
        return [np_(g) for g in tape.gradient(loss, [v.value for v in variables])]
    if backend == "jax":
        import jax

        def loss_of(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return loss_fn()

        return [np_(g) for g in jax.grad(loss_of)([v.value for v in variables])]
    pytest.skip(f"no gradient helper for the {backend} backend")


@pytest.mark.parametrize("num_heads", [1, 2])
@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("gelu_approximate", [False, True])
def test_block_gradient_matches_automatic_differentiation(num_heads, cross, gelu_approximate):
    rng = np.random.default_rng(0)
    block = AttentionBlock(DIM, num_heads=num_heads, norm_mode="qkv", gelu_approximate=gelu_approximate)
    block.build((None, None, DIM))
    for v in block.weights:  # non-trivial LayerNorm affines and biases
        v.assign(rng.normal(size=v.shape).astype("float32") * 0.3 + (1.0 if "scale" in v.path else 0.0))
    x = keras.Variable(rng.normal(size=(3, 5, DIM)).astype("float32"), name="x")
    c = keras.Variable(rng.normal(size=(3, 4, DIM)).astype("float32"), name="c")
    keys = 4 if cross else 5
    mask = rng.uniform(size=(3, keys)) > 0.3
    mask[:, 0] = True
    attention_keep = rng.uniform(size=(3, num_heads, 5, keys)) > 0.2
    ffn_keep = rng.uniform(size=(3, 5, DIM)) > 0.2
    upstream = rng.normal(size=(3, 5, DIM)).astype("float32")
    spec = attention_math.BlockSpec(num_heads, 1e-5, gelu_approximate, cross, attention_dropout=0.2, dropout=0.2)
    variables = [x] + ([c] if cross else []) + list(block.trainable_weights)
    results = []
    for fn in (attention_math.block_forward, attention_math.block_apply):

        def loss():
            weights = block.folded_weights("cross" if cross else "self")
            out, _ = fn(spec, x.value, c.value if cross else None, weights, mask, attention_keep, ffn_keep)
            return ops.sum(out * upstream)

        results.append((np_(loss()), gradients(loss, variables)))
    (loss_auto, grads_auto), (loss_manual, grads_manual) = results
    np.testing.assert_allclose(loss_manual, loss_auto, rtol=1e-6)
    for v, a, m in zip(variables, grads_auto, grads_manual):
        assert np.abs(a).max() > 0, v.path
        np.testing.assert_allclose(m, a, atol=2e-5 * np.abs(a).max(), err_msg=v.path)


@pytest.mark.parametrize("policy, tolerance", [("float32", 1e-4), ("mixed_bfloat16", 3e-2)])
def test_encoder_training_gradients_match_automatic_differentiation(policy, tolerance):
    # The whole recurrence (padding, dropout masks, slow updates across chunks): the weight
    # gradients of the training loop equal those of the same loop differentiated automatically
    # (custom_gradient=False; in mixed precision, to bfloat16 rounding).
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(3)
    x = tokens(length=3 * CHUNK + 2)
    mask = np.ones(x.shape[:2], bool)
    mask[1, -5:] = False
    encoders = [make_encoder(layout="keras_io", norm_mode="qkv", dropout=0.2, attention_dropout=0.2,
                             custom_gradient=custom) for custom in (True, False)]
    for enc in encoders:
        enc(x)
    encoders[1].set_weights(encoders[0].get_weights())

    def generators(enc):
        return [enc.cell.seed_generator] + [b.seed_generator for b in enc.cell.fast_blocks + [enc.cell.slow_block]]

    seeds = [np_(g.state) for g in generators(encoders[0])]

    def run(enc):
        for g, value in zip(generators(enc), seeds):  # the same dropout masks for both runs
            g.state.assign(value)

        def loss():
            out = enc(x, padding_mask=mask, training=True)
            return ops.cast(ops.sum(ops.square(out["sequence"])) + ops.sum(out["state"]), "float32")

        return gradients(loss, list(enc.trainable_weights))

    manual, auto = run(encoders[0]), run(encoders[1])
    for v, a, m in zip(encoders[0].trainable_weights, auto, manual):
        assert np.isfinite(m).all(), v.path
        np.testing.assert_allclose(m, a, atol=tolerance * max(np.abs(a).max(), 1e-3), err_msg=v.path)


# === Keras-io mode ===
def test_keras_io_layout_structure_and_parameters():
    cell = TLBCell(dim=64, num_heads=1, key_dim=64, num_layers=4, r=2, num_latents=8, dropout=0.2,
                   attention_dropout=0.2, layout="keras_io", norm_mode="qkv", initial_state="zeros")
    enc = TLBEncoder(cell, chunk_size=8)
    model = SequenceClassifier(enc, ClassificationHead(10, pooling="last_chunk", chunk_size=8, norm=False))
    model(np.zeros((1, 144, 64), "float32"))
    assert len(cell.fast_blocks) == 6
    assert cell.schedule == [(0, "self"), (0, "cross"), (1, "self"), (2, "self"), (2, "cross"),
                             (3, "self"), (4, "self"), (4, "cross"), (5, "self")]
    for b in cell.fast_blocks + [cell.slow_block]:
        assert b.count_params() == 50_240
    # keras-io example: 7 x 50,240 attention blocks + head 650 (+ patch embedding 12,480 in the vision plugin).
    assert model.count_params() == 7 * 50_240 + 650
    assert tuple(ops.shape(enc.init_state(2))) == (2, 8, 64)
    np.testing.assert_array_equal(np_(enc.init_state(2)), 0.0)


def test_the_old_layout_name_seed_loads_as_keras_io_with_the_same_outputs(tmp_path):
    # `layout="seed"` was renamed "keras_io": a .keras file (or config) holding the old name loads as the new
    # layout, warns, gives the same outputs and is saved again with the new name.
    keras.utils.set_random_seed(0)
    model = SequenceClassifier(make_encoder(layout="keras_io", norm_mode="qkv", initial_state="zeros"),
                               ClassificationHead(3))
    x = tokens()
    before = np_(model(x))
    old_file = saved_with_old_names(model, tmp_path, {'"layout": "keras_io"': '"layout": "seed"'})
    with pytest.warns(FutureWarning, match="`layout='seed'` was renamed 'keras_io'"):
        loaded = keras.saving.load_model(old_file)
    cell = loaded.encoder.cell
    assert cell.layout == "keras_io" and cell.get_config()["layout"] == "keras_io"
    assert cell.schedule == model.encoder.cell.schedule
    np.testing.assert_allclose(np_(loaded(x)), before, atol=1e-6)
    loaded.save(tmp_path / "again.keras")
    assert '"layout": "keras_io"' in keras_config_text(tmp_path / "again.keras")


def test_paper_layout_interleaves_cross_attention():
    cell = TLBCell(dim=DIM, num_heads=2, num_layers=4, r=2, num_latents=5)
    assert [k for _, k in cell.schedule] == ["self", "self", "cross", "self", "self", "cross"]
    assert cell.prefix_length == 2
    no_read = TLBCell(dim=DIM, num_heads=2, num_layers=4, r=2, num_latents=5, read_slow=False)
    assert all(k == "self" for _, k in no_read.schedule) and len(no_read.fast_blocks) == 4


# === Serialization ===
def test_keras_save_load_round_trip(tmp_path, encoder):
    model = SequenceClassifier(encoder, ClassificationHead(3))
    x = tokens()
    before = np_(model(x))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np_(loaded(x)), before, atol=1e-6)


def test_a_saved_probe_records_the_eager_outputs_and_checks_a_reload(tmp_path, encoder):
    # Under JAX the probe outputs come from one jitted call (an eager one runs op by op): the same numbers,
    # also for the tracked dict a model keeps its probe in; a model whose weights changed is caught.
    from tlbkit import saving

    model = SequenceClassifier(encoder, ClassificationHead(3))
    x = tokens(batch=3, seed=11)
    model(x)
    saving.set_probe(model, x)
    path = str(tmp_path / "probe.keras")
    saving.save_model(model, path)
    probe, recorded = saving.read_probe(path)
    assert len(recorded) == 1 and recorded[0].shape == (saving.PROBE_EXAMPLES, 3)
    np.testing.assert_allclose(recorded[0], np_(model(x[:saving.PROBE_EXAMPLES])), atol=1e-5)
    saving.load_model(path)  # passes: the reload computes the recorded outputs
    dict_model = DictInputs(model)
    dict_model({"tokens": x})
    saving.set_probe(dict_model, {"tokens": x})
    np.testing.assert_allclose(saving._outputs(dict_model, saving.get_probe(dict_model))[0],
                               np_(model(x[:saving.PROBE_EXAMPLES])), atol=1e-5)
    head = model.head.dense.kernel
    head.assign(-np_(head))  # (not `+ 1`: after the head's LayerNorm, that shifts every logit alike)
    with pytest.raises(saving.OutputsChangedError, match="other outputs on the probe input"):
        saving.check_outputs(path, model)


class DictInputs(keras.Model):
    """A model taking `{"tokens": x}`: its probe is kept as Keras' tracked dict."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, inputs, training=False):
        return self.inner(inputs["tokens"], training=training)


def test_a_checkpoint_naming_the_old_loss_loads_compiled_with_class_crossentropy(tmp_path):
    # The loss was registered as tlbkit>SparseCategoricalCrossentropy before its rename to ClassCrossentropy; a
    # run's checkpoints hold it in their compile config, and load compiled, with the same loss.
    from tlbkit.losses import ClassCrossentropy

    model = SequenceClassifier(make_encoder(), ClassificationHead(3))
    model.compile(optimizer="sgd", loss=ClassCrossentropy(label_smoothing=0.1))
    x, y = tokens(), np.array([0, 2])
    logits = np_(model(x))
    old_file = saved_with_old_names(model, tmp_path, {'"class_name": "ClassCrossentropy"':
                                                      '"class_name": "SparseCategoricalCrossentropy"',
                                                      '"tlbkit>ClassCrossentropy"': '"tlbkit>SparseCategoricalCrossentropy"'})
    assert "SparseCategoricalCrossentropy" in keras_config_text(old_file)
    loaded = keras.saving.load_model(old_file)
    assert type(loaded.loss) is ClassCrossentropy and loaded.loss.label_smoothing == 0.1
    np.testing.assert_allclose(float(loaded.loss(y, logits)), float(model.loss(y, logits)), rtol=1e-6)
    loaded.save(tmp_path / "again.keras")
    assert "SparseCategoricalCrossentropy" not in keras_config_text(tmp_path / "again.keras")


# === Errors ===
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dim=10, num_heads=4), "dim=10 is not divisible by num_heads=4"),
        (dict(dim=16, r=5, num_layers=4), "`r` must be between 1 and 4"),
        (dict(dim=16, r=0), "`r` must be"),
        (dict(dim=16, num_latents=0), "num_latents"),
        (dict(dim=16, dropout=1.5), "`dropout` must be in [0, 1)"),
        (dict(dim=16, layout="fancy"), "'paper', 'keras_io'"),
        (dict(dim=16, initial_state="random"), "'zeros', 'learned'"),
    ],
)
def test_bad_cell_hyperparameters(kwargs, message):
    with pytest.raises(ValueError) as e:
        TLBCell(**kwargs)
    assert message in str(e.value)


def test_bad_chunk_size_and_widths():
    cell = TLBCell(dim=DIM, num_heads=2)
    with pytest.raises(ValueError, match="chunk_size"):
        TLBEncoder(cell, chunk_size=0)
    with pytest.raises(ValueError, match="dim=16"):
        TLBEncoder(cell, chunk_size=4)(np.zeros((1, 8, 8), "float32"))
    with pytest.raises(ValueError, match="chunk_size"):
        ClassificationHead(3, pooling="last_chunk")


def test_backend_is_the_one_requested():
    # tests/test_backends.py reruns this file under JAX: this proves the rerun did not fall back.
    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")


# === Ensembles ===
def make_ensemble(size=2, seed=3, num_layers=2):
    from tlbkit.models import Ensemble

    keras.utils.set_random_seed(seed)
    members = [SequenceClassifier(make_encoder(num_layers=num_layers), ClassificationHead(3), name=f"member_{i}")
               for i in range(size)]
    ensemble = Ensemble(members)
    ensemble(tokens())
    return ensemble


@pytest.fixture(scope="module")
def ensemble():
    return make_ensemble()


def test_ensemble_averages_at_inference_and_gives_each_member_its_slice_in_training(ensemble):
    x = tokens(batch=4, seed=1)
    members = [np_(m(x)) for m in ensemble.members]
    assert np.abs(members[0] - members[1]).max() > 1e-3  # members start from their own initial weights
    np.testing.assert_allclose(np_(ensemble(x)), np.mean(members, axis=0), atol=1e-6)
    trained = np_(ensemble(x, training=True))  # no dropout: a member's training logits = its inference logits
    assert trained.shape == (4, 3)
    np.testing.assert_allclose(trained[:2], np_(ensemble.members[0](x[:2])), atol=1e-5)
    np.testing.assert_allclose(trained[2:], np_(ensemble.members[1](x[2:])), atol=1e-5)
    np.testing.assert_allclose(np_(ensemble(x[:3], training=True))[2:], np_(ensemble.members[1](x[1:3]))[1:], atol=1e-5)
    with pytest.raises(ValueError, match="a training batch of 1 examples cannot be shared among the ensemble's 2"):
        ensemble(x[:1], training=True)


def test_ensemble_fit_moves_every_member():
    ensemble = make_ensemble(seed=4, num_layers=1)  # one layer: half the graph to trace (the cost of this test)
    # jit_compile=False: what is checked is that every member gets gradients; XLA compiling the three
    # members took 87 s of the suite under TensorFlow (JAX always jits).
    ensemble.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                     jit_compile=False)
    before = [np_(m.head.dense.kernel).copy() for m in ensemble.members]
    logs = ensemble.fit(tokens(batch=4, seed=5), np.array([0, 1, 2, 0]), epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][0])
    assert all(np.abs(np_(m.head.dense.kernel) - b).max() > 1e-4 for m, b in zip(ensemble.members, before))


def test_ensemble_streaming_equals_whole_sequence(ensemble):
    x = tokens(length=3 * CHUNK, seed=6)
    pairs = ensemble.tokenize(x)
    state = ensemble.init_state(2)
    for start in range(0, x.shape[1], CHUNK):
        logits, state = ensemble.step([t[:, start:start + CHUNK] for t, _ in pairs], state)
    np.testing.assert_allclose(np_(logits), np_(ensemble(x)), atol=1e-5)
    with pytest.raises(ValueError, match="one token chunk and one state per member"):
        ensemble.step([x[:, :CHUNK]], state)


def test_ensemble_save_load_round_trip(tmp_path, ensemble):
    from tlbkit import saving
    from tlbkit.models import Ensemble

    x = tokens(seed=7)
    path = str(tmp_path / "ensemble.keras")
    ensemble.save(path)
    loaded = saving.load_model(path)  # fails unless every saved weight came back
    assert isinstance(loaded, Ensemble) and loaded.size == 2
    np.testing.assert_allclose(np_(loaded(x)), np_(ensemble(x)), atol=1e-6)
    np.testing.assert_allclose(np_(loaded.members[1](x)), np_(ensemble.members[1](x)), atol=1e-6)


def test_ensemble_needs_distinct_members(encoder):
    from tlbkit.models import Ensemble

    member = SequenceClassifier(encoder, ClassificationHead(3))
    with pytest.raises(ValueError, match="at least 2 members; got 1"):
        Ensemble([member])
    with pytest.raises(ValueError, match="distinct"):
        Ensemble([member, member])
