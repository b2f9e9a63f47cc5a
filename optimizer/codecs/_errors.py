"""The one error type decoding raises, whatever the bytes: :class:`CodecError`.

:class:`PayloadMismatch` (a subclass) means a well-formed payload made for another configuration
(a tag the bundle does not hold): a server answers it with 409, any other CodecError with 400.
"""

from __future__ import annotations

__all__ = ["CodecError", "PayloadMismatch"]


class CodecError(ValueError):
    """A payload or codec state that cannot be decoded; the message says why."""


class PayloadMismatch(CodecError):
    """A valid payload for another configuration (its tag names none of this bundle's)."""
