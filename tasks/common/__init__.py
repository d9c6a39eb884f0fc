"""Plugins shared by several modalities."""

from tlbkit_tasks.common.token_embedding import TokenEmbedding  # noqa: F401
