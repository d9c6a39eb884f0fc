"""Modality plugins. Importing this package registers every built-in plugin."""

from tlbkit_tasks import common  # noqa: F401
from tlbkit_tasks import synthetic  # noqa: F401
from tlbkit_tasks import text  # noqa: F401
from tlbkit_tasks import timeseries  # noqa: F401
from tlbkit_tasks import vision  # noqa: F401
