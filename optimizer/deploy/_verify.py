"""``verify``: a bundle re-checked against its manifest.

The files' sha256 (done by open_bundle), then the test split of the study's dataset through both
halves in this process. It agrees when the study's test accuracy lies within the 95 % Wilson
interval of the measured accuracy, and the study's mean test payload within the 95 % interval of
the measured mean (normal approximation; equality when every payload has the same size).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.data import make_splits, open_dataset
from optimizer.deploy._bundle import Bundle
from optimizer.deploy._halves import DeviceHalf, ServerHalf

__all__ = ["VerifyResult", "verify_bundle", "wilson"]

_BATCH = 250
_Z95 = 1.96


def wilson(correct: int, n: int, z: float = _Z95) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion (the one the study reports)."""
    # NOTE: the same formula as optimizer.search's, which deploy may not import.
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class VerifyResult:
    samples: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    expected_accuracy: float
    payload_bytes_mean: float
    payload_bytes_ci: tuple[float, float]
    expected_payload_bytes_mean: float

    @property
    def accuracy_ok(self) -> bool:
        return self.accuracy_ci[0] <= self.expected_accuracy <= self.accuracy_ci[1]

    @property
    def payload_ok(self) -> bool:
        return self.payload_bytes_ci[0] <= self.expected_payload_bytes_mean <= self.payload_bytes_ci[1]

    @property
    def ok(self) -> bool:
        return self.accuracy_ok and self.payload_ok

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "samples": self.samples,
            "accuracy": self.accuracy,
            "accuracy_ci": list(self.accuracy_ci),
            "expected_test_accuracy": self.expected_accuracy,
            "accuracy_ok": self.accuracy_ok,
            "payload_bytes_mean": self.payload_bytes_mean,
            "payload_bytes_ci": list(self.payload_bytes_ci),
            "expected_test_payload_bytes_mean": self.expected_payload_bytes_mean,
            "payload_ok": self.payload_ok,
        }


def _mean_ci(sizes: np.ndarray) -> tuple[float, float]:
    mean = float(sizes.mean())
    half = _Z95 * float(sizes.std(ddof=1)) / math.sqrt(len(sizes)) if len(sizes) > 1 else 0.0
    return mean - half, mean + half


def run_split(
    bundle: Bundle,
    dataset_spec: str | None = None,
    limit: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(correct per image, payload bytes per image) over the bundle's test split, both halves local."""
    data = bundle.manifest["dataset"]
    dataset = open_dataset(dataset_spec or data["spec"])
    indices = make_splits(dataset, seed=int(data["split_seed"])).test[:limit]
    device, server = DeviceHalf(bundle), ServerHalf(bundle)
    correct, sizes = [], []
    for start in range(0, len(indices), _BATCH):
        chunk = indices[start : start + _BATCH]
        natives = [dataset.native(int(i)) for i in chunk]
        outputs = natives if device.session is None else device.head(natives)
        for output, label in zip(outputs, dataset.labels[chunk], strict=True):
            payload = device.code(output)
            sizes.append(len(payload))
            correct.append(server.infer(payload).class_index == int(label))
        if progress:
            progress(len(chunk))
    return np.array(correct, dtype=bool), np.array(sizes, dtype=np.int64)


def verify_bundle(
    bundle: Bundle,
    dataset_spec: str | None = None,
    limit: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> VerifyResult:
    correct, sizes = run_split(bundle, dataset_spec, limit, progress)
    expected = bundle.manifest["expected"]
    return VerifyResult(
        samples=len(correct),
        accuracy=float(correct.mean()),
        accuracy_ci=wilson(int(correct.sum()), len(correct)),
        expected_accuracy=float(expected["test_accuracy"]),
        payload_bytes_mean=float(sizes.mean()),
        payload_bytes_ci=_mean_ci(sizes),
        expected_payload_bytes_mean=float(expected["test_payload_bytes_mean"]),
    )
