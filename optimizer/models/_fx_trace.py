"""Tracing a model into a torch.fx graph, with leaf modules and one clear error when it fails.

torch.nn's own layers are leaves (single ``call_module`` nodes) as in plain ``symbolic_trace``;
an adapter (or a ``python:`` factory's ``leaf_modules``) adds classes fx must not trace into. The
model is traced in eval mode, so branches on ``self.training`` (stochastic depth, dropout written as
functions) take their inference path. Each node keeps ``nn_module_stack``, the modules it runs in,
which split points use to name the block a tensor leaves.
"""

from __future__ import annotations

import math

from torch import fx, nn

from optimizer.errors import UserError

__all__ = ["trace_model"]


class _LeafTracer(fx.Tracer):
    """symbolic_trace's tracer with extra leaf classes; remembers the innermost module that failed."""

    def __init__(self, leaves: tuple[type[nn.Module], ...]) -> None:
        super().__init__(autowrap_modules=(math,))
        self.leaves = leaves
        self.failed_at: tuple[str, str] | None = None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self.leaves) or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward, args, kwargs):  # type: ignore[no-untyped-def]
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_at is None:  # the innermost module sees the exception first
                self.failed_at = (self.path_of_module(m), type(m).__name__)
            raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def trace_model(model: nn.Module, leaves: tuple[type[nn.Module], ...] = (), label: str = "") -> fx.GraphModule:
    """``model`` (put in eval mode) as a GraphModule sharing its modules and parameters.

    Raises:
        UserError: fx cannot trace it; the message names the module whose forward failed and the fix.
    """
    model.eval()
    tracer = _LeafTracer(leaves)
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # fx raises TraceError, TypeError, RuntimeError... for untraceable code
        path, cls = tracer.failed_at or ("", type(model).__name__)
        where = f"module '{path}' ({cls})" if path else f"the forward of {cls} itself"
        raise UserError(
            f"torch.fx cannot trace {label or type(model).__name__} at {where}: {_first_line(exc)}; "
            f"mark {cls} a leaf module (a python: factory lists it in factory.leaf_modules) or make its "
            "forward traceable (no Python control flow or int()/len() on tensor values)"
        ) from exc
    return fx.GraphModule(tracer.root, graph, type(model).__name__)
