"""TensorFlow string ops shared by the text tokenizers (usable in tf.data maps too)."""

TRUNCATIONS = ("end", "start")


def is_string(x):
    """Whether `x` holds text (tf.string / object array / Python strings) rather than ids."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        if isinstance(x, (list, tuple)):
            return bool(x) and isinstance(x[0], (str, bytes))
        return isinstance(x, (str, bytes))
    return getattr(dtype, "name", str(dtype)) in ("string", "object")


def as_string_vector(texts):
    """A (B,) tf.string tensor from a scalar, (B,) or (B, 1) input."""
    import tensorflow as tf

    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    if texts.shape.rank == 0:
        return texts[None]
    if texts.shape.rank == 2:
        return tf.reshape(texts, [-1])
    return texts


def at_least_one_column(ids):
    """Pads (B, 0) ids to (B, 1) so an all-empty batch still has a (masked) position."""
    import tensorflow as tf

    return tf.pad(ids, [[0, 0], [0, tf.maximum(1 - tf.shape(ids)[1], 0)]])


def encode_bytes(texts, max_length, truncation="end"):
    """UTF-8 strings -> (B, T) int32 ids: byte b -> b + 1, 0 = padding.

    T is the longest (truncated) text of the batch, at least 1. A scalar string
    gives a (T,) vector, so this also works as a per-example tf.data map.
    """
    import tensorflow as tf

    if truncation not in TRUNCATIONS:
        raise ValueError(f"`truncation` must be one of {TRUNCATIONS}. Received: truncation={truncation!r}")
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    scalar = texts.shape.rank == 0
    texts = as_string_vector(texts)
    lengths = tf.strings.length(texts, unit="BYTE")
    if truncation == "start":
        start = tf.maximum(lengths - max_length, 0)
        texts = tf.strings.substr(texts, start, tf.fill(tf.shape(start), max_length), unit="BYTE")
    else:
        texts = tf.strings.substr(texts, tf.zeros_like(lengths), tf.fill(tf.shape(lengths), max_length), unit="BYTE")
    lengths = tf.minimum(lengths, max_length)
    width = tf.maximum(tf.reduce_max(tf.concat([lengths, [0]], 0)), 1)
    raw = tf.io.decode_raw(texts, tf.uint8, fixed_length=width)
    ids = tf.cast(raw, tf.int32) + 1
    ids = tf.where(tf.range(width)[None, :] < lengths[:, None], ids, 0)
    return ids[0] if scalar else ids


def byte_ids(inputs, max_length, truncation="end"):
    """Tokenizer inputs -> (B, T) byte ids: strings are encoded (`encode_bytes`), ids pass through."""
    return encode_bytes(inputs, max_length, truncation) if is_string(inputs) else inputs


SPLITS = ("whitespace", "character")
HTML_TAG = r"<[^>]*>"
PUNCTUATION = r"[!\"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~]"


def standardize(texts, lowercase, strip_punctuation):
    """Lower-cases and removes HTML tags and ASCII punctuation (TF ops)."""
    import tensorflow as tf

    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if strip_punctuation:
        texts = tf.strings.regex_replace(texts, HTML_TAG, " ")
        texts = tf.strings.regex_replace(texts, PUNCTUATION, " ")
    return texts


def split_tokens(texts, split):
    """(B,) strings -> (B, None) ragged string tokens."""
    import tensorflow as tf

    if split == "whitespace":
        return tf.strings.split(texts)
    return tf.strings.unicode_split(texts, "UTF-8", errors="replace")
