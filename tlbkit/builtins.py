"""Registers the engine's own pieces under short names (imported by `plugins.load_all`).

gin names: `cells.tlb`, `encoders.tlb`, `encoders.transformer`, `encoders.lstm`,
`heads.classification`, `models.classifier`, `models.ensemble` (plugins add `views.*`).
"""

from tlbkit import registry
from tlbkit.layers import ClassificationHead, LSTMEncoder, TLBCell, TLBEncoder, TransformerEncoder
from tlbkit.models import Ensemble, SequenceClassifier
from tlbkit import train as _train  # noqa: F401  (registers `train` with gin)

registry.CELLS.register("tlb")(TLBCell)
registry.ENCODERS.register("tlb")(TLBEncoder)
registry.ENCODERS.register("transformer")(TransformerEncoder)
registry.ENCODERS.register("lstm")(LSTMEncoder)
registry.HEADS.register("classification")(ClassificationHead)


@registry.MODELS.register("classifier")
def classifier(encoder, head="classification", tokenizer=None, num_classes=None, test_time_views=None,
               name="classifier"):
    """Builds a `SequenceClassifier` from registered parts.

    Each part may be a registered name, a gin reference (`@encoders.tlb()` built,
    or `@heads.classification` to be built here) or an object.

    Args:
        encoder: encoder name / factory / layer.
        head: head name / factory / layer. A factory is called with
            `num_classes`. Defaults to `"classification"`.
        tokenizer: optional tokenizer name / factory / layer.
        num_classes: int. Passed by the trainer from the dataset.
        test_time_views: optional views name / factory / layer (e.g. `@views.flip()` of the vision
            plugin): logits at inference are averaged over these views of each input.
        name: str. Model name.
    """
    head_kwargs = {} if num_classes is None else {"num_classes": num_classes}
    return SequenceClassifier(
        encoder=registry.ENCODERS.build(encoder),
        head=registry.HEADS.build(head, **head_kwargs),
        tokenizer=registry.TOKENIZERS.build(tokenizer) if tokenizer is not None else None,
        test_time_views=registry.VIEWS.build(test_time_views) if test_time_views is not None else None,
        name=name,
    )


@registry.MODELS.register("ensemble")
def ensemble(member="classifier", size=3, num_classes=None, name="ensemble"):
    """Builds an `Ensemble` of `size` models from one member factory, each built anew.

    In gin: `MODEL = @models.ensemble` and `models.ensemble.member = @models.classifier` (a reference
    without parentheses: the factory itself, called once per member, so every member gets its own
    parts and random initial weights).

    Args:
        member: model name / factory, called with `num_classes` once per member. Defaults to
            `"classifier"` (`models.classifier` with its gin bindings).
        size: int >= 2. Number of members. Each trains on its own `1 / size` of every training batch, so
            set `train.batch_size` to `size` times one member's batch; training then costs about `size`
            times one member's.
        num_classes: int. Passed by the trainer from the dataset.
        name: str. Model name.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 2:
        raise ValueError(f"models.ensemble.size must be an int >= 2; got {size!r}. For one model, set MODEL to the "
                         "member factory itself (e.g. @models.classifier).")
    if not isinstance(member, str) and not callable(member):
        raise ValueError(f"models.ensemble.member must be a model name or factory (e.g. @models.classifier, without "
                         f"parentheses, so that each member is built anew); got {member!r}.")
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    members = [registry.MODELS.build(member, **kwargs) for _ in range(size)]
    return Ensemble(members, name=name)
