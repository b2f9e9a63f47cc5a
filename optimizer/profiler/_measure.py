"""Measured latency on the current machine: each block timed alone, with warm-up and repeats.

Blocks run as the device runs its head (see optimizer.deploy): exported to ONNX and executed by
ONNX Runtime, the default ``runtime``; ``torch`` times PyTorch eager instead. Threads are fixed for
the measurement and restored afterwards. The block input is the real output of the previous block,
so shapes are the ones the head sees. Report the median; the spread is the inter-quartile range.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from optimizer.models import OnnxRunner, build_tail, features_of

__all__ = ["RUNTIMES", "BlockTiming", "compiled", "fixed_threads", "measure_blocks", "time_ms"]

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


@torch.no_grad()
def time_ms(call: Callable[[], object], warmup: int, repeats: int) -> BlockTiming:
    """Median and quartiles of ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e3)
    q = statistics.quantiles(samples, n=4) if len(samples) > 1 else [samples[0]] * 3
    return BlockTiming(statistics.median(samples), q[0], q[2])


@torch.no_grad()
def measure_blocks(
    model: nn.Module,
    input_size: int,
    threads: int = 1,
    warmup: int = 3,
    repeats: int = 15,
    runtime: str = "onnxruntime",
) -> list[BlockTiming]:
    """Time every block of the body, then the classifier stage, at batch size 1."""
    model = model.eval()
    features = features_of(model)
    stages: list[nn.Module] = [*features, build_tail(model, len(features))]
    x = torch.randn(1, 3, input_size, input_size)
    timings = []
    with fixed_threads(threads):
        for stage in stages:
            timings.append(time_ms(compiled(stage, x, runtime, threads), warmup, repeats))
            x = stage(x)
    return timings
