"""Static entropy coders for integer symbols: canonical Huffman and ANS (constriction).

Symbols come as an (n, M) array: n vectors of M components, each component with its own static
distribution over the alphabet 0..A-1, fitted on the calib split as integer counts (add-one
smoothing, so every symbol stays codable). The model travels with the codec state, never in a
payload. Both coders derive their tables deterministically from the counts.
"""

from __future__ import annotations

import abc
import array
import heapq
from typing import ClassVar

import constriction
import numpy as np

from optimizer.codecs._errors import CodecError

__all__ = ["AnsCoder", "EntropyCoder", "HuffmanCoder", "ans_stack", "huffman_lengths"]

MAX_CODE_BITS = 15  # Huffman code length limit: decode tables of 2**15 entries per component


class EntropyCoder(abc.ABC):
    """One static model per component; ``encode``/``decode`` are exact inverses."""

    name: ClassVar[str]
    max_symbol_bits: ClassVar[int] = 16  # bounds a body's size: symbols x this / 8, plus flush words
    max_bits: ClassVar[int] = 16  # the widest quantizer (alphabet 2**bits) the coder accepts

    def __init__(self, counts: np.ndarray) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        if counts.ndim != 2 or counts.shape[1] < 2 or (counts <= 0).any():
            raise CodecError("entropy model counts must be a positive (components, alphabet>=2) array")
        self.counts = counts
        self.pmf = counts / counts.sum(axis=1, keepdims=True)

    @classmethod
    def fit(cls, symbols: np.ndarray, alphabet: int, grid: tuple[int, int] | None = None) -> EntropyCoder:
        """Counts of each symbol per component on calib data, plus one (``grid``, the layout of
        block positions, matters only to context models)."""
        symbols = np.asarray(symbols)
        counts = np.ones((symbols.shape[1], alphabet), dtype=np.int64)
        for c in range(symbols.shape[1]):
            counts[c] += np.bincount(symbols[:, c], minlength=alphabet)[:alphabet]
        return cls(counts)

    def state(self) -> dict[str, np.ndarray]:
        """The model as named arrays (the codec state stores them)."""
        return {"counts": self.counts}

    @classmethod
    def state_shapes(cls, width: int, alphabet: int) -> dict[str, tuple[int, ...]]:
        return {"counts": (width, alphabet)}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], grid: tuple[int, int] | None = None) -> EntropyCoder:
        return cls(arrays["counts"])

    @property
    def components(self) -> int:
        return int(self.counts.shape[0])

    @property
    def alphabet(self) -> int:
        return int(self.counts.shape[1])

    def cross_entropy_bits(self, symbols: np.ndarray) -> float:
        """Sum of -log2 p(symbol) under the static model: the bound both coders aim at."""
        cols = np.arange(self.components)
        return float(-np.log2(self.pmf[cols[None, :], symbols]).sum())

    @abc.abstractmethod
    def encode(self, symbols: np.ndarray) -> bytes: ...

    @abc.abstractmethod
    def decode(self, body: bytes, n: int) -> np.ndarray: ...


def huffman_lengths(counts: np.ndarray, max_bits: int = MAX_CODE_BITS) -> np.ndarray:
    """Optimal prefix-code lengths for positive counts (Huffman); if a code is longer than
    ``max_bits``, the counts are halved (rounding up) and the code rebuilt."""
    counts = np.asarray(counts, dtype=np.int64)
    while True:
        lengths = _huffman_lengths(counts)
        if lengths.max() <= max_bits:
            return lengths
        counts = (counts + 1) // 2


def _huffman_lengths(counts: np.ndarray) -> np.ndarray:
    n = len(counts)
    if n == 1:
        return np.ones(1, dtype=np.int64)
    heap = [(int(c), i, [i]) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    lengths = np.zeros(n, dtype=np.int64)
    tie = n
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        lengths[s1 + s2] += 1
        heapq.heappush(heap, (c1 + c2, tie, s1 + s2))
        tie += 1
    return lengths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical code values: sorted by (length, symbol), each code the previous plus one."""
    codes = np.zeros(len(lengths), dtype=np.int64)
    code, prev = 0, 0
    for sym in sorted(range(len(lengths)), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[sym]) - prev
        codes[sym], prev = code, int(lengths[sym])
        code += 1
    return codes


class HuffmanCoder(EntropyCoder):
    """Canonical Huffman, as in Assine et al.; the state is the counts, the codes follow.

    Kept rather than constriction.symbol.huffman (benchmarks/bench_context_coder.py, default model,
    val payloads of 256-8,192 symbols): this encoder is as fast or up to 4x faster (the device side),
    constriction's decoder is about 2-3x faster, and its code (its own tree, 32-bit words) cannot
    reproduce these canonical length-limited codes, so switching would change the wire body."""

    name = "huffman"

    def __init__(self, counts: np.ndarray) -> None:
        super().__init__(counts)
        self.lengths = np.stack([huffman_lengths(c) for c in self.counts])
        self.codes = np.stack([canonical_codes(length) for length in self.lengths])
        self._tables: list[array.array] | None = None

    def encode(self, symbols: np.ndarray) -> bytes:
        cols = np.broadcast_to(np.arange(self.components), symbols.shape)
        lens = self.lengths[cols, symbols].ravel()
        codes = self.codes[cols, symbols].ravel()
        total = int(lens.sum())
        starts = np.cumsum(lens) - lens
        offset = np.arange(total) - np.repeat(starts, lens)
        bits = (np.repeat(codes, lens) >> (np.repeat(lens, lens) - 1 - offset)) & 1
        return np.packbits(bits.astype(np.uint8)).tobytes()

    def _decode_tables(self) -> list[array.array]:
        """Per component, every 15-bit window -> (symbol << 4) | code length (0 = no code)."""
        if self._tables is None:
            self._tables = []
            for lengths, codes in zip(self.lengths, self.codes, strict=True):
                table = np.zeros(1 << MAX_CODE_BITS, dtype=np.uint32)
                for sym, (length, code) in enumerate(zip(lengths, codes, strict=True)):
                    shift = MAX_CODE_BITS - int(length)
                    table[int(code) << shift : (int(code) + 1) << shift] = (sym << 4) | int(length)
                self._tables.append(array.array("I", table.tobytes()))
        return self._tables

    def decode(self, body: bytes, n: int) -> np.ndarray:
        bits = np.unpackbits(np.frombuffer(body, dtype=np.uint8))
        nbits = len(bits)
        padded = np.concatenate([bits, np.zeros(MAX_CODE_BITS, dtype=np.uint8)]).astype(np.int64)
        windows = np.zeros(nbits + 1, dtype=np.int64)
        for i in range(MAX_CODE_BITS):
            windows += padded[i : i + nbits + 1] << (MAX_CODE_BITS - 1 - i)
        return self._walk(windows.tolist(), nbits, n)

    def _walk(self, windows: list[int], nbits: int, n: int) -> np.ndarray:
        tables, m = self._decode_tables(), self.components
        out = array.array("H", bytes(2 * n * m))
        pos = 0
        for i in range(n * m):
            if pos >= nbits:
                raise CodecError(f"Huffman body ends after {i} of {n * m} symbols")
            entry = tables[i % m][windows[pos]]
            if entry & 15 == 0:
                raise CodecError("Huffman body holds a bit pattern that is no code")
            out[i] = entry >> 4
            pos += entry & 15
        if pos > nbits or nbits - pos >= 8:
            raise CodecError("Huffman body length does not match its symbols")
        return np.frombuffer(out, dtype=np.uint16).astype(np.int64).reshape(n, m)


class AnsCoder(EntropyCoder):
    """Asymmetric numeral systems through the constriction library (Rust): a stack coder whose
    body is a sequence of little-endian 32-bit words."""

    name = "ans"

    def __init__(self, counts: np.ndarray) -> None:
        super().__init__(counts)
        self._models = [constriction.stream.model.Categorical(p, perfect=False) for p in self.pmf]

    def encode(self, symbols: np.ndarray) -> bytes:
        coder = constriction.stream.stack.AnsCoder()
        for c in reversed(range(self.components)):  # a stack: the last column in is the first out
            coder.encode_reverse(np.ascontiguousarray(symbols[:, c], dtype=np.int32), self._models[c])
        return coder.get_compressed().astype("<u4").tobytes()

    def decode(self, body: bytes, n: int) -> np.ndarray:
        coder = ans_stack(body)
        cols = [np.asarray(coder.decode(self._models[c], n), dtype=np.int64) for c in range(self.components)]
        return np.stack(cols, axis=1) if cols else np.zeros((n, 0), dtype=np.int64)


def ans_stack(body: bytes) -> constriction.stream.stack.AnsCoder:
    """An ANS stack over a body of little-endian 32-bit words; CodecError for a body that is no such
    stream (a partial word; constriction refuses a stream that ends in a zero word). Decoding from
    it never fails: garbage decodes to some symbols, which the callers' checks or the tail see."""
    if len(body) % 4:
        raise CodecError(f"ANS body of {len(body)} bytes is not a whole number of 32-bit words")
    try:
        return constriction.stream.stack.AnsCoder(np.frombuffer(body, dtype="<u4").astype(np.uint32))
    except ValueError as exc:  # "Invalid compressed data: ANS compressed data never ends in a zero word."
        raise CodecError(f"ANS body cannot be decoded: {exc}") from exc
