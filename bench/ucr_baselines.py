"""Reference classifiers for UCR/UEA sets, computed here: 1-NN with full-window DTW and ROCKET.

    python bench/ucr_baselines.py --names=GunPoint,ItalyPowerDemand [--data_dir=DIR] [--kernels=10000] \
        [--methods=dtw,rocket] [--output=runs/baselines.jsonl]

1-NN DTW: the archive's baseline (no warping window unless --window; multivariate: DTW_D, the squared
Euclidean distance of the channel vectors as the local cost). With numba installed (`pip install numba`) the
dynamic programme is compiled (about 1e9 cells a second on one core); without it, a vectorised NumPy version
(hours on long series). ROCKET (Dempster et al., 2020, arXiv:1910.13051): 10,000 random
convolution kernels (lengths 7/9/11, normal weights centred, uniform bias, exponential dilation, random
padding; multivariate: a random subset of channels per kernel), the max and the proportion of positive
values of each output as features, a ridge classifier with leave-one-out choice of the regularisation.
The kernels run as TensorFlow convolutions; everything is seeded. Series are read with tlbkit's `.ts`
reader; missing values are interpolated and variable lengths padded with the series' last value.

Prints one JSON line per set: {"name", "dtw_1nn", "rocket", their seconds, "train", "test", "length", "channels"};
with --output also appends it to that file, and sets already there are skipped (resumable).
"""

import json
import math
import os
import sys
import time

import numpy as np
from absl import app, flags

flags.DEFINE_list("names", ["GunPoint", "ItalyPowerDemand"], "UCR/UEA set names.")
flags.DEFINE_string("data_dir", None, "Folder (or zip) holding the sets in any layout tlbkit reads "
                    "(UCRArchive_2018/<Name>/<Name>_TRAIN.tsv, .ts, .arff; default: aeon's bundled copies).")
flags.DEFINE_string("output", None, "JSON-lines file to append each set's row to; sets already in it are skipped.")
flags.DEFINE_float("window", None, "Sakoe-Chiba warping window as a fraction of the length (None: full window).")
flags.DEFINE_integer("kernels", 10_000, "ROCKET kernels.")
flags.DEFINE_integer("seed", 0, "Seed of the ROCKET kernels.")
flags.DEFINE_list("methods", ["dtw", "rocket"], "Which references to compute (full-window DTW costs O(train x test x "
                  "length^2) time and O(train x length^2) memory: over a few hundred steps, minutes to hours).")
FLAGS = flags.FLAGS
METHODS = ("dtw", "rocket")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name, data_dir):
    """(x_train, y_train, x_test, y_test) with x as (N, T, C) float64 (padded with the last value)."""
    from tlbkit_tasks.timeseries.archive import locate
    from tlbkit_tasks.timeseries.formats import read_labelled
    from tlbkit_tasks.timeseries.series_arrays import _interpolate, class_names_of, label_ids

    train_path, test_path = locate(name, data_dir)
    train, test = read_labelled(train_path), read_labelled(test_path)
    names = class_names_of(train)
    length = max(len(s) for s in train.series + test.series)

    def stack(data):
        out = np.zeros((len(data.series), length, data.num_channels))
        for i, s in enumerate(data.series):
            s = _interpolate(s) if np.isnan(s).any() else s
            out[i, : len(s)], out[i, len(s):] = s, s[-1]
        return out

    return (stack(train), np.array(label_ids(train, names, train_path)),
            stack(test), np.array(label_ids(test, names, test_path)))


# === 1-NN DTW ===
def dtw_distances(queries, references):
    """Full-window DTW between every query and reference series: (Q, R); cost = squared distance of the
    channel vectors. Vectorised over all pairs, one anti-diagonal of the DP table at a time."""
    q, r = queries.shape[1], references.shape[1]
    cost = ((queries[:, None, :, None, :] - references[None, :, None, :, :]) ** 2).sum(-1)  # (Q, R, q, r)
    acc = np.full(cost.shape, np.inf)
    acc[..., 0, 0] = cost[..., 0, 0]
    for d in range(1, q + r - 1):
        i = np.arange(max(0, d - r + 1), min(q, d + 1))
        j = d - i
        prev = np.minimum(
            np.where((i > 0)[None, None], acc[..., np.maximum(i - 1, 0), j], np.inf),
            np.where((j > 0)[None, None], acc[..., i, np.maximum(j - 1, 0)], np.inf),
        )
        diag = np.where(((i > 0) & (j > 0))[None, None], acc[..., np.maximum(i - 1, 0), np.maximum(j - 1, 0)], np.inf)
        acc[..., i, j] = cost[..., i, j] + np.minimum(prev, diag)
    return acc[..., -1, -1]


def _numba_dtw():
    """A compiled 1-NN DTW `(x_train, x_test, window) -> index of each test series' nearest neighbour`, or
    None without numba. Exact: for each test series the training series are visited in order of their
    Euclidean distance (an upper bound of full-window DTW for series of equal length), and a pair is
    abandoned once a whole row of its DP table exceeds the best distance found so far (costs are
    non-negative). Two rows of the table are kept; cells outside a warping window stay infinite."""
    try:
        import numba
    except ImportError as e:  # numba without llvmlite fails here too: say so, the fallback is much slower
        print(f"ucr_baselines: numba unavailable ({e}); DTW runs in NumPy (pip install numba llvmlite)",
              file=sys.stderr)
        return None

    @numba.njit(cache=True)
    def distance(a, b, window, best):
        q, r, channels = a.shape[0], b.shape[0], a.shape[1]
        prev = np.full(r + 1, np.inf)
        cur = np.full(r + 1, np.inf)
        prev[0] = 0.0
        for i in range(1, q + 1):
            lo, hi = 1, r
            if window >= 0:
                lo, hi = max(1, i - window), min(r, i + window)
            cur[lo - 1] = np.inf
            row_min = np.inf
            for k in range(lo, hi + 1):
                cost = 0.0
                for c in range(channels):
                    diff = a[i - 1, c] - b[k - 1, c]
                    cost += diff * diff
                m = prev[k - 1]
                if prev[k] < m:
                    m = prev[k]
                if cur[k - 1] < m:
                    m = cur[k - 1]
                cur[k] = cost + m
                if cur[k] < row_min:
                    row_min = cur[k]
            if hi < r:
                cur[hi + 1] = np.inf
            if row_min >= best:
                return np.inf
            prev, cur = cur, prev
        return prev[r]

    @numba.njit(parallel=True, cache=True)
    def nearest(x_train, x_test, window):
        n_test, n_train = x_test.shape[0], x_train.shape[0]
        out = np.zeros(n_test, np.int64)
        for t in numba.prange(n_test):
            euclid = np.empty(n_train)
            for j in range(n_train):
                euclid[j] = ((x_test[t] - x_train[j]) ** 2).sum()
            best, best_j = np.inf, 0
            for j in np.argsort(euclid):
                d = distance(x_test[t], x_train[j], window, best)
                if d < best:
                    best, best_j = d, j
            out[t] = best_j
        return out

    return nearest


def dtw_1nn(x_train, y_train, x_test, y_test, cells=5e7, window=None):
    """Accuracy of 1-NN DTW (full window, or a Sakoe-Chiba `window` as a fraction of the length); compiled
    with numba when installed, else test series in NumPy blocks of about `cells` DP cells (memory bound)."""
    nearest = _numba_dtw()
    if nearest is not None:
        band = -1 if window is None else max(int(round(window * x_train.shape[1])), abs(x_train.shape[1] - x_test.shape[1]))
        index = nearest(np.ascontiguousarray(x_train, "float64"), np.ascontiguousarray(x_test, "float64"), band)
        return float((y_train[index] == y_test).mean())
    if window is not None:
        raise ValueError("--window needs numba (pip install numba); the NumPy fallback computes the full window.")
    block = max(1, int(cells / (len(x_train) * x_train.shape[1] * x_test.shape[1])))
    correct = 0
    for start in range(0, len(x_test), block):
        d = dtw_distances(x_test[start:start + block], x_train)
        correct += int((y_train[d.argmin(1)] == y_test[start:start + block]).sum())
    return correct / len(x_test)


# === ROCKET ===
def rocket_kernels(n, length, channels, rng):
    kernels = []
    for _ in range(n):
        size = int(rng.choice([7, 9, 11]))
        used = rng.choice(channels, size=min(channels, 2 ** int(rng.uniform(0, math.log2(channels + 1)))),
                          replace=False) if channels > 1 else np.array([0])
        weights = np.zeros((size, channels))
        w = rng.normal(0, 1, size=(size, len(used)))
        weights[:, used] = w - w.mean(0)
        dilation = int(2 ** rng.uniform(0, math.log2((length - 1) / (size - 1)))) if length > size else 1
        padding = ((size - 1) * dilation) // 2 if rng.integers(2) else 0
        kernels.append((weights, float(rng.uniform(-1, 1)), dilation, padding))
    return kernels


def rocket_features(x, kernels):
    """(N, 2 * kernels) features: per kernel the max and the proportion of positive values."""
    import tensorflow as tf

    groups = {}
    for k, (w, b, d, p) in enumerate(kernels):
        groups.setdefault((w.shape[0], d, p), []).append(k)
    features = np.zeros((len(x), 2 * len(kernels)), "float32")
    xt = tf.constant(x, tf.float32)
    for (size, dilation, padding), ids in groups.items():
        filters = tf.constant(np.stack([kernels[k][0] for k in ids], -1), tf.float32)  # (size, C, K)
        bias = tf.constant([kernels[k][1] for k in ids], tf.float32)
        inp = tf.pad(xt, [[0, 0], [padding, padding], [0, 0]]) if padding else xt
        if inp.shape[1] < (size - 1) * dilation + 1:
            continue
        out = tf.nn.conv1d(inp, filters, stride=1, padding="VALID", dilations=dilation) + bias
        features[:, [2 * k for k in ids]] = tf.reduce_max(out, 1).numpy()
        features[:, [2 * k + 1 for k in ids]] = tf.reduce_mean(tf.cast(out > 0, tf.float32), 1).numpy()
    return features


def ridge_classifier(x_train, y_train, x_test, alphas=np.logspace(-3, 3, 10)):
    """One-vs-rest ridge regression on standardised features, alpha chosen by leave-one-out error."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-8
    a, t = (x_train - mean) / std, (x_test - mean) / std
    classes = np.unique(y_train)
    targets = np.where(y_train[:, None] == classes[None], 1.0, -1.0)
    offset = targets.mean(0)
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    uty = u.T @ (targets - offset)
    best = None
    for alpha in alphas:
        shrink = s ** 2 / (s ** 2 + alpha)
        fitted = u @ (shrink[:, None] * uty) + offset
        hat = (u ** 2) @ shrink + 1.0 / len(a)  # diagonal of the hat matrix (intercept included)
        loo = (targets - fitted) / (1 - hat)[:, None]
        error = (loo ** 2).sum()
        if best is None or error < best[0]:
            best = (error, alpha)
    alpha = best[1]
    weights = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (targets - offset)) if a.shape[1] <= len(a) \
        else a.T @ np.linalg.solve(a @ a.T + alpha * np.eye(len(a)), targets - offset)
    return classes[(t @ weights + offset).argmax(1)]


def rocket(x_train, y_train, x_test, y_test, n, seed):
    kernels = rocket_kernels(n, x_train.shape[1], x_train.shape[2], np.random.default_rng(seed))
    predicted = ridge_classifier(rocket_features(x_train, kernels).astype("float64"), y_train,
                                 rocket_features(x_test, kernels).astype("float64"))
    return float((predicted == y_test).mean())


def main(argv):
    del argv
    unknown = set(FLAGS.methods) - set(METHODS)
    if unknown:
        raise app.UsageError(f"--methods: unknown {sorted(unknown)}; choose from {', '.join(METHODS)}.")
    sys.path.insert(0, ROOT)
    done = set()
    if FLAGS.output and os.path.exists(FLAGS.output):
        with open(FLAGS.output) as f:
            done = {json.loads(line)["name"] for line in f if line.strip()}
    for name in FLAGS.names:
        if name in done:
            continue
        x_train, y_train, x_test, y_test = load(name, FLAGS.data_dir)
        row = {"name": name}
        if FLAGS.window is not None:
            row["dtw_window"] = FLAGS.window
        scorers = {"dtw": ("dtw_1nn", lambda: dtw_1nn(x_train, y_train, x_test, y_test, window=FLAGS.window)),
                   "rocket": ("rocket", lambda: rocket(x_train, y_train, x_test, y_test, FLAGS.kernels, FLAGS.seed))}
        for method in (m for m in METHODS if m in FLAGS.methods):
            key, score = scorers[method]
            t0 = time.perf_counter()
            row[key] = round(score(), 4)
            row[f"{method}_s"] = round(time.perf_counter() - t0, 1)
        row.update(train=len(x_train), test=len(x_test), length=x_train.shape[1], channels=x_train.shape[2])
        print(json.dumps(row), flush=True)
        if FLAGS.output:
            os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
            with open(FLAGS.output, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    app.run(main)
