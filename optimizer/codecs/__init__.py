"""Codecs: what turns the head's output into the bytes that cross the network, and back.

Blocked PCA + quantization + Huffman / ANS / context-adaptive ANS (constriction) for 1 <= k <= n, float16 as the
uncompressed reference, JPEG / WebP / PNG of the input at k = 0, the class id at k = n + 1, and one
wire format for all of them (see ``_wire``); the learned bottleneck's latent <-> ANS bitstream
(``_bottleneck``; its encoder and decoder live in optimizer.models).
"""

from __future__ import annotations

from optimizer.codecs._base import Codec
from optimizer.codecs._blocks import blocks_per_sample, from_vectors, to_vectors
from optimizer.codecs._bottleneck import BottleneckCodec
from optimizer.codecs._coders import ENTROPY_CODERS
from optimizer.codecs._context import ContextCoder
from optimizer.codecs._entropy import AnsCoder, EntropyCoder, HuffmanCoder, huffman_lengths
from optimizer.codecs._errors import CodecError, PayloadMismatch
from optimizer.codecs._feature import FeatureCodec, Float16Codec
from optimizer.codecs._image import IMAGE_FORMATS, ClassIdCodec, ImageCodec
from optimizer.codecs._pca import PrincipalBasis
from optimizer.codecs._registry import CODECS, load_codec, make_codec, save_codec
from optimizer.codecs._wire import FORMAT_VERSION, header_bytes
from optimizer.codecs._work import Work

__all__ = [
    "CODECS",
    "ENTROPY_CODERS",
    "FORMAT_VERSION",
    "IMAGE_FORMATS",
    "AnsCoder",
    "BottleneckCodec",
    "ClassIdCodec",
    "Codec",
    "CodecError",
    "ContextCoder",
    "EntropyCoder",
    "FeatureCodec",
    "Float16Codec",
    "HuffmanCoder",
    "ImageCodec",
    "PayloadMismatch",
    "PrincipalBasis",
    "Work",
    "blocks_per_sample",
    "from_vectors",
    "header_bytes",
    "huffman_lengths",
    "load_codec",
    "make_codec",
    "save_codec",
    "to_vectors",
]
