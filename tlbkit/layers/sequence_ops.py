"""Masks and chunking of (B, T, D) token sequences, shared by the encoders (keras.ops only)."""

from keras import ops


def full_mask(tokens, mask):
    """A (B, T) boolean mask: the given one, or all True."""
    if mask is None:
        return ops.ones(ops.shape(tokens)[:2], dtype="bool")
    return ops.cast(mask, "bool")


def pad_to_multiple(tokens, mask, multiple):
    """Pads (B, T, D) tokens and a (B, T) mask along T to a multiple of `multiple`.

    Returns `(tokens, mask, num_chunks)`; padded positions have mask False.
    """
    length = tokens.shape[1]
    if length is None:
        length = ops.shape(tokens)[1]
    pad = (-length) % multiple
    if isinstance(pad, int) and pad == 0:
        return tokens, mask, length // multiple
    tokens = ops.pad(tokens, [[0, 0], [0, pad], [0, 0]])
    mask = ops.pad(mask, [[0, 0], [0, pad]], constant_values=False)
    return tokens, mask, (length + pad) // multiple
