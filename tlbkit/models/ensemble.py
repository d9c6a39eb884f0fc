"""Several classifiers trained side by side in one model; their logits averaged at inference."""

import keras
from keras import ops

from tlbkit.models import predictions
from tlbkit.models.sequence_classifier import mark_built_from_parts
from tlbkit.serialization import register_serializable


@register_serializable("tlbkit.models.Ensemble")
class Ensemble(predictions.ClassNames, keras.Model):
    """`k` member models of one design, trained at once as `k` separate runs would be, and averaged.

    The members share nothing: each has its own tokenizer, encoder and head, initialised
    from its own random draws, and in training each learns from its own examples: a
    training batch is cut into `k` consecutive slices and member `i` trains on slice `i`
    (the batch is shuffled, so each member sees its own random order of the data, as runs
    of different seeds would; InceptionTime's habit for small datasets). So one run of an
    ensemble with `train.batch_size = k * b` trains what `k` runs with batch `b` would,
    for the same compute, and the loss is the mean of the members' losses.

    - Training (`training=True`): (B, C) logits, row `j` from the member that owns row `j`;
      training metrics thus score each member on its own slice.
    - Inference (`evaluate`, `predict`, validation in `fit`): the mean of every member's
      logits for every example, (B, C), each member with its own test-time views, if any.

    Args:
        members: list of at least two Keras models mapping the same inputs to (B, C)
            logits, e.g. `SequenceClassifier`s built by one factory.
        class_names: optional list of str, one per class (logit), in logit order: saved in the config,
            used by `predict_classes`. `tlbkit-train` sets it from the dataset. Defaults to `None`.
        **kwargs: forwarded to `keras.Model`.

    Streaming (when every member streams): `init_state(batch_size)` gives one state per
    member, and `step(token_chunks, state, masks=None)` takes one token chunk per member
    (members have their own tokenizers: `tokenize(inputs)` gives each member's tokens).
    """

    def __init__(self, members, class_names=None, **kwargs):
        super().__init__(**kwargs)
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"an Ensemble needs at least 2 members; got {len(members)}. Use the member model itself "
                             "for one.")
        if len({id(m) for m in members}) != len(members):
            raise ValueError("Ensemble members must be distinct models (the same model was given twice: build one per "
                             "member, e.g. with models.ensemble's factory).")
        self.members = members
        self.class_names = class_names

    @property
    def size(self):
        return len(self.members)

    @property
    def num_classes(self):
        """The number of logits (the first member's `num_classes`), or None when it does not say."""
        return getattr(self.members[0], "num_classes", None)

    def call(self, inputs, training=None):
        if training:
            return self.member_logits(inputs, training=training)
        logits = [member(inputs, training=training) for member in self.members]
        return ops.mean(ops.stack(logits, axis=0), axis=0)

    def member_logits(self, inputs, training=None):
        """Training's logits: the batch cut into `size` consecutive slices, slice `i` through member `i`,
        the rows concatenated back in order (B, C)."""
        first = next(t for t in keras.tree.flatten(inputs) if t is not None)
        batch = first.shape[0]
        if batch is not None and batch < self.size:
            raise ValueError(f"a training batch of {batch} examples cannot be shared among the ensemble's {self.size} "
                             f"members (each trains on its own slice): raise train.batch_size to at least {self.size}, "
                             "ideally to size x the batch one model would train with.")
        batch = ops.shape(first)[0]
        logits = []
        for i, member in enumerate(self.members):
            start, stop = (i * batch) // self.size, ((i + 1) * batch) // self.size
            piece = keras.tree.map_structure(lambda t: None if t is None else t[start:stop], inputs)
            logits.append(member(piece, training=training))
        return ops.concatenate(logits, axis=0)

    # === Data-dependent state ===
    @property
    def needs_adapt(self):
        """Whether a member learns state from the training data before training (see `SequenceClassifier`)."""
        return any(getattr(m, "needs_adapt", False) for m in self.members)

    def adapt(self, dataset):
        for member in self.members:
            if getattr(member, "needs_adapt", False):
                member.adapt(dataset)

    # === Streaming ===
    def tokenize(self, inputs):
        """Each member's `(tokens, mask)` of the inputs: a list, one pair per member."""
        return [member.tokenize(inputs) for member in self.members]

    def init_state(self, batch_size):
        return [member.init_state(batch_size) for member in self.members]

    def step(self, token_chunks, state, masks=None):
        """One chunk per member -> (mean logits after this chunk, new states).

        Args:
            token_chunks: list of (B, C, dim) chunks, one per member, in member order.
            state: list of member states (`init_state`, or the previous step's).
            masks: None, or a list of (B, C) masks, one per member.
        """
        if len(token_chunks) != self.size or len(state) != self.size:
            raise ValueError(f"Ensemble.step needs one token chunk and one state per member ({self.size}); got "
                             f"{len(token_chunks)} chunks and {len(state)} states (see Ensemble.tokenize).")
        masks = [None] * self.size if masks is None else masks
        results = [m.step(c, s, mask=k) for m, c, s, k in zip(self.members, token_chunks, state, masks)]
        logits = ops.mean(ops.stack([r[0] for r in results], axis=0), axis=0)
        return logits, [r[1] for r in results]

    # === Serialization ===
    def get_config(self):
        config = super().get_config()
        config["members"] = [keras.saving.serialize_keras_object(m) for m in self.members]
        config["class_names"] = list(self.class_names) if self.class_names is not None else None
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["members"] = [keras.saving.deserialize_keras_object(m) for m in config["members"]]
        model = cls(**config)
        mark_built_from_parts(model, model.members)
        return model

    def build_from_config(self, config):
        """Marks the ensemble built when its members came back built (see `SequenceClassifier`)."""
        if not mark_built_from_parts(self, self.members):
            super().build_from_config(config)

    @classmethod
    def from_preset(cls, preset, num_classes=None, class_names=None, checkpoint="last"):
        """A trained ensemble from a preset name, an exported run's folder or a run directory: a `TypeError`
        unless the preset holds an `Ensemble` (`tlbkit.load_model` returns any class).

        Args:
            preset: str. A preset name, or the folder of an exported run or of a run.
            num_classes: int or None. Given, every member gets a new, freshly initialised head with this many
                classes. Defaults to `None`: the trained heads.
            class_names: list of str or None. The new classes' names (implies `num_classes`).
            checkpoint: str. `"last"` or `"best"`, for a run directory. Defaults to `"last"`.
        """
        from tlbkit import presets

        return presets.load_model(preset, expected=cls, num_classes=num_classes, class_names=class_names,
                                  checkpoint=checkpoint)
