"""Measured latency on the current machine: each block timed alone, with warm-up and repeats.

Threads are fixed for the measurement (``torch.set_num_threads``) and restored afterwards. The
block input is the real output of the previous block, so shapes and memory layout are the ones the
head sees. Report the median; the spread is the inter-quartile range.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from optimizer.models import build_tail, features_of

__all__ = ["BlockTiming", "fixed_threads", "measure_blocks", "time_ms"]


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


@torch.no_grad()
def time_ms(fn: nn.Module, x: torch.Tensor, warmup: int, repeats: int) -> BlockTiming:
    """Median and quartiles of ``repeats`` calls of ``fn(x)`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn(x)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        samples.append((time.perf_counter() - start) * 1e3)
    q = statistics.quantiles(samples, n=4) if len(samples) > 1 else [samples[0]] * 3
    return BlockTiming(statistics.median(samples), q[0], q[2])


@torch.no_grad()
def measure_blocks(
    model: nn.Module, input_size: int, threads: int = 1, warmup: int = 3, repeats: int = 15
) -> list[BlockTiming]:
    """Time every block of the body, then the classifier stage, at batch size 1."""
    model = model.eval()
    features = features_of(model)
    stages: list[nn.Module] = [*features, build_tail(model, len(features))]
    x = torch.randn(1, 3, input_size, input_size)
    timings = []
    with fixed_threads(threads):
        for stage in stages:
            timings.append(time_ms(stage, x, warmup, repeats))
            x = stage(x)
    return timings
