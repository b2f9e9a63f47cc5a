"""The entropy coders a PCA codec can name in its ``coder`` parameter (besides ``raw`` packing)."""

from __future__ import annotations

from optimizer.codecs._context import ContextCoder
from optimizer.codecs._entropy import AnsCoder, EntropyCoder, HuffmanCoder

__all__ = ["ENTROPY_CODERS"]

ENTROPY_CODERS: dict[str, type[EntropyCoder]] = {"huffman": HuffmanCoder, "ans": AnsCoder, "ctx": ContextCoder}
