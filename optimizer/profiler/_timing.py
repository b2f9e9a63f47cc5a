"""Timing calls on this machine: warm-up, repeats, and the lowest median of a few rounds.

The statistic is the lowest of ``rounds`` medians of ``repeats`` calls (a burst of other work on a
shared machine then spoils one round, not the figure); the spread is that round's inter-quartile
range. Nothing here needs torch: the device install times a calibration kit's graphs with it
(optimizer/profiler/_kit_run.py), the full install its fx segments (optimizer/profiler/_measure.py).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RUNTIMES", "BlockTiming", "time_many", "time_ms"]

RUNTIMES = ("onnxruntime", "torch")  # what runs the timed graphs: ONNX Runtime (as a deployed head) or PyTorch eager


@dataclass(frozen=True)
class BlockTiming:
    median_ms: float
    p25_ms: float
    p75_ms: float


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
