"""Dynamic batching: payloads of concurrent requests decoded and run through tail.onnx in one call.

A request hands its payload to the batcher and awaits its own answer. One worker thread takes
what is waiting (up to ``max_batch``), waits at most ``window_s`` for more when the batch is not
full and the previous batch was not a lone request (so a single client pays no window), decodes
each payload, and runs the tail once over the stacked inputs. A corrupt payload fails only its own
request. ONNX Runtime's per-call cost and the thread hand-offs are paid once per batch instead of
once per request; results equal the one-by-one path up to float rounding in the tail's kernels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from optimizer.deploy._halves import Prediction, ServerHalf

__all__ = ["TailBatcher", "infer_batch"]


def _prediction(half: ServerHalf, logits: np.ndarray) -> Prediction:
    """As ServerHalf.infer: argmax, and the softmax probability of the class."""
    logits = logits.astype(np.float64)
    index = int(np.argmax(logits))
    probs = np.exp(logits - logits.max())
    return Prediction(index, half.bundle.classes[index], float(probs[index] / probs.sum()))


def infer_batch(half: ServerHalf, payloads: Sequence[bytes]) -> list[Prediction | Exception]:
    """One prediction (or the payload's own error) per payload, with one tail call for the batch."""
    if half.session is None:  # k = n + 1: the class id needs no network
        return [_one(half, p) for p in payloads]
    results: list[Prediction | Exception | None] = [None] * len(payloads)
    rows, inputs = [], []
    for i, payload in enumerate(payloads):
        try:
            inputs.append(half.tail_input(payload))
            rows.append(i)
        except Exception as exc:  # the request that sent it gets it back
            results[i] = exc
    if inputs:
        logits = half.session.run(None, {half.input_name: np.concatenate(inputs)})[0]
        for i, row in zip(rows, logits, strict=True):
            results[i] = _prediction(half, row)
    return [r for r in results if r is not None]


def _one(half: ServerHalf, payload: bytes) -> Prediction | Exception:
    try:
        return half.infer(payload)
    except Exception as exc:  # returned to its request
        return exc


class TailBatcher:
    """Collects concurrent requests into batches for one worker thread (create it in the event loop's app)."""

    def __init__(
        self,
        half: ServerHalf,
        max_batch: int = 32,
        window_s: float = 0.002,
        on_batch: Callable[[int], object] | None = None,
    ) -> None:
        self.half, self.max_batch, self.window_s, self.on_batch = half, max_batch, window_s, on_batch
        self._pending: list[tuple[bytes, asyncio.Future[Prediction | Exception]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_batch = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="split-opt-tail")

    async def infer(self, payload: bytes) -> Prediction:
        loop = asyncio.get_running_loop()
        if self._task is None or self._wake is None or self._task.get_loop() is not loop or self._task.done():
            # first use, or a new event loop (a test client may start one per request)
            self._pending, self._last_batch = [], 0
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        future: asyncio.Future[Prediction | Exception] = loop.create_future()
        self._pending.append((payload, future))
        self._wake.set()
        result = await future  # a request timeout cancels this future; the worker then skips it
        if isinstance(result, Exception):
            raise result
        return result

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if len(self._pending) < self.max_batch and self._last_batch > 1:
                # concurrent clients: let requests whose bytes are already here join (sleep(0): the
                # handlers the event loop has ready run first), or wait the window for more
                await asyncio.sleep(self.window_s)
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            if not self._pending:
                self._wake.clear()
            live = [(payload, future) for payload, future in batch if not future.done()]
            self._last_batch = len(live)
            if not live:
                continue
            if self.on_batch is not None:
                self.on_batch(len(live))
            try:
                results = await loop.run_in_executor(self._executor, infer_batch, self.half, [p for p, _ in live])
            except Exception as exc:  # the tail itself failed: every request of the batch hears it
                results = [exc] * len(live)
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
