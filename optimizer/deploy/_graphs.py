"""The two ONNX graphs of a bundle: the model's halves with the codec's transforms folded in.

- head.onnx (device): image -> the model up to split k -> the codec's device transform -> symbols;
  absent at the input (k = 0), where the device codes the image itself.
- tail.onnx (server): symbols -> the codec's server transform -> the rest of the model -> logits
  (at the input: the preprocessed image -> the whole model); absent at the output (the last k),
  where the class id is the answer.

What each codec's transforms compute is the codec's business (optimizer.codecs: ``device_graph``,
``server_graph``). Entropy coding stays outside the graphs, in the codec's own Python code, so
payloads are the codec's byte for byte.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from optimizer.codecs import INPUT, OUTPUT, Codec

__all__ = ["OPSET", "export_onnx", "head_module", "tail_module"]

OPSET = 17
SYMBOLS, IMAGE = "symbols", "image"


def _then(first: nn.Module, second: nn.Module | None) -> nn.Module:
    return first if second is None else nn.Sequential(first, second)


def head_module(head: nn.Module, codec: Codec) -> tuple[nn.Module, str] | None:
    """The device graph and the name of its output, or None at the input (no network on the device)."""
    if codec.place == INPUT:
        return None
    return _then(head, codec.device_graph()), SYMBOLS


def tail_module(tail: nn.Module, codec: Codec) -> tuple[nn.Module, str] | None:
    """The server graph and the name of its input, or None at the output (the class id is the answer)."""
    if codec.place == OUTPUT:
        return None
    if codec.place == INPUT:
        return tail, IMAGE
    server = codec.server_graph()
    return (tail if server is None else nn.Sequential(server, tail)), SYMBOLS


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str) -> None:
    """Write ``module`` as ONNX with a free batch dimension (TorchScript-based exporter: no onnxscript)."""
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice and tracer warnings
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=OPSET,
        )
    onnx.checker.check_model(str(path), full_check=True)  # a malformed graph fails here, not on the device
