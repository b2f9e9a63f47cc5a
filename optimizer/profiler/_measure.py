"""Measured latency on the current machine: fx segments and heads, with warm-up and repeats.

Segments and heads run as the device runs its head (see optimizer.deploy): exported to ONNX and
executed by ONNX Runtime, the default ``runtime``; ``torch`` times PyTorch eager instead. Threads
are fixed for the measurement and restored afterwards. A segment's input is the real output of the
segments before it, so shapes and values are the ones the head sees. The statistic is the lowest
of ``rounds`` medians of ``repeats`` calls (a burst of other work on a shared machine then spoils
one round, not the figure); the spread is that round's inter-quartile range.

The clock: with one thread (the default, as a deployed head.onnx runs) both runtimes execute the
whole graph on the calling thread, so the *CPU time of that thread* is the head's running time; it
is the statistic, and it equals the wall time on a machine that runs nothing else. On a shared
machine the wall time also counts the time the scheduler gives other processes (on this project's
2-core VM at load 3-4, ResNet-18's whole head measured 52 ms wall against 35 ms of its thread's CPU
time, with some 40 involuntary context switches per call), and more so the longer the call, which
no per-operation price can model. Each timing keeps the wall-clock median of the same round too.
With more threads the work runs on pool threads, and only the wall clock measures latency
(``clock="auto"`` picks ``thread`` for one thread, ``wall`` otherwise).
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

RUNTIMES = ("onnxruntime", "torch")
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


@torch.no_grad()
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
    """Time every segment k = 1..last of ``graph`` alone at batch size 1, on the real activations."""
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
