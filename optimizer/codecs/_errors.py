"""The one error type decoding raises, whatever the bytes: :class:`CodecError`.

:class:`PayloadMismatch` (a subclass) means a well-formed payload made for another codec (a
different codec id or state hash): a server answers it with 409, any other CodecError with 400.
"""

from __future__ import annotations

__all__ = ["CodecError", "PayloadMismatch"]


class CodecError(ValueError):
    """A payload or codec state that cannot be decoded; the message says why."""


class PayloadMismatch(CodecError):
    """A valid payload for a different codec (id or state hash)."""
