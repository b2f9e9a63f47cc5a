"""Codecs: what turns the head's output into the bytes that cross the network, and back, under one
contract (see ``_base``): fit on calib, a device and a server transform (exportable to ONNX), an
entropy model, countable costs, state as arrays.

Registered (``CODECS``): blocked PCA + quantization + Huffman / ANS / context-adaptive ANS
(constriction) at a split (``pca``), float16 as the uncompressed reference (``float16``), JPEG /
WebP / PNG of the input at k = 0 (``image``), the class id at the last split (``class-id``), the
learned bottleneck with a factorized or hyperprior entropy model (``bottleneck``; its networks live
in optimizer.models), and uniform quantization without PCA (``uniform``, the example of adding a
codec). One wire format serves all of them (``_wire``).
"""

from __future__ import annotations

from optimizer.codecs._base import ACTIVATION, INPUT, OUTPUT, PLACES, Codec
from optimizer.codecs._blocks import blocks_per_sample, from_vectors, to_vectors
from optimizer.codecs._bottleneck import BottleneckChoice, BottleneckCodec
from optimizer.codecs._class_id import ClassIdCodec
from optimizer.codecs._coders import ENTROPY_CODERS
from optimizer.codecs._context import ContextCoder
from optimizer.codecs._entropy import AnsCoder, EntropyCoder, HuffmanCoder, huffman_lengths
from optimizer.codecs._errors import CodecError, PayloadMismatch
from optimizer.codecs._feature import FeatureCodec
from optimizer.codecs._fit import Calib, FitContext, Site
from optimizer.codecs._float16 import Float16Codec
from optimizer.codecs._image import IMAGE_FORMATS, ImageCodec
from optimizer.codecs._options import CodecOptions
from optimizer.codecs._pca import PrincipalBasis
from optimizer.codecs._registry import CODECS, codec_class, load_codec, make_codec, save_codec
from optimizer.codecs._space import CodecChoices, codec_of_trial, selector_param, variant_param
from optimizer.codecs._uniform import UniformCodec
from optimizer.codecs._wire import FORMAT_VERSION, header_bytes
from optimizer.codecs._work import Work

__all__ = [
    "ACTIVATION",
    "CODECS",
    "ENTROPY_CODERS",
    "FORMAT_VERSION",
    "IMAGE_FORMATS",
    "INPUT",
    "OUTPUT",
    "PLACES",
    "AnsCoder",
    "BottleneckChoice",
    "BottleneckCodec",
    "Calib",
    "ClassIdCodec",
    "Codec",
    "CodecChoices",
    "CodecError",
    "CodecOptions",
    "ContextCoder",
    "EntropyCoder",
    "FeatureCodec",
    "FitContext",
    "Float16Codec",
    "HuffmanCoder",
    "ImageCodec",
    "PayloadMismatch",
    "PrincipalBasis",
    "Site",
    "UniformCodec",
    "Work",
    "blocks_per_sample",
    "codec_class",
    "codec_of_trial",
    "from_vectors",
    "header_bytes",
    "huffman_lengths",
    "load_codec",
    "make_codec",
    "save_codec",
    "selector_param",
    "to_vectors",
    "variant_param",
]
