"""Synthetic tasks that need no download."""

from tlbkit_tasks.synthetic.long_range_recall import long_range_recall  # noqa: F401
