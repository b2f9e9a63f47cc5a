"""The wire format shared by every payload (format 2; the layout is in ``optimizer.protocol``).

    offset  size  field
    0       1     tag byte: 0b10 then the 6-bit configuration tag (0 in single-configuration bundles)
    1       1-4   body length in bytes, LEB128 varint
    ...     n     body (codec-specific: entropy-coded symbols, an image file, the class id, ...)

The header is 2 bytes for bodies under 128 bytes. The shape is the codec's (image codecs read it
from the image file's own header), and the bundle identity is checked once per connection or
request (``optimizer.protocol.BUNDLE_HEADER``), so neither travels in the payload.
``len(payload)`` is the payload size everywhere in split-opt. Parsing checks the tag byte and the
length against the codec's maximum before it touches the body, so a lying header can't make the
decoder allocate more than the codec declares.
"""

from __future__ import annotations

from optimizer.codecs._errors import CodecError
from optimizer.protocol import MAX_TAG, read_tag, tag_byte

__all__ = ["FORMAT_VERSION", "MAX_TAG", "header_bytes", "pack", "unpack"]

FORMAT_VERSION = 2
_MAX_VARINT = 4  # 2**28 bytes: more than any codec's maximum body


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(pos, min(pos + _MAX_VARINT, len(data))):
        value |= (data[i] & 0x7F) << shift
        if not data[i] & 0x80:
            return value, i + 1
        shift += 7
    raise CodecError("truncated or overlong body length in the payload header")


def header_bytes(body_bytes: int) -> int:
    """The header's size for a body of ``body_bytes``: the tag byte and the varint."""
    return 1 + len(_varint(body_bytes))


def pack(tag: int, body: bytes) -> bytes:
    """Tag byte + body length + body."""
    try:
        first = tag_byte(tag)
    except ValueError as exc:
        raise CodecError(str(exc)) from exc
    return bytes([first]) + _varint(len(body)) + body


def unpack(payload: bytes, max_body: int) -> tuple[int, bytes]:
    """Check the header; return the configuration tag and the body (CodecError otherwise)."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise CodecError(f"a payload must be bytes, got {type(payload).__name__}")
    data = bytes(payload)
    try:
        tag = read_tag(data)
    except ValueError as exc:
        raise CodecError(str(exc)) from exc
    length, pos = _read_varint(data, 1)
    if length > max_body:
        raise CodecError(f"payload declares a {length}-byte body, over this codec's maximum of {max_body}")
    if len(data) - pos != length:
        raise CodecError(f"payload body is {len(data) - pos} bytes but the header says {length}")
    return tag, data[pos:]
