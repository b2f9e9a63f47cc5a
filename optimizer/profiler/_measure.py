"""Measured latency on the current machine: fx segments and heads, with warm-up and repeats.

Segments and heads run as the device runs its head (see optimizer.deploy): exported to ONNX and
executed by ONNX Runtime, the default ``runtime``; ``torch`` times PyTorch eager instead. Threads
are fixed for the measurement and restored afterwards. A segment's input is the real output of the
segments before it, so shapes and values are the ones the head sees. The statistic is
optimizer/profiler/_timing.py's: the lowest of ``rounds`` medians of ``repeats`` calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from optimizer.models import OnnxRunner, SplitGraph
from optimizer.profiler import _timing
from optimizer.profiler._timing import CLOCKS, RUNTIMES, BlockTiming, resolve_clock

__all__ = [
    "CLOCKS",
    "RUNTIMES",
    "BlockTiming",
    "compiled",
    "fixed_threads",
    "measure_heads",
    "measure_segments",
    "resolve_clock",
    "time_many",
    "time_ms",
]


@contextlib.contextmanager
def fixed_threads(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def compiled(module: nn.Module, x: torch.Tensor, runtime: str, threads: int) -> Callable[[], object]:
    """A zero-argument call of ``module`` on ``x`` in ``runtime`` (ONNX export happens here, untimed)."""
    if runtime == "onnxruntime":
        runner = OnnxRunner(module, tuple(x.shape[1:]), threads)
        feed = {"x": x.numpy()}
        return lambda: runner.session.run(None, feed)
    if runtime == "torch":
        module = module.eval()
        return lambda: module(x)
    raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")


# PyTorch eager calls (``runtime="torch"``) are timed without autograd's bookkeeping
time_many = torch.no_grad()(_timing.time_many)


def time_ms(call: Callable[[], object], warmup: int, repeats: int, rounds: int = 1, clock: str = "wall") -> BlockTiming:
    """The lowest median of ``rounds`` rounds of ``repeats`` calls, after ``warmup`` calls."""
    return time_many([call], warmup, repeats, rounds, clock)[0]


@torch.no_grad()
def measure_segments(
    graph: SplitGraph,
    input_size: int,
    threads: int = 1,
    warmup: int = 3,
    repeats: int = 15,
    runtime: str = "onnxruntime",
    rounds: int = 1,
    seed: int = 0,
    clock: str = "auto",
) -> list[BlockTiming]:
    """Time every segment k = 1..last of ``graph`` alone at batch size 1, on the real activations
    (``clock``: see optimizer/profiler/_timing.py; with one thread, the thread's CPU time)."""
    x = torch.randn(1, graph.channels, input_size, input_size, generator=torch.Generator().manual_seed(seed))
    calls = []
    with fixed_threads(threads):
        for k in range(1, len(graph)):
            segment = graph.segment(k)
            calls.append(compiled(segment, x, runtime, threads))
            x = segment(x)
        return time_many(calls, warmup, repeats, rounds, resolve_clock(clock, threads))


@torch.no_grad()
def measure_heads(
    graph: SplitGraph,
    input_size: int,
    ks: list[int] | None = None,
    threads: int = 1,
    warmup: int = 2,
    repeats: int = 9,
    runtime: str = "onnxruntime",
    rounds: int = 1,
    clock: str = "auto",
) -> list[BlockTiming]:
    """Time the whole head of each split in ``ks`` (default 1..last), each as one graph (one ONNX model)."""
    x = torch.randn(1, graph.channels, input_size, input_size, generator=torch.Generator().manual_seed(0))
    with fixed_threads(threads):
        calls = [compiled(graph.head(k), x, runtime, threads) for k in (ks if ks is not None else range(1, len(graph)))]
        return time_many(calls, warmup, repeats, rounds, resolve_clock(clock, threads))
