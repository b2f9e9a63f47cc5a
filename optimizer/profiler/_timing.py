"""Timing calls on this machine: warm-up, repeats, and the lowest median of a few rounds.

The statistic is the lowest of ``rounds`` medians of ``repeats`` calls (a burst of other work on a
shared machine then spoils one round, not the figure); the spread is that round's inter-quartile
range. Nothing here needs torch: the device install times a calibration kit's graphs with it
(optimizer/profiler/_kit_run.py), the full install its fx segments (optimizer/profiler/_measure.py).

The clock: with one thread (the default, as a deployed head.onnx runs) both runtimes execute the
whole graph on the calling thread, so the *CPU time of that thread* is the graph's running time; it
is the statistic, and it equals the wall time on a machine that runs nothing else. On a shared
machine the wall time also counts the time the scheduler gives other processes (on this project's
2-core VM at load 3-4, ResNet-18's whole head measured 52 ms wall against 35 ms of its thread's CPU
time, with some 40 involuntary context switches per call), and more so the longer the call, which
no per-operation price can model. Each timing keeps the wall-clock median of the same round too.
With more threads the work runs on pool threads, and only the wall clock measures latency
(``clock="auto"`` picks ``thread`` for one thread, ``wall`` otherwise).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CLOCKS", "RUNTIMES", "BlockTiming", "resolve_clock", "time_many", "time_ms"]

RUNTIMES = ("onnxruntime", "torch")  # what runs the timed graphs: ONNX Runtime (as a deployed head) or PyTorch eager
CLOCKS = ("auto", "thread", "wall")


@dataclass(frozen=True)
class BlockTiming:
    median_ms: float  # on the clock the measurement used
    p25_ms: float
    p75_ms: float
    wall_median_ms: float = float("nan")  # the wall clock's median of the same round
    clock: str = "wall"


def resolve_clock(clock: str, threads: int) -> str:
    """``auto``: the calling thread's CPU time with one thread, else the wall clock."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, got {clock!r}")
    return ("thread" if threads == 1 else "wall") if clock == "auto" else clock


def _round(call: Callable[[], object], repeats: int, clock: str) -> tuple[list[float], list[float]]:
    """(times on ``clock``, wall times) of ``repeats`` calls, in ms."""
    timed, wall = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter_ns(), time.thread_time_ns()
        call()
        end, cpu_end = time.perf_counter_ns(), time.thread_time_ns()
        wall.append((end - start) / 1e6)
        timed.append((cpu_end - cpu) / 1e6 if clock == "thread" else wall[-1])
    return timed, wall


def _timing(samples: list[float], wall: list[float], clock: str) -> BlockTiming:
    q = statistics.quantiles(samples, n=4) if len(samples) > 1 else [samples[0]] * 3
    return BlockTiming(statistics.median(samples), q[0], q[2], statistics.median(wall), clock)


def time_many(
    calls: list[Callable[[], object]], warmup: int, repeats: int, rounds: int = 1, clock: str = "wall"
) -> list[BlockTiming]:
    """Each call's lowest median over ``rounds`` rounds of ``repeats`` calls, after ``warmup`` calls;
    the rounds go over all calls in turn, so a burst of other work spoils one round of a few calls,
    not every round of one. ``clock``: ``wall`` or ``thread`` (the calling thread's CPU time)."""
    if clock not in ("thread", "wall"):
        raise ValueError(f"clock must be thread or wall, got {clock!r}")
    for call in calls:
        for _ in range(warmup):
            call()
    best: list[tuple[list[float], list[float]] | None] = [None] * len(calls)
    for _ in range(rounds):
        for i, call in enumerate(calls):
            samples = _round(call, repeats, clock)
            current = best[i]
            if current is None or statistics.median(samples[0]) < statistics.median(current[0]):
                best[i] = samples
    return [_timing(*samples, clock) for samples in best if samples is not None]


def time_ms(call: Callable[[], object], warmup: int, repeats: int, rounds: int = 1, clock: str = "wall") -> BlockTiming:
    """The lowest median of ``rounds`` rounds of ``repeats`` calls, after ``warmup`` calls."""
    return time_many([call], warmup, repeats, rounds, clock)[0]
