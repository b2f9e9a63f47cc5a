"""What the device half and the server half agree on over HTTP, in a module that imports neither
httpx nor FastAPI (so the device install loads no server framework)."""

from __future__ import annotations

__all__ = ["CONTENT_TYPE"]

CONTENT_TYPE = "application/octet-stream"
