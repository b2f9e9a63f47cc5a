"""Measured latency on the current machine: fx segments and heads, with warm-up and repeats.

Segments and heads run as the device runs its head (see optimizer.deploy): exported to ONNX and
executed by ONNX Runtime, the default ``runtime``; ``torch`` times PyTorch eager instead. Threads
are fixed for the measurement and restored afterwards. A segment's input is the real output of the
segments before it, so shapes and values are the ones the head sees. The statistic is the lowest
of ``rounds`` medians of ``repeats`` calls (a burst of other work on a shared machine then spoils
one round, not the figure); the spread is that round's inter-quartile range.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from optimizer.models import OnnxRunner, SplitGraph

__all__ = [
    "RUNTIMES",
    "BlockTiming",
    "compiled",
    "fixed_threads",
    "measure_heads",
    "measure_segments",
    "time_many",
    "time_ms",
]

RUNTIMES = ("onnxruntime", "torch")


@dataclass(frozen=True)
class BlockTiming:
    median_ms: float
    p25_ms: float
    p75_ms: float


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


def _round(call: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def _timing(samples: list[float]) -> BlockTiming:
    q = statistics.quantiles(samples, n=4) if len(samples) > 1 else [samples[0]] * 3
    return BlockTiming(statistics.median(samples), q[0], q[2])


@torch.no_grad()
def time_many(calls: list[Callable[[], object]], warmup: int, repeats: int, rounds: int = 1) -> list[BlockTiming]:
    """Each call's lowest median over ``rounds`` rounds of ``repeats`` calls, after ``warmup`` calls;
    the rounds go over all calls in turn, so a burst of other work spoils one round of a few calls,
    not every round of one."""
    for call in calls:
        for _ in range(warmup):
            call()
    best: list[list[float] | None] = [None] * len(calls)
    for _ in range(rounds):
        for i, call in enumerate(calls):
            samples = _round(call, repeats)
            current = best[i]
            if current is None or statistics.median(samples) < statistics.median(current):
                best[i] = samples
    return [_timing(samples) for samples in best if samples is not None]


def time_ms(call: Callable[[], object], warmup: int, repeats: int, rounds: int = 1) -> BlockTiming:
    """The lowest median of ``rounds`` rounds of ``repeats`` calls, after ``warmup`` calls."""
    return time_many([call], warmup, repeats, rounds)[0]


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
) -> list[BlockTiming]:
    """Time every segment k = 1..last of ``graph`` alone at batch size 1, on the real activations."""
    x = torch.randn(1, graph.channels, input_size, input_size, generator=torch.Generator().manual_seed(seed))
    calls = []
    with fixed_threads(threads):
        for k in range(1, len(graph)):
            segment = graph.segment(k)
            calls.append(compiled(segment, x, runtime, threads))
            x = segment(x)
        return time_many(calls, warmup, repeats, rounds)


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
) -> list[BlockTiming]:
    """Time the whole head of each split in ``ks`` (default 1..last), each as one graph (one ONNX model)."""
    x = torch.randn(1, graph.channels, input_size, input_size, generator=torch.Generator().manual_seed(0))
    with fixed_threads(threads):
        calls = [compiled(graph.head(k), x, runtime, threads) for k in (ks if ks is not None else range(1, len(graph)))]
        return time_many(calls, warmup, repeats, rounds)
