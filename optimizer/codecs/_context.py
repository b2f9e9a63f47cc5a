"""Context-adaptive ANS for the PCA codec's symbols (coder name ``ctx``), through constriction.

One sample's symbols are a (rows * cols, M) array: M components at each block position of a
rows x cols grid, in raster order. Each symbol is coded with a categorical distribution picked by
its context, and a context reads only symbols the decoder already has:

- three kinds of positions: A (even row, even column), B (odd row, odd column), whose 4 diagonal
  neighbours are all A, and C (the rest), whose 4 neighbours are all A or B;
- decoding order, six steps: component 0 at A, B, C, then components 1..M-1 at A, B, C;
- e = q - centre, a symbol's offset from its component's calib median;
- two features per symbol, each cut into bins at calib quantiles (per component and kind):
  f1 (``BINS1`` bins) = 4 x the mean e of the same component over the neighbours inside the grid
  (B: diagonal, C: 4-neighbours; signed, so a smooth field predicts the value and not just its
  spread), or at A: 4 x the mean |e| of component 0 over the 4-neighbours; f2 (``BINS2`` bins) =
  |e| of component 0 at the same position. For component 0, f2 is 0 and so is f1 at A;
- one frequency table per (component, kind, f1 bin, f2 bin), counted on calib and mixed with the
  component's marginal (``PRIOR`` pseudo-observations), so every symbol stays codable and a rare
  context falls back towards the static model. Everything up to the final division is integer, so
  encoder and decoder derive the same tables on any machine.

Encoding computes every context at once and codes the sample in one constriction call (per-symbol
probability rows of the lazy Categorical family); decoding takes one call per step. Both read the
contexts through one precomputed plan of indices, so they compute the same numbers.

Chosen by measurement (benchmarks/bench_context_coder.py, default model, calib 1,000): signed
same-component neighbours beat magnitudes by 1-6 % of the bytes, three kinds beat a checkerboard
(two) by 1-9 %, 8 x 4 bins beat 4 x 4 by about 2 %; 12 x 4 or 8 x 6 bins gain under 1 %, PRIOR 1
or 16 changes nothing, and conditioning each component on the previous one (3 M decoding steps)
instead of component 0 costs 0.5-1 % more bytes at k = 4 and 6.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

import constriction
import numpy as np

from optimizer.codecs._entropy import EntropyCoder, ans_stack
from optimizer.codecs._errors import CodecError

__all__ = ["BINS1", "BINS2", "PRIOR", "ContextCoder"]

BINS1 = 8  # of f1, the neighbours of the same component (of component 0 at A)
BINS2 = 4  # of f2, component 0 at the same position
CONTEXTS = BINS1 * BINS2  # per (component, kind of position)
KINDS = 3  # A, B, C
PRIOR = 4  # pseudo-observations of the component's marginal in every context table
EDGE_SAMPLES = 256  # calib samples whose features set the bin edges
FIT_CHUNK = 64  # calib samples counted at a time (bounds memory)


@dataclass(frozen=True)
class _Plan:
    """Every symbol of one sample in decoding order, with the indices its context reads.

    Offsets live in a flat (M, rows + 2, cols + 2) zero-padded array; symbols in (M, rows * cols)."""

    symbol: np.ndarray  # (S,) index into the component-major symbols
    own: np.ndarray  # (S,) where its offset is written once decoded
    component: np.ndarray  # (S,)
    neighbours: np.ndarray  # (4, S) offsets summed for f1
    count: np.ndarray  # (S,) neighbours inside the grid (at least 1)
    reference: np.ndarray  # (S,) offset whose magnitude is f2
    gate1: np.ndarray  # (S,) 0 where f1 is not used
    gate2: np.ndarray  # (S,) 0 where f2 is not used
    signed: np.ndarray  # (S,) 1 where f1 sums signed offsets (own component), 0 magnitudes
    table: np.ndarray  # (S,) component * KINDS + kind
    position: np.ndarray  # (S,) raster position
    stencil: (
        np.ndarray
    )  # (S,) its neighbour sum among [cross sums (M x P), diagonal sums (M x P), cross |.| of component 0 (P)]
    steps: tuple[slice, ...]  # decoding calls
    groups: tuple[tuple[int, int, slice], ...]  # (component, kind, its symbols) for fitting edges


class ContextCoder(EntropyCoder):
    """Per-(component, context) categorical models on a grid of block positions."""

    name = "ctx"
    max_symbol_bits: ClassVar[int] = 24  # constriction's fixed-point precision: the rarest symbol's cost
    max_bits: ClassVar[int] = 8  # the state holds M x 96 x 2**bits counts

    def __init__(
        self, counts: np.ndarray, centre: np.ndarray, edges: tuple[np.ndarray, np.ndarray], grid: tuple[int, int]
    ) -> None:
        counts, centre, edges1, edges2 = (np.asarray(a, dtype=np.int64) for a in (counts, centre, *edges))
        _check_state(counts, centre, edges1, edges2, grid)
        self.counts, self.centre, self.edges = counts, centre, (edges1, edges2)
        self.grid = (int(grid[0]), int(grid[1]))
        marginal = counts.sum(axis=(1, 2)) + 1  # (M, A), add-one
        table = counts * marginal.sum(axis=1)[:, None, None, None] + PRIOR * marginal[:, None, None, :]
        self.pmf = (table / table.sum(axis=-1, keepdims=True)).reshape(-1, counts.shape[-1])
        self._rows = self.pmf.astype(np.float32)  # row: (component * KINDS + kind) * CONTEXTS + context
        self._family = constriction.stream.model.Categorical(perfect=False)
        # features are shifted by 4 (A - 1) into lookup indices 0..8 (A - 1); the bin of each index
        # is the number of edges below it, per (component, kind): (M * KINDS, indices) each
        self._offset = 4 * (counts.shape[-1] - 1)
        index = np.arange(2 * self._offset + 1)
        self._bins1, self._bins2 = ((index[:, None] > e[..., None, :]).sum(-1).ravel() for e in self.edges)
        self._plan = _make_plan(self.grid, len(centre))
        self._lut = self._plan.table * len(index)  # where each symbol's (component, kind) bins start
        self._base = self._plan.table * CONTEXTS

    # --- fitting and state -------------------------------------------------------------------
    @classmethod
    def fit(cls, symbols: np.ndarray, alphabet: int, grid: tuple[int, int] | None = None) -> ContextCoder:
        """Centres, bin edges and context counts from calib symbols: ``symbols`` stacks samples of
        ``rows * cols`` positions each, (n_samples * rows * cols, M)."""
        if grid is None:
            raise CodecError("the ctx coder needs the grid of block positions (rows, cols) to fit")
        symbols = np.asarray(symbols, dtype=np.int64)
        m, per = symbols.shape[1], grid[0] * grid[1]
        if len(symbols) % per or len(symbols) == 0:
            raise CodecError(f"{len(symbols)} calib symbol rows are not whole samples of {per} positions")
        samples = symbols.reshape(-1, per, m)
        centre = np.array([int(np.median(symbols[:, c])) for c in range(m)], dtype=np.int64)
        zeros = np.zeros((m, KINDS, CONTEXTS, alphabet), np.int64)
        probe = cls(zeros, centre, (np.zeros((m, KINDS, BINS1 - 1)), np.zeros((m, KINDS, BINS2 - 1))), grid)
        features = probe._batch_features(samples[:EDGE_SAMPLES])
        edges = (np.zeros((m, KINDS, BINS1 - 1), np.int64), np.zeros((m, KINDS, BINS2 - 1), np.int64))
        for c, kind, part in probe._plan.groups:
            for f, bins in enumerate((BINS1, BINS2)):
                edges[f][c, kind] = np.quantile(features[f][:, part], np.arange(1, bins) / bins, method="lower")
        coder = cls(probe.counts, centre, edges, grid)
        counts = np.zeros(m * KINDS * CONTEXTS * alphabet, dtype=np.int64)
        for start in range(0, len(samples), FIT_CHUNK):
            chunk = samples[start : start + FIT_CHUNK]
            rows = coder._table_rows(*coder._batch_features(chunk))
            values = np.swapaxes(chunk, 1, 2).reshape(len(chunk), -1)[:, coder._plan.symbol]
            counts += np.bincount((rows * alphabet + values).ravel(), minlength=counts.size)
        return cls(counts.reshape(m, KINDS, CONTEXTS, alphabet), centre, edges, grid)

    def state(self) -> dict[str, np.ndarray]:
        edges1, edges2 = self.edges
        return {"counts": self.counts, "ctx_centre": self.centre, "ctx_edges1": edges1, "ctx_edges2": edges2}

    @classmethod
    def state_shapes(cls, width: int, alphabet: int) -> dict[str, tuple[int, ...]]:
        return {
            "counts": (width, KINDS, CONTEXTS, alphabet),
            "ctx_centre": (width,),
            "ctx_edges1": (width, KINDS, BINS1 - 1),
            "ctx_edges2": (width, KINDS, BINS2 - 1),
        }

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], grid: tuple[int, int] | None = None) -> ContextCoder:
        if grid is None:
            raise CodecError("the ctx coder needs the grid of block positions (rows, cols)")
        return cls(arrays["counts"], arrays["ctx_centre"], (arrays["ctx_edges1"], arrays["ctx_edges2"]), grid)

    @property
    def components(self) -> int:
        return int(self.counts.shape[0])

    @property
    def alphabet(self) -> int:
        return int(self.counts.shape[-1])

    # --- contexts ----------------------------------------------------------------------------
    def _distances(self, samples: np.ndarray) -> np.ndarray:
        """(n, positions, M) symbols -> (n, M * padded positions): offsets from the centres on the
        zero-padded (rows + 2) x (cols + 2) grid."""
        n, m = len(samples), self.components
        d = (np.swapaxes(samples, 1, 2) - self.centre[:, None]).reshape(n, m, *self.grid)
        padded = np.zeros((n, m, self.grid[0] + 2, self.grid[1] + 2), dtype=np.int64)
        padded[..., 1:-1, 1:-1] = d
        return padded.reshape(n, -1)

    def _features(
        self, dist: np.ndarray, part: slice = slice(None), signed: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(f1, f2) lookup indices of the symbols ``part`` of the plan, from offsets (..., M * padded).
        ``signed``: the same for every symbol of ``part`` (a decoding step), or None (mixed)."""
        plan = self._plan
        nb = dist[..., plan.neighbours[:, part]]
        if signed is None:
            total = np.where(plan.signed[part], nb.sum(axis=-2), np.abs(nb).sum(axis=-2))
        else:
            total = nb.sum(axis=-2) if signed else np.abs(nb).sum(axis=-2)
        f1 = (4 * total // plan.count[part]) * plan.gate1[part] + self._offset
        return f1, np.abs(dist[..., plan.reference[part]]) * plan.gate2[part] + self._offset

    def _batch_features(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_features` of every symbol of many samples (n, positions, M) at once, for fitting:
        the same sums, taken as shifted slices of the grid instead of gathers (tested equal)."""
        n, (rows, cols) = len(samples), self.grid
        d = self._distances(samples).reshape(n, -1, rows + 2, cols + 2)
        cross = _cross(d).reshape(n, -1)
        diagonal = (d[..., :-2, :-2] + d[..., :-2, 2:] + d[..., 2:, :-2] + d[..., 2:, 2:]).reshape(n, -1)
        spread0 = _cross(np.abs(d[:, 0])).reshape(n, -1)
        sums = np.concatenate([cross, diagonal, spread0], axis=1)[:, self._plan.stencil]
        plan = self._plan
        f1 = (4 * sums // plan.count) * plan.gate1 + self._offset
        return f1, np.abs(d[:, 0, 1:-1, 1:-1]).reshape(n, -1)[:, plan.position] * plan.gate2 + self._offset

    def _table_rows(self, f1: np.ndarray, f2: np.ndarray, part: slice = slice(None)) -> np.ndarray:
        """The pmf row of each symbol of ``part`` from its features."""
        lut = self._lut[part]
        b1, b2 = np.take(self._bins1, lut + f1), np.take(self._bins2, lut + f2)
        return self._base[part] + b1 * BINS2 + b2  # type: ignore[no-any-return]

    # --- coding ------------------------------------------------------------------------------
    def _stream(self, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(symbols in decoding order, their pmf rows) for one sample's (positions, M) symbols."""
        expected = (self.grid[0] * self.grid[1], self.components)
        symbols = np.asarray(symbols, dtype=np.int64)
        if symbols.shape != expected or symbols.min(initial=0) < 0 or symbols.max(initial=0) >= self.alphabet:
            raise CodecError(f"the ctx coder codes {expected} symbols below {self.alphabet}, got {symbols.shape}")
        rows = self._table_rows(*self._features(self._distances(symbols[None])[0]))
        return symbols.T.ravel()[self._plan.symbol], rows

    def cross_entropy_bits(self, symbols: np.ndarray) -> float:
        """Sum of -log2 p(symbol | context): the bound the ANS body approaches."""
        values, rows = self._stream(symbols)
        return float(-np.log2(self.pmf[rows, values]).sum())

    def encode(self, symbols: np.ndarray) -> bytes:
        values, rows = self._stream(symbols)
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(values.astype(np.int32), self._family, np.take(self._rows, rows, axis=0))
        return coder.get_compressed().astype("<u4").tobytes()  # type: ignore[no-any-return]

    def decode(self, body: bytes, n: int) -> np.ndarray:
        positions = self.grid[0] * self.grid[1]
        if n != positions:
            raise CodecError(f"the ctx coder decodes {positions} positions per sample, {n} asked")
        coder = ans_stack(body)
        out = self._decode_steps(coder)
        if not coder.is_empty():
            raise CodecError("ctx body holds more data than its symbols")
        return out

    def _decode_steps(self, coder: constriction.stream.stack.AnsCoder) -> np.ndarray:
        plan, m = self._plan, self.components
        dist = np.zeros(m * (self.grid[0] + 2) * (self.grid[1] + 2), dtype=np.int64)
        out = np.zeros(m * self.grid[0] * self.grid[1], dtype=np.int64)
        for part in plan.steps:
            rows = self._table_rows(*self._features(dist, part, bool(plan.signed[part.start])), part)
            values = np.asarray(coder.decode(self._family, np.take(self._rows, rows, axis=0)), dtype=np.int64)
            out[plan.symbol[part]] = values
            dist[plan.own[part]] = values - self.centre[plan.component[part]]
        return out.reshape(m, -1).T


_Offsets = list[tuple[int, int]]
_CROSS: _Offsets = [(-1, 0), (1, 0), (0, -1), (0, 1)]
_DIAGONAL: _Offsets = [(-1, -1), (-1, 1), (1, -1), (1, 1)]


def _make_plan(grid: tuple[int, int], m: int) -> _Plan:
    rows, cols = grid
    r, c = np.divmod(np.arange(rows * cols), cols)
    a, b = (r % 2 == 0) & (c % 2 == 0), (r % 2 == 1) & (c % 2 == 1)
    kinds = [(a, _CROSS, False), (b, _DIAGONAL, True), (~(a | b), _CROSS, True)]  # (where, neighbours, own)
    parts = [
        _part(grid, m, comps, kind, np.flatnonzero(where), offsets, own)
        for comps in (np.array([0]), np.arange(1, m))
        for kind, (where, offsets, own) in enumerate(kinds)
    ]
    joined = {key: np.concatenate([p[key] for p in parts], axis=-1) for key in parts[0]}
    bounds = np.cumsum([0] + [len(p["symbol"]) for p in parts])
    step_slices = tuple(slice(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a)
    groups = []
    for index in range(m * KINDS):
        where = np.flatnonzero(joined["table"] == index)
        if len(where):  # contiguous: each step lists its components one after another
            groups.append((index // KINDS, index % KINDS, slice(int(where[0]), int(where[-1]) + 1)))
    return _Plan(**{k: v.astype(np.int64) for k, v in joined.items()}, steps=step_slices, groups=tuple(groups))


def _part(
    grid: tuple[int, int], m: int, comps: np.ndarray, kind: int, pos: np.ndarray, offsets: _Offsets, own: bool
) -> dict[str, np.ndarray]:
    """One decoding step: ``comps`` at the positions ``pos`` of one kind, in that order."""
    rows, cols = grid
    diagonal = offsets is _DIAGONAL
    r, c = np.divmod(np.arange(rows * cols), cols)
    padded, centre = (rows + 2) * (cols + 2), (r + 1) * (cols + 2) + c + 1
    inside = sum(((r + dr >= 0) & (r + dr < rows) & (c + dc >= 0) & (c + dc < cols)).astype(int) for dr, dc in offsets)
    steps = np.array([dr * (cols + 2) + dc for dr, dc in offsets])
    comp, at = np.repeat(comps, len(pos)), np.tile(pos, len(comps))
    source = comp if own else np.zeros_like(comp)  # own component, or component 0
    return {
        "symbol": comp * rows * cols + at,
        "own": comp * padded + centre[at],
        "component": comp,
        "neighbours": (source * padded + centre[at])[None, :] + steps[:, None],
        "count": np.maximum(np.asarray(inside)[at], 1),
        "reference": centre[at],
        "gate1": (comp > 0) | own,
        "signed": np.full(len(comp), own),
        "gate2": comp > 0,
        "table": comp * KINDS + kind,
        "position": at,
        "stencil": at + (comp * rows * cols if own else 2 * m * rows * cols) + (m * rows * cols if diagonal else 0),
    }


def _cross(d: np.ndarray) -> np.ndarray:
    """(..., rows + 2, cols + 2) zero-padded -> (..., rows, cols): the sum of the 4 neighbours."""
    return d[..., :-2, 1:-1] + d[..., 2:, 1:-1] + d[..., 1:-1, :-2] + d[..., 1:-1, 2:]  # type: ignore[no-any-return]


def _check_state(
    counts: np.ndarray, centre: np.ndarray, edges1: np.ndarray, edges2: np.ndarray, grid: tuple[int, int]
) -> None:
    if counts.ndim != 4 or counts.shape[1:3] != (KINDS, CONTEXTS) or not 2 <= counts.shape[3] <= 1 << 8:
        raise CodecError(f"ctx counts must be a (M, {KINDS}, {CONTEXTS}, alphabet of 2..256) array")
    if (counts < 0).any():
        raise CodecError("ctx counts must be non-negative")
    m, alphabet = counts.shape[0], counts.shape[3]
    if centre.shape != (m,) or (centre < 0).any() or (centre >= alphabet).any():
        raise CodecError(f"ctx centres must be {m} symbols in 0..{alphabet - 1}")
    for edges, bins in ((edges1, BINS1), (edges2, BINS2)):
        shape = (m, KINDS, bins - 1)
        if edges.shape != shape or (np.diff(edges, axis=-1) < 0).any() or (edges < 0).any():
            raise CodecError(f"ctx bin edges must be non-decreasing non-negative {shape} arrays")
    if counts.sum() > 1 << 40 or len(grid) != 2 or min(grid) < 1:
        raise CodecError(f"ctx state out of range (grid {grid}, {counts.sum()} counts)")
