"""The TLB slow stream's attention over images, as PNGs: the computation behind `tlbkit-viz`
(`tlbkit/bin/viz.py`, which holds the command line).

For each image: the image, and the image overlaid with the TLB slow stream's attention (per chunk: max
over latents, mean over heads; each token's weight placed at its patch and upsampled to the image, as the
keras-io example does), titled with the predicted label.
"""

import os

import numpy as np


def attention_maps(model, images):
    """(B, grid, grid) attention per token position of the slow stream, and the logits."""
    from keras import ops

    from tlbkit.layers import TLBEncoder
    from tlbkit.models.sequence_classifier import split_tokens

    if not hasattr(model, "encoder"):
        raise ValueError(f"tlbkit-viz shows one model's attention; this run's model is a {type(model).__name__} "
                         "(e.g. an ensemble of several models), which has no single encoder.")
    if not isinstance(model.encoder, TLBEncoder):
        raise ValueError("tlbkit-viz needs a TLB encoder (the run uses a baseline encoder).")
    tokens, mask = split_tokens(model.tokenizer(images))
    out = model.encoder(tokens, padding_mask=mask, return_attention_scores=True)
    logits = model(images, training=False)  # the model's prediction (averaged over its test-time views, if any)
    att = ops.convert_to_numpy(out["attention"])  # (B, N, heads, latents, C)
    per_token = att.max(axis=3).mean(axis=2)  # (B, N, C)
    num_tokens = tokens.shape[1]
    per_token = per_token.reshape(per_token.shape[0], -1)[:, :num_tokens]
    grid = int(round(num_tokens ** 0.5))
    if grid * grid != num_tokens:
        raise ValueError(f"{num_tokens} tokens do not form a square grid; tlbkit-viz needs an image tokenizer.")
    return per_token.reshape(-1, grid, grid), ops.convert_to_numpy(logits)


def save_figure(image, heat, title, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    size = image.shape[0]
    heat = (heat - heat.min()) / max(heat.max() - heat.min(), 1e-8)
    heat = np.asarray(Image.fromarray((heat * 255).astype("uint8")).resize((size, size), Image.BILINEAR)) / 255.0
    fig, ax = plt.subplots(1, 2, figsize=(6, 3.2))
    ax[0].imshow(image)
    ax[0].set_title("image")
    ax[1].imshow(image)
    ax[1].imshow(heat, cmap="inferno", alpha=0.6)
    ax[1].set_title("TLB attention")
    for a in ax:
        a.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def visualize(model_dir, paths, output_dir, checkpoint="last"):
    """Writes one PNG per input image; returns the written paths.

    Raises:
        ValueError: before anything is written, when the run is not an image task with a TLB encoder.
    """
    import tensorflow as tf

    from tlbkit import evaluate as evaluate_lib

    spec = evaluate_lib.run_spec()
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"image file not found: {missing[0]}")
    if spec.read_inputs is None:
        raise ValueError("tlbkit-viz needs an image task: this run's dataset plugin reads no files.")
    raw = np.asarray(spec.read_inputs(list(paths)))
    if raw.ndim != 4:
        raise ValueError(f"tlbkit-viz needs an image task: this run's inputs have shape {raw.shape}, not "
                         "(images, height, width, channels).")
    model = evaluate_lib.load_run_model(model_dir, checkpoint)
    images = np.stack([spec.eval_map(tf.constant(r), 0)[0].numpy() for r in raw]) if spec.eval_map else raw
    heat, logits = attention_maps(model, images)
    names = evaluate_lib.class_names(model_dir, spec)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    os.makedirs(output_dir, exist_ok=True)
    written = []
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    for path, stem, image, h, p in zip(paths, stems, images, heat, probs):
        if stems.count(stem) > 1:  # e.g. cat/0001.jpg and ship/0001.jpg
            stem = os.path.basename(os.path.dirname(os.path.abspath(path))) + "_" + stem
        out = os.path.join(output_dir, stem + "_attention.png")
        save_figure(np.clip(image / 255.0, 0, 1), h, f"predicted: {names[int(p.argmax())]} ({p.max():.2f})", out)
        written.append(out)
    return written
