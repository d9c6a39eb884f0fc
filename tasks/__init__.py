"""Modality plugins. Importing this package registers every built-in plugin."""

from tasks import common  # noqa: F401
from tasks import synthetic  # noqa: F401
from tasks import text  # noqa: F401
from tasks import timeseries  # noqa: F401
from tasks import vision  # noqa: F401
