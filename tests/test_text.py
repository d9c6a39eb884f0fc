"""Text plugins: byte and vocabulary tokenizers, ListOps generator, IMDB loaders, binaries end to end."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from binaries import assert_eval_reproduces_metrics, run_binary
from layer_test_case import assert_model_reloads
from tlbkit_tasks.text import ByteTokenizer, VocabularyTokenizer, imdb_folder, imdb_reviews, listops
from tlbkit_tasks.text import text_ops
from tlbkit_tasks.text.listops import OPERATORS, VOCABULARY, generate_listops
from tlbkit import pipeline


def np_(x):
    return keras.ops.convert_to_numpy(x)


# === Byte tokenizer ===
def test_byte_tokenizer_shapes_masks_and_unicode():
    tok = ByteTokenizer(dim=8, max_length=16)
    out = tok(tf.constant(["héllo", "", "ab"]))
    assert tuple(out["tokens"].shape) == (3, 6, 8)  # 'é' is 2 bytes
    np.testing.assert_array_equal(np_(out["mask"]).sum(1), [6, 0, 2])
    ids = np_(tok.encode(tf.constant(["héllo", "ab"])))
    np.testing.assert_array_equal(ids[0], np.frombuffer("héllo".encode(), np.uint8) + 1)
    np.testing.assert_array_equal(ids[1], [98, 99, 0, 0, 0, 0])


def test_byte_tokenizer_truncates_as_configured_and_empty_batch():
    text = "0123456789" * 3 + "é"
    end = np_(ByteTokenizer(4, max_length=8).encode(tf.constant([text])))[0]
    start = np_(ByteTokenizer(4, max_length=8, truncation="start").encode(tf.constant([text])))[0]
    np.testing.assert_array_equal(end, np.frombuffer(b"01234567", np.uint8) + 1)
    np.testing.assert_array_equal(start, np.frombuffer(text.encode()[-8:], np.uint8) + 1)
    empty = ByteTokenizer(4, max_length=8)(tf.constant(["", ""]))
    assert tuple(empty["mask"].shape) == (2, 1) and not np_(empty["mask"]).any()
    with pytest.raises(ValueError, match="truncation"):
        ByteTokenizer(4, truncation="middle")


def test_encode_bytes_per_example_in_tf_data_matches_layer():
    texts = ["a", "ünïcode", ""]
    ds = tf.data.Dataset.from_tensor_slices(texts).map(lambda t: text_ops.encode_bytes(t, 5))
    batch = np_(next(iter(ds.padded_batch(3))))
    tok = ByteTokenizer(4, max_length=5)
    np.testing.assert_array_equal(batch, np_(tok.encode(tf.constant(texts))))
    np.testing.assert_array_equal(np_(tok(batch)["mask"]), batch != 0)  # int ids are taken as they are


# === Vocabulary tokenizer ===
def test_vocabulary_built_from_corpus_with_pad_and_oov():
    tok = VocabularyTokenizer(
        dim=8, max_length=4, corpus=["The cat sat.", "the DOG<br />ran!", "the the"], strip_punctuation=True
    )
    assert tok.vocabulary[0] == "the" and "br" not in tok.vocabulary and "cat" in tok.vocabulary
    ids = np_(tok.encode(tf.constant(["The zebra cat", ""])))
    assert ids.shape == (2, 3)
    np.testing.assert_array_equal(ids[0], [2, 1, 2 + tok.vocabulary.index("cat")])
    np.testing.assert_array_equal(ids[1], [0, 0, 0])
    assert tok.vocabulary_size == len(tok.vocabulary) + 2


def test_vocabulary_characters_truncation_file_and_errors(tmp_path):
    chars = VocabularyTokenizer(8, max_length=3, vocabulary=["é", "a"], split="character", truncation="start")
    np.testing.assert_array_equal(np_(chars.encode(tf.constant(["xaéé"])))[0], [3, 2, 2])
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("[MAX\n]\n3\n")
    listops_tok = VocabularyTokenizer(8, max_length=8, vocabulary=str(vocab_file), lowercase=False)
    np.testing.assert_array_equal(np_(listops_tok.encode(tf.constant(["[MAX 3 7 ]"])))[0], [2, 4, 1, 3])
    with pytest.raises(ValueError, match="vocabulary"):
        VocabularyTokenizer(8)
    config = listops_tok.get_config()
    assert config["vocabulary"] == ["[MAX", "]", "3"] and "corpus" not in config


@pytest.mark.parametrize(
    "make", [lambda: ByteTokenizer(16, 32), lambda: VocabularyTokenizer(16, 32, corpus=["a b c"])]
)
@pytest.mark.filterwarnings("error:.*build_from_config")  # loading must not try to rebuild by a call
def test_text_model_saves_and_reloads(make, tmp_path):
    assert_model_reloads(make(), tf.constant(["a b c d e f", "", "ü"]), tmp_path / "m.keras")


# === ListOps ===
def median_floor(values):
    """Median rounded down: the middle value, or the floored mean of the two middle ones."""
    v, half = sorted(values), len(values) // 2
    return v[half] if len(v) % 2 else (v[half - 1] + v[half]) // 2


def evaluate_listops(expression):
    """An independent, stack-based evaluator (no recursion)."""
    stack = []
    for token in expression.split():
        if token.startswith("["):
            stack.append([token])
        elif token == "]":
            op, *args = stack.pop()
            value = {"[MAX": max, "[MIN": min, "[SM": lambda a: sum(a) % 10, "[MED": median_floor}[op](args)
            if not stack:
                return value
            stack[-1].append(value)
        else:
            stack[-1].append(int(token))
    raise AssertionError(f"unbalanced expression: {expression}")


def test_listops_values_match_an_independent_evaluator():
    texts, labels = generate_listops(300, seed=3, min_length=5, max_length=200, max_depth=5, max_args=5)
    for text, label in zip(texts, labels):
        assert evaluate_listops(text) == label, text
        tokens = text.split()
        assert 5 <= len(tokens) <= 200 and set(tokens) <= set(VOCABULARY) and tokens[0] in OPERATORS
    assert len(set(labels.tolist())) == 10
    again, _ = generate_listops(300, seed=3, min_length=5, max_length=200, max_depth=5, max_args=5)
    assert again == texts
    other, _ = generate_listops(300, seed=4, min_length=5, max_length=200, max_depth=5, max_args=5)
    assert other != texts


def test_listops_long_expressions_and_impossible_ranges():
    texts, labels = generate_listops(3, seed=0, min_length=500, max_length=2000)
    assert all(500 <= len(t.split()) <= 2000 for t in texts)
    assert [evaluate_listops(t) for t in texts] == labels.tolist()
    with pytest.raises(ValueError, match="no ListOps expression"):
        generate_listops(1, min_length=50, max_length=60, max_depth=2, max_args=3)


def test_listops_dataset_is_cached_and_deterministic(tmp_path):
    kw = dict(num_train=40, num_validation=8, num_test=0, min_length=5, max_length=64, max_depth=4, max_args=4,
              cache_dir=str(tmp_path))
    spec = listops(**kw)
    assert not os.listdir(tmp_path)  # nothing generated until the data is asked for
    spec = spec.load()
    assert spec.num_classes == 10 and spec.test is None and len(os.listdir(tmp_path)) == 2
    first = [(t.numpy(), int(y)) for t, y in spec.train]
    assert [(t.numpy(), int(y)) for t, y in listops(**kw).load().train] == first  # read back from the cache
    assert all(evaluate_listops(t.decode()) == y for t, y in first)


# === IMDB ===
def make_imdb_folder(root, per_class=3):
    for split in ("train", "val"):
        for label in ("neg", "pos"):
            folder = root / "imdb" / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                text = f"{'great fun' if label == 'pos' else 'dull, awful'} film number {i} ✓"
                (folder / f"{i}_{8 if label == 'pos' else 2}.txt").write_text(text, encoding="utf-8")
    return root / "imdb"


def test_imdb_folder_and_zip(tmp_path, monkeypatch):
    root = make_imdb_folder(tmp_path / "data")
    spec = imdb_folder(path=str(root)).load()
    assert spec.class_names == ["neg", "pos"] and spec.test is None and spec.num_train_examples == 6
    examples = [(t.numpy().decode(), int(y)) for t, y in spec.train]
    assert all(("great" in t) == (y == 1) for t, y in examples) and "✓" in examples[0][0]
    archive = tmp_path / "imdb.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in root.rglob("*.txt"):
            z.write(path, path.relative_to(tmp_path / "data"))
    cache = tmp_path / "cache"
    monkeypatch.setenv("TLBKIT_CACHE", str(cache))
    zipped = imdb_folder(path=str(archive), max_examples_per_split=2).load()
    assert sorted(int(y) for _, y in zipped.validation) == [0, 1]
    assert len(os.listdir(cache / "extracted")) == 1
    imdb_folder(path=str(archive)).load()  # extracted once
    assert len(os.listdir(cache / "extracted")) == 1
    with pytest.raises(FileNotFoundError, match="no train/pos and train/neg"):
        imdb_folder(path=str(tmp_path / "cache")).load()
    with pytest.raises(FileNotFoundError, match="datasets.imdb_folder.path = 'nowhere' not found.*--data_dir"):
        imdb_folder(path="nowhere").load()
    with pytest.raises(ValueError, match="needs `path`"):
        imdb_folder()


def test_imdb_reviews_calls_tfds(monkeypatch):
    import tensorflow_datasets as tfds

    calls = {}

    def fake_load(name, split, as_supervised, data_dir, download):
        calls.update(name=name, split=split)
        ds = tf.data.Dataset.from_tensor_slices((["good", "bad"], np.array([1, 0], "int64")))
        return [ds for _ in split]

    monkeypatch.setattr(tfds, "load", fake_load)
    spec = imdb_reviews(validation_percent=10)
    assert not calls  # TFDS is asked only when the data is needed
    spec = spec.load()
    assert calls == {"name": "imdb_reviews", "split": ["train[:90%]", "train[90%:]", "test"]}
    assert spec.class_names == ["neg", "pos"] and next(iter(spec.train))[1].dtype == tf.int32
    imdb_reviews(validation_percent=0).load()
    assert calls["split"] == ["train", "test"]


def test_text_batches_through_the_engine_pipeline(tmp_path):
    spec = imdb_folder(path=str(make_imdb_folder(tmp_path)))
    texts, labels = next(iter(pipeline.batched(spec, "train", 4, training=True)))
    out = ByteTokenizer(8, max_length=10)(texts)
    assert tuple(out["tokens"].shape) == (4, 10, 8) and labels.shape == (4,)


# === Binaries ===
TINY_MODEL = ["CHUNK_SIZE = 8", "train.epochs = 1", "train.steps_per_epoch = 2", "train.batch_size = 8"]


def params(*bindings):
    return ["--gin_file=sizes/tiny.gin"] + [f"--gin_param={b}" for b in TINY_MODEL + list(bindings)]


def train_and_predict(gin_file, model_dir, inputs, bindings, env):
    run_binary("train", f"--gin_file={gin_file}", f"--model_dir={model_dir}", *params(*bindings), env=env, check=True)
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["epochs_completed"] == 1 and 0 <= metrics["val_accuracy"] <= 1
    assert_eval_reproduces_metrics(model_dir, env)
    proc = run_binary("predict", f"--model_dir={model_dir}", *map(str, inputs), env=env, check=True)
    return metrics, proc.stdout


LISTOPS_TINY = ["MAX_TOKENS = 48", "datasets.listops.min_length = 5", "datasets.listops.max_depth = 4",
                "datasets.listops.num_train = 64", "datasets.listops.num_validation = 16",
                "datasets.listops.num_test = 16"]


def test_listops_cpu_train_and_predict_text_file(tmp_path):
    expression = tmp_path / "expr.txt"
    expression.write_text("[MAX 2 9 [MIN 4 7 ] 0 ]\n")
    env = {"TLBKIT_CACHE": str(tmp_path / "cache")}
    _, out = train_and_predict("listops_cpu.gin", tmp_path / "run", [expression], LISTOPS_TINY, env)
    row = out.strip().splitlines()[-1].split()
    assert row[0] == str(expression) and row[1] in [str(d) for d in range(10)]


def test_imdb_bytes_cpu_train_predict_and_score_other_data(tmp_path):
    root = make_imdb_folder(tmp_path / "data", per_class=8)
    archive = tmp_path / "data" / "imdb.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in root.rglob("*.txt"):
            z.write(path, path.relative_to(tmp_path / "data"))
    review = tmp_path / "review.txt"
    review.write_text("Wonderful, moving film. Ünïcödé ✓\nSecond line.\n", encoding="utf-8")
    env = {"TLBKIT_CACHE": str(tmp_path / "cache"), "TLBKIT_DATA_DIR": str(tmp_path / "data")}
    model_dir = tmp_path / "run"
    # The shipped config names its zip relative to the data folder: here TLBKIT_DATA_DIR.
    _, out = train_and_predict("imdb_bytes_cpu.gin", model_dir, [review, "A dull, awful film."],
                               ["datasets.imdb_folder.path = 'imdb.zip'", "MAX_BYTES = 64"], env)
    rows = [line.split() for line in out.strip().splitlines()[1:]]
    assert rows[0][0] == str(review) and rows[1][:4] == ["A", "dull,", "awful", "film."]
    assert all(row[-3] in ("neg", "pos") for row in rows)
    proc = run_binary("predict", f"--model_dir={model_dir}", "-", env=env, check=True,
                      stdin="Great fun.\n\nUtterly dull.\n")
    assert [line.split()[0] for line in proc.stdout.strip().splitlines()[1:]] == ["Great", "Utterly"]
    # Score a test-only aclImdb folder with the training data gone.
    for path in (root, archive):
        os.rename(path, str(path) + ".gone")
    test_only = tmp_path / "aclImdb"
    for label in ("neg", "pos"):
        (test_only / "test" / label).mkdir(parents=True)
        for i in range(3):
            (test_only / "test" / label / f"{i}_1.txt").write_text(f"{label} review {i}")
    proc = run_binary("evaluate", f"--model_dir={model_dir}", f"--data={test_only}", "--split=test", env=env,
                      check=True)
    scored = json.loads(proc.stdout.strip().splitlines()[-1])
    assert scored["examples"] == 6 and scored["checkpoint"] == "last" and scored["data"] == str(test_only)
    assert (model_dir / "eval_aclImdb_test_last.json").exists()  # the data, the split and the checkpoint
    (test_only / "test" / "meh").mkdir()
    (test_only / "test" / "meh" / "0_5.txt").write_text("so-so")
    proc = run_binary("evaluate", f"--model_dir={model_dir}", f"--data={test_only / 'test'}", env=env)
    assert proc.returncode == 2 and "['meh']" in proc.stderr and "not among the run's classes" in proc.stderr


@pytest.mark.slow
# listops.gin and imdb_bytes.gin are covered by listops_cpu.gin and imdb_bytes_cpu.gin, which include them and
# change sizes and data (the tests above); test_configs builds every shipped file's model.
def test_imdb_words_cpu_trains_and_predicts_tiny(tmp_path):
    """imdb_cpu.gin (words: a vocabulary built from the training reviews) on a made-up folder."""
    make_imdb_folder(tmp_path / "data", per_class=8)  # data/imdb/{train,val}/{neg,pos}/
    env = {"TLBKIT_CACHE": str(tmp_path / "cache"), "TLBKIT_DATA_DIR": str(tmp_path / "data")}
    _, out = train_and_predict("imdb_cpu.gin", tmp_path / "run", ["Great fun!", "A dull, awful film."],
                               ["datasets.imdb_folder.path = 'imdb'", "MAX_WORDS = 16", "train.warmup_epochs = 0.0"],
                               env)
    rows = [line.split() for line in out.strip().splitlines()[1:]]
    assert [row[0] for row in rows] == ["Great", "A"] and all(row[-3] in ("neg", "pos") for row in rows), out
