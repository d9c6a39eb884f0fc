"""A tokenizer, an encoder and a head as one Keras model."""

import keras

from tlbkit.models import predictions
from tlbkit.serialization import register_serializable


def split_tokens(tokenized):
    """Tokenizer output -> (tokens, mask). Accepts a tensor, a (tokens, mask) pair or a dict."""
    if isinstance(tokenized, dict):
        return tokenized["tokens"], tokenized.get("mask")
    if isinstance(tokenized, (tuple, list)):
        return tokenized[0], tokenized[1]
    return tokenized, None


@register_serializable("tlbkit.models.SequenceClassifier")
class SequenceClassifier(predictions.ClassNames, keras.Model):
    """`tokenizer -> encoder -> head`, trained with `fit` like any Keras model.

    The tokenizer turns raw inputs (images, bytes, series...) into (B, T, dim)
    tokens and an optional (B, T) padding mask; it is the only modality-specific
    part. The encoder is a `TLBEncoder` or a baseline with the same interface;
    the head maps the encoder's output dict to logits.

    Args:
        encoder: `TLBEncoder`, `TransformerEncoder` or `LSTMEncoder`.
        head: `ClassificationHead`.
        tokenizer: optional Keras layer. `None` means the inputs already are
            tokens (a tensor, or a `(tokens, mask)` pair / dict).
        test_time_views: optional Keras layer mapping a batch of inputs to a list
            of views of the same examples, each shaped like the batch (e.g. the
            images and their mirror images: test-time augmentation). At inference
            (`training` falsy: `evaluate`, `predict`, validation in `fit`) the
            views go through the network as one batch and their logits are
            averaged; training never uses them. `None` (default): one view.
        class_names: optional list of str, one per class (logit), in logit order: saved in the config,
            used by `predict_classes`. `tlbkit-train` sets it from the dataset. Defaults to `None`.
        **kwargs: forwarded to `keras.Model`.

    Inputs are what the tokenizer takes, which is what users hold: images of 0-255 pixels (uint8 or
    float, e.g. `keras.utils.img_to_array(keras.utils.load_img(path))`), strings, series arrays.

    Streaming (TLB encoder only): `init_state(batch_size)` and
    `step(token_chunk, state, mask=None) -> (logits, new_state)` feed an
    unbounded stream chunk by chunk with constant memory, giving a prediction
    after each chunk (from tokens: `test_time_views` do not apply).
    """

    def __init__(self, encoder, head, tokenizer=None, test_time_views=None, class_names=None, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.head = head
        self.test_time_views = test_time_views
        self.class_names = class_names

    @property
    def num_classes(self):
        """The number of logits (the head's `num_classes`), or None for a head that does not say."""
        return getattr(self.head, "num_classes", None)

    def call(self, inputs, training=None):
        if self.test_time_views is None or training:
            return self.logits(inputs, training=training)
        views = list(self.test_time_views(inputs))
        if not views:
            raise ValueError(f"test_time_views {self.test_time_views.name!r} returned no views.")
        if len(views) == 1:
            return self.logits(views[0], training=training)
        # One batch of len(views) * B examples: one pass through the network, then the mean over views.
        def concatenate(*parts):
            return None if parts[0] is None else keras.ops.concatenate(parts, axis=0)

        batch = keras.tree.map_structure(concatenate, *views)
        logits = self.logits(batch, training=training)
        return keras.ops.mean(keras.ops.stack(keras.ops.split(logits, len(views), axis=0)), axis=0)

    def tokenize(self, inputs, training=None):
        """`(tokens, mask)` of the inputs: the tokenizer's output (the inputs themselves without one); `mask`
        may be None. What `step` streams, chunk by chunk."""
        return split_tokens(self.tokenizer(inputs, training=training) if self.tokenizer is not None else inputs)

    def logits(self, inputs, training=None):
        """The logits of one view of the inputs: `tokenizer -> encoder -> head`."""
        tokens, mask = self.tokenize(inputs, training=training)
        outputs = self.encoder(tokens, padding_mask=mask, training=training)
        return self.head(outputs, training=training)

    # === Data-dependent state ===
    @property
    def needs_adapt(self):
        """Whether a part learns state from the training data before training (e.g. a tokenizer's
        dataset normalisation, test-time views sized on the training set): then call `adapt` first
        (`tlbkit-train` does)."""
        return any(callable(getattr(part, "adapt", None)) for part in (self.tokenizer, self.test_time_views))

    def adapt(self, dataset):
        """Lets the tokenizer, then the test-time views, learn from the (unaugmented) training data: batches of
        `(inputs, labels)`."""
        for part in (self.tokenizer, self.test_time_views):
            if callable(getattr(part, "adapt", None)):
                part.adapt(dataset)

    # === Streaming ===
    def init_state(self, batch_size):
        return self.encoder.init_state(batch_size)

    def step(self, token_chunk, state, mask=None):
        """One chunk of tokens (B, C, dim) -> (logits after this chunk, new state).

        The head reads the new slow state (`pooling="state"`) or this chunk's fast outputs
        (`"last_chunk"`); a `"mean"` head pools every chunk seen, which a single step does not hold.
        """
        if getattr(self.head, "pooling", None) == "mean":
            raise ValueError("SequenceClassifier.step cannot stream a head with pooling='mean' (a mean over every "
                             "chunk seen); use pooling='state' or 'last_chunk' for streaming.")
        outputs, new_state = self.encoder.step(token_chunk, state, mask=mask)
        if mask is None:
            mask = keras.ops.ones(keras.ops.shape(token_chunk)[:2], dtype="bool")
        logits = self.head({"state": new_state, "sequence": outputs, "mask": mask})
        return logits, new_state

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "head": keras.saving.serialize_keras_object(self.head),
                "tokenizer": keras.saving.serialize_keras_object(self.tokenizer)
                if self.tokenizer is not None
                else None,
                "test_time_views": keras.saving.serialize_keras_object(self.test_time_views)
                if self.test_time_views is not None
                else None,
                "class_names": list(self.class_names) if self.class_names is not None else None,
            }
        )
        return config

    @classmethod
    def from_preset(cls, preset, num_classes=None, class_names=None, checkpoint="last"):
        """A trained model from a preset name, an exported run's folder or a run directory.

        The preset's plugin packages are imported first (see `tlbkit.presets.load_model`). The model
        returned is what the preset holds when it is a `SequenceClassifier` or an `Ensemble` whose
        members all are (an ensemble of classifiers is a classifier: same inputs, averaged logits);
        anything else is a `TypeError` pointing to `tlbkit.load_model`, which returns any class.

        Args:
            preset: str. A preset name, or the folder of an exported run or of a run.
            num_classes: int or None. Given, the model gets a new, freshly initialised head with this many
                classes (keras-hub's habit: fine-tuning on other classes); tokenizer and encoder keep their
                trained weights. Defaults to `None`: the trained head.
            class_names: list of str or None. The new classes' names (implies `num_classes`).
            checkpoint: str. `"last"` or `"best"`, for a run directory. Defaults to `"last"`.

        Example:
        >>> model = SequenceClassifier.from_preset("cifar10_tlb")  # doctest: +SKIP
        >>> flowers = SequenceClassifier.from_preset("cifar10_tlb", num_classes=5)  # doctest: +SKIP
        """
        from tlbkit import presets

        return presets.load_model(preset, expected=cls, num_classes=num_classes, class_names=class_names,
                                  checkpoint=checkpoint)

    def _parts(self):
        return [p for p in (self.tokenizer, self.encoder, self.head) if p is not None]

    def build_from_config(self, config):
        """Marks the model built when loading restored its parts already.

        `from_config` rebuilds the tokenizer, encoder and head from their own build configs;
        Keras's default would build the model again by calling it on placeholder float inputs,
        which cannot work for models that take strings (text tokenizers).
        """
        if not mark_built_from_parts(self, self._parts()):
            super().build_from_config(config)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "head", "tokenizer", "test_time_views"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        model = cls(**config)
        mark_built_from_parts(model, model._parts())
        return model


def mark_built_from_parts(model, parts):
    """Flags a composite model built when every part came back built from its file, and says whether it did.

    A model saved after a reload has no build config of its own (Keras records one only when it builds the
    model itself); its parts keep theirs, so whether they are built is what says the model is.
    """
    if parts and all(p.built for p in parts):
        model.built = True
    return model.built
