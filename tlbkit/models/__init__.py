"""Models assembled from the engine's layers."""

from tlbkit.models.sequence_classifier import SequenceClassifier

__all__ = ["SequenceClassifier"]
