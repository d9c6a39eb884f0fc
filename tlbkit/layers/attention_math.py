"""The pre-LayerNorm attention + feed-forward block as a function, with a hand-written gradient.

`AttentionBlock` holds the weights; this module holds the arithmetic. `block_forward` is the block
written with plain `keras.ops` (automatic differentiation works through it; it is the reference).
`block_apply` runs the same forward pass under `keras.ops.custom_gradient` with a hand-derived
backward pass, which:

- keeps only the normalised inputs, the attention probabilities and the feed-forward
  pre-activation, and recomputes q/k/v (one projection) and GELU in the backward pass, where
  automatic differentiation keeps every intermediate (GELU's erf, LayerNorm's centred copies, ...):
  about half the training memory of the keras-io model;
- builds a smaller gradient graph (a LayerNorm's gradient is 7 ops), which traces faster.

Its step time is equal or better (1.0-1.19x, docs/performance.md, `tlbkit_autodiff`).

`tests/test_engine.py` checks both forward and gradients against `block_forward` under automatic
differentiation.

Weights are the folded tuples of `AttentionBlock.folded_weights` (LayerNorm affines and the
attention's 1/sqrt(key_dim) already folded into the projections), so LayerNorm here is
standardisation only.
"""

import math

import keras
from keras import ops

SQRT_HALF = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
TANH_C = math.sqrt(2.0 / math.pi)
TANH_A = 0.044715


def standardize(x, epsilon):
    """LayerNorm without the affine part, computed in float32; returns `(y, rstd)`."""
    x32 = ops.cast(x, "float32")
    centered = x32 - ops.mean(x32, axis=-1, keepdims=True)
    rstd = ops.rsqrt(ops.mean(ops.square(centered), axis=-1, keepdims=True) + epsilon)
    return ops.cast(centered * rstd, x.dtype), rstd


def standardize_backward(grad, y, rstd):
    """Gradient of `standardize` w.r.t. its input, from the output `y` and `rstd`."""
    g = ops.cast(grad, "float32")
    y32 = ops.cast(y, "float32")
    mean_g = ops.mean(g, axis=-1, keepdims=True)
    mean_gy = ops.mean(g * y32, axis=-1, keepdims=True)
    return ops.cast((g - mean_g - y32 * mean_gy) * rstd, grad.dtype)


def gelu_and_derivative(h, approximate):
    """`(gelu(h), d gelu / d h)`, exact (erf) or tanh-approximate."""
    if approximate:
        t = ops.tanh(TANH_C * (h + TANH_A * h * h * h))
        half_1pt = 0.5 * (1.0 + t)
        return h * half_1pt, half_1pt + 0.5 * h * (1.0 - t * t) * TANH_C * (1.0 + 3.0 * TANH_A * h * h)
    cdf = 0.5 * (1.0 + ops.erf(h * SQRT_HALF))
    return h * cdf, cdf + h * ops.exp(-0.5 * h * h) * INV_SQRT_2PI


def _dense(x, kernel, bias):
    return ops.matmul(x, kernel) + bias


def _input_grad(grad, kernel):
    """Gradient of `inputs @ kernel` w.r.t. (..., n) inputs, as one 2-D matmul (`grad @ kernel^T`).

    (A 3-D einsum against a 2-D kernel becomes a batched matmul per example under TensorFlow.)
    """
    shape = ops.shape(grad)
    out = ops.einsum("im,nm->in", ops.reshape(grad, (-1, shape[-1])), kernel)
    return ops.reshape(out, tuple(shape[:-1]) + (ops.shape(kernel)[0],))


def _weight_grads(inputs, grad):
    """(kernel, bias) gradients of `inputs @ kernel + bias` for (..., n) inputs and (..., m) grads."""
    n, m = ops.shape(inputs)[-1], ops.shape(grad)[-1]
    inputs2 = ops.reshape(inputs, (-1, n))
    grad2 = ops.reshape(grad, (-1, m))
    return ops.einsum("in,im->nm", inputs2, grad2), ops.sum(grad2, axis=0)


def _split_heads(x, num_heads):
    # (B, T, H*Dk) -> (B, H, T, Dk)
    shape = ops.shape(x)
    x = ops.reshape(x, (shape[0], shape[1], num_heads, shape[2] // num_heads))
    return ops.transpose(x, (0, 2, 1, 3))


def _merge_heads(x):
    # (B, H, T, Dk) -> (B, T, H*Dk)
    x = ops.transpose(x, (0, 2, 1, 3))
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0], shape[1], shape[2] * shape[3]))


def draw_keep(shape, rate, seed):
    """A boolean dropout keep mask of `shape` (`True` with probability `1 - rate`).

    Args:
        shape: tuple. Mask shape.
        rate: float. Dropout rate.
        seed: `keras.random.SeedGenerator` (or int) to draw from.
    """
    return keras.random.uniform(shape, seed=seed) >= rate


def dropout(x, keep, rate):
    """Inverted dropout with a given boolean keep mask: `x / (1 - rate)` where kept, else 0.

    Also its own gradient (the mask and scale are constants).
    """
    keep = ops.reshape(keep, ops.shape(x))
    return ops.where(keep, x * (1.0 / (1.0 - rate)), ops.zeros((), x.dtype))


class BlockSpec:
    """The static settings of one block application (not tensors).

    Args:
        num_heads: int. Attention heads.
        epsilon: float. LayerNorm epsilon.
        gelu_approximate: bool. Tanh-approximate GELU.
        cross: bool. Keys/values come from a context (weights "q", "kv") instead of the
            inputs (weights "qkv").
        attention_dropout: float. Dropout rate of the attention probabilities (used where a
            keep mask is given).
        dropout: float. Dropout rate of the feed-forward output (used where a keep mask is given).
    """

    def __init__(self, num_heads, epsilon, gelu_approximate, cross, attention_dropout=0.0, dropout=0.0):
        self.num_heads = num_heads
        self.epsilon = epsilon
        self.gelu_approximate = gelu_approximate
        self.cross = cross
        self.attention_dropout = attention_dropout
        self.dropout = dropout

    def weight_names(self):
        return ("q", "kv", "out", "ffn1", "ffn2") if self.cross else ("qkv", "out", "ffn1", "ffn2")


def _attention(spec, q, k, v, score_bias, attention_keep):
    """Returns (mixed values (B, Q, W), probabilities, dropped probabilities); heads split if > 1."""
    if spec.num_heads > 1:
        q, k, v = (_split_heads(t, spec.num_heads) for t in (q, k, v))
        scores = ops.einsum("bhqd,bhkd->bhqk", q, k)
    else:
        scores = ops.einsum("bqd,bkd->bqk", q, k)
    scores = ops.cast(scores, "float32")
    if score_bias is not None:
        scores = scores + score_bias
    probs = ops.softmax(scores, axis=-1)
    dropped = ops.cast(probs, q.dtype)
    if attention_keep is not None:
        dropped = dropout(dropped, attention_keep, spec.attention_dropout)
    mixed = ops.matmul(dropped, v)
    if spec.num_heads > 1:
        mixed = _merge_heads(mixed)
    return mixed, probs, dropped


def _projections(spec, xn, cn, w):
    """Queries, keys and values from the standardised inputs (and context)."""
    if spec.cross:
        return (_dense(xn, *w["q"]),) + tuple(ops.split(_dense(cn, *w["kv"]), 2, axis=-1))
    return tuple(ops.split(_dense(xn, *w["qkv"]), 3, axis=-1))


def _forward(spec, x, context, w, score_bias, attention_keep, ffn_keep):
    """The block's forward pass; returns (output, probabilities, tensors the backward pass needs).

    q, k, v and the mixed values are not kept: the backward pass recomputes them (one
    projection matmul and one tiny batched matmul), which saves about a third of the memory a
    training step holds for it.
    """
    xn, x_rstd = standardize(x, spec.epsilon)
    saved = {"xn": xn, "x_rstd": x_rstd}
    cn = None
    if spec.cross:
        cn, c_rstd = standardize(context, spec.epsilon)
        saved.update(cn=cn, c_rstd=c_rstd)
    q, k, v = _projections(spec, xn, cn, w)
    mixed, probs, dropped = _attention(spec, q, k, v, score_bias, attention_keep)
    x1 = x + _dense(mixed, *w["out"])
    x1n, x1_rstd = standardize(x1, spec.epsilon)
    h = _dense(x1n, *w["ffn1"])
    f = _dense(ops.gelu(h, approximate=spec.gelu_approximate), *w["ffn2"])
    if ffn_keep is not None:
        f = dropout(f, ffn_keep, spec.dropout)
    saved.update(probs=probs, dropped=dropped, x1n=x1n, x1_rstd=x1_rstd, h=h)
    return x1 + f, probs, saved


def _backward(spec, grad, w, s, attention_keep, ffn_keep):
    """Gradients (d inputs, d context or None, d weights dict) from the saved tensors `s`."""
    dw = {}
    # Feed-forward block: out = x1 + dropout(gelu(x1n @ W1 + b1) @ W2 + b2).
    df = grad if ffn_keep is None else dropout(grad, ffn_keep, spec.dropout)
    gh, dgelu = gelu_and_derivative(s["h"], spec.gelu_approximate)
    dw["ffn2"] = _weight_grads(gh, df)
    dh = _input_grad(df, w["ffn2"][0]) * dgelu
    dw["ffn1"] = _weight_grads(s["x1n"], dh)
    dx1n = _input_grad(dh, w["ffn1"][0])
    dx1 = grad + standardize_backward(dx1n, s["x1n"], s["x1_rstd"])
    # Attention: x1 = x + mixed @ Wo + bo, mixed = dropout(softmax(q k^T)) v.
    q, k, v = _projections(spec, s["xn"], s.get("cn"), w)
    dropped, probs = s["dropped"], s["probs"]
    heads = spec.num_heads > 1
    if heads:
        q, k, v = (_split_heads(t, spec.num_heads) for t in (q, k, v))
    mixed = ops.matmul(dropped, v)
    dw["out"] = _weight_grads(_merge_heads(mixed) if heads else mixed, dx1)
    dmixed = _input_grad(dx1, w["out"][0])
    if heads:
        dmixed = _split_heads(dmixed, spec.num_heads)
    dv = ops.einsum("...qk,...qd->...kd", dropped, dmixed)
    ddropped = ops.einsum("...qd,...kd->...qk", dmixed, v)
    if attention_keep is not None:
        ddropped = dropout(ddropped, attention_keep, spec.attention_dropout)
    dprobs = ops.cast(ddropped, "float32")
    dscores = probs * (dprobs - ops.sum(dprobs * probs, axis=-1, keepdims=True))
    dscores = ops.cast(dscores, q.dtype)
    dq = ops.matmul(dscores, k)
    dk = ops.einsum("...qk,...qd->...kd", dscores, q)
    if heads:
        dq, dk, dv = _merge_heads(dq), _merge_heads(dk), _merge_heads(dv)
    dx = dx1
    dcontext = None
    if spec.cross:
        dw["q"] = _weight_grads(s["xn"], dq)
        dxn = _input_grad(dq, w["q"][0])
        dkv = ops.concatenate([dk, dv], axis=-1)
        dw["kv"] = _weight_grads(s["cn"], dkv)
        dcn = _input_grad(dkv, w["kv"][0])
        dcontext = standardize_backward(dcn, s["cn"], s["c_rstd"])
    else:
        dqkv = ops.concatenate([dq, dk, dv], axis=-1)
        dw["qkv"] = _weight_grads(s["xn"], dqkv)
        dxn = _input_grad(dqkv, w["qkv"][0])
    dx = dx + standardize_backward(dxn, s["xn"], s["x_rstd"])
    return dx, dcontext, dw


def _score_bias(context_mask, num_heads):
    if context_mask is None:
        return None
    bias = (1.0 - ops.cast(context_mask, "float32")) * -1e9
    return bias[:, None, :] if num_heads == 1 else bias[:, None, None, :]


def block_forward(spec, x, context, weights, context_mask=None, attention_keep=None, ffn_keep=None):
    """The block with plain ops (automatic differentiation). Returns `(output, probabilities)`.

    Args:
        spec: `BlockSpec`.
        x: (B, Q, dim) queries and residual stream.
        context: (B, K, dim) keys/values source when `spec.cross`, else ignored.
        weights: dict of (kernel, bias) pairs from `AttentionBlock.folded_weights`.
        context_mask: optional (B, K) boolean mask of real keys.
        attention_keep: optional boolean dropout mask (True = kept) for the probabilities,
            (B, heads, Q, K).
        ffn_keep: optional (B, Q, dim) boolean dropout mask for the feed-forward output.
    """
    bias = _score_bias(context_mask, spec.num_heads)
    out, probs, _ = _forward(spec, x, context, weights, bias, attention_keep, ffn_keep)
    return out, probs


def block_apply(spec, x, context, weights, context_mask=None, attention_keep=None, ffn_keep=None):
    """`block_forward` with the hand-written gradient (same arguments and results).

    The probabilities are returned for inspection; no gradient flows back through them.
    Masks and dropout masks are constants of the gradient.
    """
    bias = _score_bias(context_mask, spec.num_heads)
    names = spec.weight_names()
    # Variables are read here, outside the custom-gradient function, so that its gradient
    # returns their gradients as input gradients (TensorFlow would otherwise ask for them apart).
    flat = [ops.copy(t) if isinstance(t, keras.Variable) else t for name in names for t in weights[name]]
    # Masks and dropout masks are inputs too (JAX forbids closing over loop tracers); their
    # gradient is None.
    constants = [t for t in (bias, attention_keep, ffn_keep) if t is not None]
    cross = spec.cross
    num_inputs = 2 if cross else 1

    def run(*args):
        x, context = args[0], (args[1] if cross else None)
        values = args[num_inputs : num_inputs + len(flat)]
        consts = iter(args[num_inputs + len(flat) :])
        b, an, fn = (next(consts) if t is not None else None for t in (bias, attention_keep, ffn_keep))
        w = {name: (values[2 * i], values[2 * i + 1]) for i, name in enumerate(names)}
        out, probs, saved = _forward(spec, x, context, w, b, an, fn)

        def grad(*args, upstream=None):
            # Output gradients: one per output (TensorFlow), one tuple (JAX) or `upstream` (torch).
            grads = args if args else upstream
            if len(grads) == 1 and isinstance(grads[0], (tuple, list)):
                grads = grads[0]
            dx, dcontext, dw = _backward(spec, grads[0], w, saved, an, fn)
            flat_grads = tuple(g for name in names for g in dw[name])
            return ((dx, dcontext) if cross else (dx,)) + flat_grads + (None,) * len(constants)

        return (out, probs), grad

    inputs = (x, context) if cross else (x,)
    return ops.custom_gradient(run)(*inputs, *flat, *constants)
