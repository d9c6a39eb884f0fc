"""Plugins shared by several modalities."""

from tasks.common.token_embedding import TokenEmbedding  # noqa: F401
