"""tlbkit: a sequence-modelling framework around the Temporal Latent Bottleneck cell."""

__version__ = "0.1.0"

from tlbkit import layers  # noqa: E402
from tlbkit import models  # noqa: E402
