"""Words or characters -> ids from a vocabulary -> embedded tokens."""

import collections
import os

import keras

from tlbkit_tasks.common.token_embedding import TokenEmbedding
from tlbkit_tasks.text import text_ops
from tlbkit import checks, registry
from tlbkit.serialization import register_serializable

PAD_ID, OOV_ID = 0, 1
OOV_TOKEN = "[UNK]"


def corpus_texts(corpus, max_examples=None):
    """Texts of a corpus: a DataSpec (its train split), a tf.data dataset of texts or
    (text, label) pairs, or a list of strings."""
    import tensorflow as tf

    if hasattr(corpus, "load") and hasattr(corpus, "train"):  # a DataSpec: its (loaded) training split
        corpus = corpus.load().train
    if isinstance(corpus, tf.data.Dataset):
        if isinstance(corpus.element_spec, tuple):
            corpus = corpus.map(lambda x, *_: x)
    else:
        corpus = tf.data.Dataset.from_tensor_slices(tf.constant(list(corpus), dtype=tf.string))
    if max_examples is not None:
        corpus = corpus.take(max_examples)
    return corpus


def build_vocabulary(corpus, max_tokens, split="whitespace", lowercase=True, strip_punctuation=False,
                     max_examples=None, min_count=1):
    """The `max_tokens` most frequent tokens of a corpus (ties: first seen), most frequent first."""
    checks.one_of("split", split, text_ops.SPLITS)
    counts = collections.Counter()
    for batch in corpus_texts(corpus, max_examples).batch(512):
        texts = text_ops.standardize(text_ops.as_string_vector(batch), lowercase, strip_punctuation)
        counts.update(text_ops.split_tokens(texts, split).flat_values.numpy().tolist())
    counts.pop(b"", None)
    counts.pop(OOV_TOKEN.encode(), None)
    vocab = [t for t, c in counts.most_common(max_tokens) if c >= min_count]
    return [t.decode("utf-8", errors="replace") for t in vocab]


@registry.TOKENIZERS.register("vocabulary")
@register_serializable("tlbkit_tasks.text.VocabularyTokenizer")
class VocabularyTokenizer(keras.layers.Layer):
    """Splits texts into words or characters, looks them up and embeds them.

    Id 0 is padding (masked out), id 1 the out-of-vocabulary token, ids 2...
    the vocabulary in order. The vocabulary is either given (a list, or a file
    with one token per line) or built from the training split of `corpus`
    when the layer is made (its `max_tokens` most frequent tokens); either way
    it is stored in the layer's config, so a saved model reloads with it.
    Texts longer than `max_length` tokens are truncated (`"end"` keeps the
    first tokens, `"start"` the last ones); each batch is padded to its
    longest text.

    Uses TensorFlow string ops (TensorFlow backend).

    Args:
        dim: int. Token width (the cell's `dim`).
        max_length: int. Longest token sequence kept. Defaults to `512`.
        vocabulary: list of str, or path of a file with one token per line.
            Defaults to `None` (build it from `corpus`).
        corpus: `DataSpec`, tf.data dataset or list of texts to build the
            vocabulary from (not stored in the config). Defaults to `None`.
        max_tokens: int. Vocabulary size when built from `corpus`. Defaults to `20000`.
        split: str. `"whitespace"` (words) or `"character"` (Unicode characters).
            Defaults to `"whitespace"`.
        lowercase: bool. Lower-case before the lookup. Defaults to `True`.
        strip_punctuation: bool. Replace HTML tags and ASCII punctuation by
            spaces. Defaults to `False`.
        truncation: str. `"end"` or `"start"`. Defaults to `"end"`.
        max_adapt_examples: int or None. Texts read to build the vocabulary.
            Defaults to `None` (all).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: (B,) string tensor.

    Returns:
        dict: `tokens` (B, T, dim), `mask` (B, T) bool, T <= max_length.

    Example:
    >>> tok = VocabularyTokenizer(dim=8, vocabulary=["a", "b"], max_length=4)
    >>> tok(tf.constant(["a b c", ""]))["mask"].numpy()
    array([[ True,  True,  True], [False, False, False]])
    """

    def __init__(
        self,
        dim,
        max_length=512,
        vocabulary=None,
        corpus=None,
        max_tokens=20000,
        split="whitespace",
        lowercase=True,
        strip_punctuation=False,
        truncation="end",
        max_adapt_examples=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        checks.positive_int("dim", dim)
        checks.positive_int("max_length", max_length)
        checks.positive_int("max_tokens", max_tokens)
        checks.one_of("split", split, text_ops.SPLITS)
        checks.one_of("truncation", truncation, text_ops.TRUNCATIONS)
        if vocabulary is None and corpus is None:
            raise ValueError(
                "VocabularyTokenizer needs `vocabulary` (a list or a file) or `corpus` (e.g. "
                "`tokenizers.vocabulary.corpus = %DATASET` in gin). Received: vocabulary=None, corpus=None"
            )
        if isinstance(vocabulary, str):
            if not os.path.exists(vocabulary):
                raise FileNotFoundError(f"vocabulary file not found: {vocabulary}")
            with open(vocabulary, encoding="utf-8") as f:
                vocabulary = [line.rstrip("\n") for line in f if line.rstrip("\n")]
        if vocabulary is None:
            vocabulary = build_vocabulary(
                corpus, max_tokens, split, lowercase, strip_punctuation, max_adapt_examples
            )
        vocabulary = list(dict.fromkeys(t for t in vocabulary if t not in ("", OOV_TOKEN)))
        if not vocabulary:
            raise ValueError("the vocabulary is empty: check `vocabulary` or the `corpus` texts.")
        self.dim = dim
        self.max_length = max_length
        self.vocabulary = vocabulary
        self.max_tokens = max_tokens
        self.split = split
        self.lowercase = lowercase
        self.strip_punctuation = strip_punctuation
        self.truncation = truncation
        self.max_adapt_examples = max_adapt_examples
        self.lookup = keras.layers.StringLookup(
            vocabulary=vocabulary, mask_token="", oov_token=OOV_TOKEN, num_oov_indices=1, name="lookup"
        )
        self.embedding = TokenEmbedding(
            len(vocabulary) + 2, dim, max_length, pad_id=PAD_ID, dtype=self.dtype_policy, name="token_embedding"
        )

    @property
    def vocabulary_size(self):
        """Number of ids, padding and out-of-vocabulary included."""
        return len(self.vocabulary) + 2

    def build(self, inputs_shape=None):
        self.embedding.build((None, None))
        self.built = True

    def encode(self, inputs):
        """Strings -> (B, T) int32 ids (T >= 1; 0 = padding)."""
        import tensorflow as tf

        texts = text_ops.standardize(text_ops.as_string_vector(inputs), self.lowercase, self.strip_punctuation)
        tokens = text_ops.split_tokens(texts, self.split)
        tokens = tokens[:, : self.max_length] if self.truncation == "end" else tokens[:, -self.max_length :]
        ids = tokens.with_flat_values(tf.cast(self.lookup(tokens.flat_values), tf.int32))
        return text_ops.at_least_one_column(ids.to_tensor(default_value=PAD_ID))

    def call(self, inputs):
        ids = self.encode(inputs) if text_ops.is_string(inputs) else inputs
        return self.embedding(ids)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dim": self.dim,
                "max_length": self.max_length,
                "vocabulary": list(self.vocabulary),
                "max_tokens": self.max_tokens,
                "split": self.split,
                "lowercase": self.lowercase,
                "strip_punctuation": self.strip_punctuation,
                "truncation": self.truncation,
                "max_adapt_examples": self.max_adapt_examples,
            }
        )
        return config
