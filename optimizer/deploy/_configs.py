"""The server half of every configuration of a bundle, selected by the payload's configuration tag.

A single-configuration bundle has one (tag 0); an adaptive bundle one per tag, each with its own
decoder and tail.onnx (files shared where the graphs are the same). The tag byte is read before
anything else; a tag the bundle does not hold is PayloadMismatch (409), as it was for single
bundles, and a payload that is not format 2 is CodecError (400).
"""

from __future__ import annotations

from optimizer.codecs import CodecError, PayloadMismatch
from optimizer.deploy._bundle import Bundle
from optimizer.deploy._halves import Prediction, ServerHalf
from optimizer.protocol import read_tag

__all__ = ["ServerHalves"]


class ServerHalves:
    """tag -> ServerHalf for one bundle; ``infer`` answers a payload of any of its configurations."""

    def __init__(self, bundle: Bundle, threads: int = 1) -> None:
        self.bundle = bundle
        self.halves = {config.tag: ServerHalf(config, threads) for config in bundle.configurations}

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def max_payload_bytes(self) -> int:
        """The largest payload of any configuration: what a request body may hold at most."""
        return max(half.bundle.max_payload_bytes for half in self.halves.values())

    def half_for(self, payload: bytes) -> ServerHalf:
        """The configuration the payload's tag names (CodecError, PayloadMismatch otherwise)."""
        if not isinstance(payload, bytes):
            raise CodecError(f"a payload must be bytes, got {type(payload).__name__}")
        try:
            tag = read_tag(payload)
        except ValueError as exc:
            raise CodecError(str(exc)) from exc
        half = self.halves.get(tag)
        if half is None:
            held = sorted(self.halves)
            holds = f"only tag {held[0]}" if len(held) == 1 else f"tags {', '.join(map(str, held))}"
            raise PayloadMismatch(f"the payload is for configuration tag {tag}; this bundle holds {holds}")
        return half

    def infer(self, payload: bytes) -> Prediction:
        return self.half_for(payload).infer(payload)
