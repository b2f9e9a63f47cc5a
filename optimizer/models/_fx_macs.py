"""MACs of a module (a whole model or an fx head) at one input, counted by fvcore.

Convention, as in optimizer/profiler: **one multiply-add is one MAC**, and only the operators that
are multiply-adds count: convolutions (any groups), linear layers and matrix products. BatchNorm
(folded into the convolution at inference), activations, additions, pooling and the
squeeze-excitation multiplies are element-wise work, not MACs. fvcore counts one fused multiply-add
as one flop, so its per-operator counts for these operators are MACs.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

with warnings.catch_warnings():  # fvcore touches torch.jit.script at import, which warns on new torch
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis

__all__ = ["MAC_OPERATORS", "count_macs"]

MAC_OPERATORS = frozenset({"conv", "linear", "addmm", "matmul", "bmm", "einsum"})


@torch.no_grad()
def count_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward of ``module`` on ``x`` (batch included: give a batch of one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(module, x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        by_operator = analysis.by_operator()
    return int(sum(count for op, count in by_operator.items() if op in MAC_OPERATORS))
