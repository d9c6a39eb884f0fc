"""Training-time augmentation of series (a per-example `tf.data` map): jitter and scale, window slicing,
time warping; and how strong each may be on a given training set (`class_separation`, `auto_strength`,
`warp_strength_from_data`)."""

import functools
import math

import numpy as np

AUGMENTS = ("none", "jitter_scale", "slice_jitter_scale", "warp_jitter_scale")
SCALE, NOISE = 0.1, 0.05  # full-strength jitter_scale: log-scale sd, noise sd (both relative to a series' sd)
WARP, WARP_KNOTS = 0.2, 4  # full-strength time warp: sd of the local speed at each of WARP_KNOTS knots
MARGIN = 0.5  # 'auto': a perturbation's typical size is at most this share of the distance to another class
WARP_MARGIN = 1.0  # 'auto': a time warp moves a series at most as far as the nearest series of another class


def resample(values, mask, position):
    """`values` read at fractional steps `position` by linear interpolation: step `t` of the output is the
    input at `position[t]`. A step is kept by `mask` only if both steps it interpolates between were.

    Args:
        values: (T, C) float tensor.
        mask: (T,) bool tensor.
        position: (T,) float tensor of steps in [0, T - 1].
    """
    import tensorflow as tf

    steps = tf.shape(values)[0]
    low = tf.clip_by_value(tf.cast(tf.floor(position), "int32"), 0, steps - 1)
    high = tf.minimum(low + 1, steps - 1)
    weight = (position - tf.cast(low, values.dtype))[:, None]
    sliced = tf.gather(values, low) * (1.0 - weight) + tf.gather(values, high) * weight
    return sliced, tf.logical_and(tf.gather(mask, low), tf.gather(mask, high))


def slice_window(values, mask, ratio, start):
    """Window slicing (Le Guennec et al. 2016): the window of `ratio` x the series' length that starts at
    `start` (a share of the room left), stretched back to that length by linear interpolation (`resample`),
    so what the series shows sits a little earlier or later and is a little wider. Unbatched `(T, C)`
    values and `(T,)` mask; TensorFlow ops (a `tf.data` map).

    Args:
        values: (T, C) float tensor.
        mask: (T,) bool tensor.
        ratio: scalar float tensor in (0, 1]: the window's share of the series.
        start: scalar float tensor in [0, 1]: where the window starts, as a share of the steps it can move
            over (0: at the first step; 1: it ends at the last).
    """
    import tensorflow as tf

    steps = tf.shape(values)[0]
    last = tf.cast(tf.maximum(steps - 1, 1), values.dtype)
    span = ratio * last
    return resample(values, mask, start * (last - span) + tf.cast(tf.range(steps), values.dtype) * (span / last))


def warp_time(values, mask, speeds):
    """Time warping (Um et al. 2017): the series replayed at a speed that varies smoothly along it, so its
    parts are stretched and squeezed locally while its first and last steps stay where they are. The
    speed is linear between knots spread evenly over the series (`speeds`, one per knot, positive).
    Unbatched `(T, C)` values and `(T,)` mask; TensorFlow ops (a `tf.data` map).

    Args:
        values: (T, C) float tensor.
        mask: (T,) bool tensor.
        speeds: (K,) positive float tensor, K >= 2: the speed at each knot (1: unchanged).
    """
    import tensorflow as tf

    steps = tf.shape(values)[0]
    last = tf.cast(tf.maximum(steps - 1, 1), values.dtype)
    knots = tf.shape(speeds)[0]
    at = tf.cast(tf.range(steps), values.dtype) / last * tf.cast(knots - 1, values.dtype)  # in knot units
    low = tf.minimum(tf.cast(tf.floor(at), "int32"), knots - 2)
    weight = at - tf.cast(low, values.dtype)
    speed = tf.gather(speeds, low) * (1.0 - weight) + tf.gather(speeds, low + 1) * weight  # (T,)
    travelled = tf.concat([tf.zeros([1], values.dtype), tf.cumsum((speed[1:] + speed[:-1]) / 2.0)], 0)  # 0 at step 0
    position = travelled / tf.maximum(travelled[-1], 1e-6) * last
    return resample(values, mask, tf.clip_by_value(position, 0.0, last))


def check_augment(augment):
    """`augment` if it is one of AUGMENTS; a ValueError naming the value otherwise."""
    if augment not in AUGMENTS:
        raise ValueError(f"`augment` must be one of {AUGMENTS}. Received: augment={augment!r}")
    return augment


def check_strength(strength):
    """`strength` as `"auto"` or a float in [0, 1]; a ValueError naming the value otherwise."""
    if strength == "auto":
        return strength
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise ValueError(f"`augment_strength` must be 'auto' or a number in [0, 1]. Received: "
                         f"augment_strength={strength!r}")
    return float(strength)


def class_separation(values, mask, labels, max_series=2000, seed=0):
    """How far apart the classes of a training set are, in units of a series' own spread.

    For each series `i` (at most `max_series`, a seeded sample, against as many), the root-mean-square
    distance per step to the nearest series of another class, each channel divided by series `i`'s standard
    deviation in it (over its real steps); the median over the series. Jitter and scale perturb a series by
    amounts of that unit, so a perturbation much smaller than this number keeps a series nearer its own
    class than any other. Padding counts as zeros.

    Args:
        values: (N, T, C) float array.
        mask: (N, T) bool array.
        labels: (N,) int array.
        max_series: int. Series compared at most (the cost is N^2 T C).
        seed: int. Seed of the sample when N > max_series.

    Returns:
        float: the median distance, or `inf` with fewer than two classes.
    """
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return math.inf
    if len(labels) > max_series:
        keep = np.sort(np.random.default_rng(seed).choice(len(labels), max_series, replace=False))
        values, mask, labels = values[keep], mask[keep], labels[keep]
    x = np.where(mask[..., None], values, 0.0).astype("float64")  # (N, T, C)
    weight = mask[..., None].astype("float64")
    count = np.maximum(weight.sum(1), 1.0)  # (N, 1)
    mean = (x * weight).sum(1) / count
    sd = np.sqrt(((x - mean[:, None]) ** 2 * weight).sum(1) / count) + 1e-8  # (N, C)
    w = 1.0 / sd ** 2  # series i's per-channel weights
    own = (w * (x ** 2).sum(1)).sum(1)  # sum_c w_ic |x_ic|^2
    cross = np.einsum("ic,itc,jtc->ij", w, x, x, optimize=True)  # sum_c w_ic x_ic . x_jc
    other = w @ (x ** 2).sum(1).T  # sum_c w_ic |x_jc|^2
    squared = np.maximum(own[:, None] - 2 * cross + other, 0.0) / (x.shape[1] * x.shape[2])
    squared[labels[:, None] == labels[None, :]] = np.inf
    return float(np.median(np.sqrt(squared.min(1))))


def auto_strength(separation, scale=SCALE, noise=NOISE):
    """The `jitter_scale` strength for a training set whose classes are `separation` apart
    (`class_separation`): 1 (full strength) unless a full-strength perturbation, of typical size
    sqrt(scale^2 + noise^2) series sds, exceeds `MARGIN` x `separation`; then scaled down to that."""
    return min(1.0, MARGIN * separation / math.hypot(scale, noise))


def strength_from_data(values, mask, labels, seed=0):
    """`(strength, separation)` of `augment_strength='auto'` on a training set: `auto_strength` of its
    `class_separation` (its sample of at most 2,000 series drawn with `seed`). The dataset plugins and the
    test-time views (`SeriesNoiseViews.adapt`) both choose it here, so they agree on the same data."""
    separation = class_separation(values, mask, labels, seed=seed)
    return auto_strength(separation), separation


def warp_displacement(values, mask, strength, warp=WARP, max_series=128, seed=0):
    """How far `warp_time` at `strength` moves a training set's series, in the units of `class_separation`.

    For each series (at most `max_series`, a seeded sample), the root-mean-square change per real step that
    one seeded draw of the training map's warp (speeds exp(N(0, `warp` x `strength`)) at `WARP_KNOTS`
    knots) makes, each channel divided by the series' standard deviation in it; the median over the series.
    The warp is the training map's own `warp_time`.

    Args:
        values: (N, T, C) float array.
        mask: (N, T) bool array.
        strength: float in [0, 1]. The warp's strength.
        warp: float. Full-strength sd of the log speed. Defaults to `WARP`.
        max_series: int. Series warped at most.
        seed: int. Seed of the sample and of the warps.

    Returns:
        float: the median change (0 for strength 0).
    """
    if strength == 0 or len(values) == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(values), min(len(values), max_series), replace=False))
    by_length = {}  # series of one length are warped together, in one traced call
    for i in keep:
        x = np.asarray(values[i], "float32")[np.asarray(mask[i], bool)]
        speeds = np.exp(rng.normal(0.0, warp * strength, WARP_KNOTS)).astype("float32")
        if len(x) >= 2:
            by_length.setdefault(len(x), []).append((x, speeds))
    moved = []
    for group in by_length.values():
        x = np.stack([g[0] for g in group])
        warped = _warp_many(x, np.stack([g[1] for g in group]))
        sd = x.std(1, keepdims=True) + 1e-8
        moved.extend(np.sqrt(np.mean(((warped - x) / sd) ** 2, axis=(1, 2))))
    return float(np.median(moved)) if moved else 0.0


def _warp_many(values, speeds):
    """`warp_time` of each of (N, T, C) `values` (every step real) with its row of (N, K) `speeds`."""
    import tensorflow as tf

    return _traced_warp_many()(tf.constant(values), tf.constant(speeds)).numpy()


@functools.lru_cache(maxsize=None)
def _traced_warp_many():
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def warp_many(values, speeds):
        return tf.map_fn(lambda a: warp_time(a[0], tf.ones(tf.shape(a[0])[:1], "bool"), a[1])[0],
                         (values, speeds), fn_output_signature=values.dtype)

    return warp_many


def warp_strength_from_data(values, mask, strength, separation, seed=0, steps=10):
    """`(warp_strength, displacement)` of `augment_strength='auto'` for the time warp on a training set.

    The warp keeps the jitter's `strength` unless a warp at that strength moves a series
    (`warp_displacement`) farther than `WARP_MARGIN` x `separation` (`class_separation`): then the strongest
    weaker warp that does not, found by bisection (`steps` halvings; the seeded draws make the displacement
    grow with the strength). Series with sharp, narrow features (spikes) move far under a warp; smooth ones
    do not.

    Args:
        values: (N, T, C) float array.
        mask: (N, T) bool array.
        strength: float in [0, 1]. The jitter's strength (`strength_from_data`).
        separation: float. The training set's `class_separation`.
        seed: int. Seed of `warp_displacement`'s sample and draws.
        steps: int. Bisection steps.

    Returns:
        `(warp_strength, displacement)`: the chosen strength, and the displacement at `strength`.
    """
    limit = WARP_MARGIN * separation
    moved = warp_displacement(values, mask, strength, seed=seed)
    if moved <= limit or not math.isfinite(separation):
        return strength, moved
    low, high = 0.0, strength
    for _ in range(steps):
        middle = (low + high) / 2
        if warp_displacement(values, mask, middle, seed=seed) <= limit:
            low = middle
        else:
            high = middle
    return low, moved


def make_train_map(augment, seed=0, scale=SCALE, noise=NOISE, min_ratio=0.9, strength=1.0, warp=WARP,
                   warp_strength=None):
    """A per-example training map, or None.

    `"jitter_scale"` multiplies each channel of a series by exp(N(0, `scale`)) around its mean and adds
    noise of `noise` times its standard deviation (both computed over the real steps; padding stays
    zero). `"slice_jitter_scale"` first slices a window of a random `min_ratio` to 1 of the series and
    stretches it back to the series' length (`slice_window`): where a shape sits varies too.
    `"warp_jitter_scale"` first warps time (`warp_time`): the speed at each of `WARP_KNOTS` knots is
    exp(N(0, `warp`)), so parts of a series come a little earlier or later and are a little wider or
    narrower, its ends fixed. Small UCR/UEA training sets overfit without augmentation. `strength` (in
    [0, 1]) multiplies `scale`, `noise` and `warp` (not the slicing): `auto_strength` chooses it from the
    training data. `warp_strength` (in [0, 1]; defaults to `strength`) multiplies `warp` instead:
    `warp_strength_from_data` chooses it from the training data.

    The map is `train_map(inputs, label, example_seed=None)`. The training pipeline passes each example its
    own seed (`tlbkit.pipeline.batched`) and every draw is made from it with stateless ops, so a run draws
    the same perturbations from the same `seed` on every run. Called without one, it draws the example's
    seed with an op seeded by `seed`.
    """
    check_augment(augment)
    strength = check_strength(strength)
    if strength == "auto":
        raise ValueError("make_train_map needs a number for `strength`: compute it with auto_strength().")
    if augment == "none":
        return None
    import tensorflow as tf

    warp_strength = strength if warp_strength is None else check_strength(warp_strength)
    if warp_strength == "auto":
        raise ValueError("make_train_map needs a number for `warp_strength`: compute it with "
                         "warp_strength_from_data().")
    scale, noise, warp = scale * strength, noise * strength, warp * warp_strength

    def train_map(inputs, label, example_seed=None):
        # Every draw is stateless, from the example's own seed: the input pipeline gives one per example
        # (`tlbkit.pipeline.batched`), so a run draws the same numbers from the same seed however the map's
        # threads interleave. Called without one (a plain `Dataset.map`), the map draws it from `seed`.
        if example_seed is None:
            example_seed = tf.random.uniform([2], maxval=2**31 - 1, dtype="int64", seed=seed)
        draws = tf.random.experimental.stateless_split(tf.cast(example_seed, "int64"), 5)
        values, mask = inputs["values"], inputs["mask"]
        if augment == "warp_jitter_scale":
            speeds = tf.exp(tf.random.stateless_normal([WARP_KNOTS], draws[4], stddev=warp, dtype=values.dtype))
            values, mask = warp_time(values, mask, speeds)
        if augment == "slice_jitter_scale":
            ratio = tf.random.stateless_uniform([], draws[2], min_ratio, 1.0, dtype=values.dtype)
            values, mask = slice_window(values, mask, ratio, tf.random.stateless_uniform([], draws[3],
                                                                                          dtype=values.dtype))
        weight = tf.cast(mask, values.dtype)[:, None]
        count = tf.maximum(tf.reduce_sum(weight), 1.0)
        mean = tf.reduce_sum(values * weight, 0, keepdims=True) / count
        std = tf.sqrt(tf.reduce_sum(tf.square(values - mean) * weight, 0, keepdims=True) / count) + 1e-6
        factor = tf.exp(tf.random.stateless_normal(tf.shape(mean), draws[0], stddev=scale, dtype=values.dtype))
        jitter = tf.random.stateless_normal(tf.shape(values), draws[1], stddev=noise, dtype=values.dtype) * std
        return {"values": (mean + (values - mean) * factor + jitter) * weight, "mask": mask}, label

    return train_map
