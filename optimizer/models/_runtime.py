"""Running a head or a tail with ONNX Runtime.

The search scores thousands of configurations, each one forward pass of a tail over the val split.
ONNX Runtime runs MobileNetV2's parts 2-4x faster than PyTorch eager on x86 CPUs (it folds
BatchNorm and fuses convolution with its clip), and computes the same function: outputs agree with
PyTorch to about 1e-5 (tests/test_models.py checks it per split).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

__all__ = ["OnnxRunner", "onnx_bytes"]

_OPSET = 17


def onnx_bytes(module: nn.Module, sample_shape: tuple[int, ...], outputs: int = 1) -> bytes:
    """``module`` exported to ONNX (input ``x``, outputs ``y`` or ``y0``, ``y1``, ...; the batch dimension
    dynamic), as OnnxRunner runs it and as ``split-opt calibrate --make-kit`` ships it."""
    example = torch.zeros(2, *sample_shape)
    buffer = io.BytesIO()
    names = ["y"] if outputs == 1 else [f"y{i}" for i in range(outputs)]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is "deprecated" but exact here
        torch.onnx.export(
            module.eval(),
            (example,),
            buffer,  # type: ignore[arg-type]  # a file-like object works (TorchScript exporter)
            input_names=["x"],
            output_names=names,
            dynamic_axes={"x": {0: "n"}, **{name: {0: "n"} for name in names}},
            opset_version=_OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


class OnnxRunner:
    """A module exported once to ONNX (batch dimension dynamic), then run on numpy batches.
    ``outputs`` > 1: the module returns a tuple of that many tensors (SplitGraph.taps)."""

    def __init__(
        self, module: nn.Module, sample_shape: tuple[int, ...], threads: int | None = None, outputs: int = 1
    ) -> None:
        self.sample_shape = tuple(sample_shape)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model = onnx_bytes(module, self.sample_shape, outputs)
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray | torch.Tensor, batch: int = 250) -> np.ndarray:
        """Outputs for a batch of samples of ``sample_shape``, run ``batch`` at a time."""
        return self.run_all(x, batch)[0]

    def run_all(
        self, x: np.ndarray | torch.Tensor, batch: int = 250, dtypes: Sequence[type] | None = None
    ) -> list[np.ndarray]:
        """Every output for a batch of samples, run ``batch`` at a time; ``dtypes`` (one per output)
        casts each batch's outputs as they come (so float32 copies of a whole split never coexist)."""
        x = np.ascontiguousarray(x.numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
        if tuple(x.shape[1:]) != self.sample_shape or len(x) == 0:
            raise ValueError(f"expected a non-empty batch of {self.sample_shape} samples, got {x.shape}")
        parts: list[list[np.ndarray]] = []
        for i in range(0, len(x), batch):
            outs = self.session.run(None, {"x": x[i : i + batch]})
            parts.append([o.astype(d, copy=False) for o, d in zip(outs, dtypes, strict=True)] if dtypes else outs)
        return [np.concatenate(column) for column in zip(*parts, strict=True)]
