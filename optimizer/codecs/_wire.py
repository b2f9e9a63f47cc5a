"""The wire format shared by every payload.

    offset  size  field
    0       2     magic b"SO"
    2       1     format version (1)
    3       1     codec id (see CODEC_IDS)
    4       4     the first 4 bytes of the SHA-256 of the codec state: a payload decodes only
                  with the codec that made it
    8       1     ndim, then ndim dimensions as LEB128 varints (the shape the decoder returns)
    ...     var   body length in bytes, LEB128 varint
    ...     n     body (codec-specific: entropy-coded symbols, an image file, ...)

A typical header is 13-15 bytes. ``len(payload)`` is the payload size everywhere in split-opt.
Parsing checks every field against the codec before it touches the body, so a lying header can't
make the decoder allocate more than the codec's declared maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer.codecs._errors import CodecError, PayloadMismatch

__all__ = ["FORMAT_VERSION", "MAGIC", "Header", "pack", "unpack"]

MAGIC = b"SO"
FORMAT_VERSION = 1
_MAX_NDIM = 4


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(pos, min(pos + 5, len(data))):
        value |= (data[i] & 0x7F) << shift
        if not data[i] & 0x80:
            return value, i + 1
        shift += 7
    raise CodecError("truncated or overlong varint in the payload header")


@dataclass(frozen=True)
class Header:
    codec_id: int
    state_hash: bytes
    shape: tuple[int, ...]


def pack(header: Header, body: bytes) -> bytes:
    dims = b"".join(_varint(d) for d in header.shape)
    return (
        MAGIC
        + bytes([FORMAT_VERSION, header.codec_id])
        + header.state_hash[:4]
        + bytes([len(header.shape)])
        + dims
        + _varint(len(body))
        + body
    )


def unpack(payload: bytes, expected: Header, max_body: int, max_dim: int = 1 << 16) -> tuple[tuple[int, ...], bytes]:
    """Check the header against the codec's ``expected`` one; return the shape and the body.

    An ``expected.shape`` of ``()`` accepts any shape of up to 4 dimensions below ``max_dim``
    (image codecs, whose native image size varies).
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise CodecError(f"a payload must be bytes, got {type(payload).__name__}")
    data = bytes(payload)
    if len(data) < 9 or data[:2] != MAGIC:
        raise CodecError("not a split-opt payload (bad magic or shorter than a header)")
    if data[2] != FORMAT_VERSION:
        raise CodecError(f"payload format version {data[2]}, this build reads version {FORMAT_VERSION}")
    if data[3] != expected.codec_id or data[4:8] != expected.state_hash[:4]:
        raise PayloadMismatch(
            "the payload was made by another codec (codec id or state hash differ); encode it with this bundle's codec"
        )
    ndim = data[8]
    if ndim > _MAX_NDIM or (expected.shape and ndim != len(expected.shape)):
        raise CodecError(f"payload declares {ndim} dimensions, the codec expects {len(expected.shape) or '<= 4'}")
    pos, shape = 9, []
    for _ in range(ndim):
        dim, pos = _read_varint(data, pos)
        shape.append(dim)
    if expected.shape and tuple(shape) != expected.shape:
        raise CodecError(f"payload declares shape {tuple(shape)}, the codec expects {expected.shape}")
    if not expected.shape and not all(0 < d < max_dim for d in shape):
        raise CodecError(f"payload declares shape {tuple(shape)}; every dimension must be in 1..{max_dim - 1}")
    length, pos = _read_varint(data, pos)
    if length > max_body:
        raise CodecError(f"payload declares a {length}-byte body, over this codec's maximum of {max_body}")
    if len(data) - pos != length:
        raise CodecError(f"payload body is {len(data) - pos} bytes but the header says {length}")
    return tuple(shape), data[pos:]
