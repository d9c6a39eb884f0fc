"""Registers the engine's own pieces under short names (imported by `plugins.load_all`).

gin names: `cells.tlb`, `encoders.tlb`, `encoders.transformer`, `encoders.lstm`,
`heads.classification`, `models.classifier` (plugins add `views.*`).
"""

from tlbkit import registry
from tlbkit.layers import ClassificationHead, LSTMEncoder, TLBCell, TLBEncoder, TransformerEncoder
from tlbkit.models import SequenceClassifier
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
