"""Models assembled from the engine's layers."""

from tlbkit.models.ensemble import Ensemble
from tlbkit.models.sequence_classifier import SequenceClassifier

__all__ = ["Ensemble", "SequenceClassifier"]
