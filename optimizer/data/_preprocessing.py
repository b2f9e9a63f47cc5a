"""What a model expects of its input, as data (defined torch-free in optimizer.imaging, which the
deployed device half imports without torch)."""

from __future__ import annotations

from optimizer.imaging import INTERPOLATIONS, RESIZE_POLICIES, Preprocessing

__all__ = ["INTERPOLATIONS", "RESIZE_POLICIES", "Preprocessing"]
