"""GrowthBook's deterministic bucketing, so any GrowthBook SDK picks the same variant.

The scheme (GrowthBook SDK spec): FNV-1a 32-bit over UTF-16 code units as the JS SDK does
(identical to bytes for ASCII ids); version 1 hashes `value + seed` and keeps 3 decimals,
version 2 hashes the decimal string of `fnv(seed + value)` again and keeps 4 decimals. A unit's
bucket in [0, 1) falls in one variant's range; ranges are laid out from the weights and shrunk
by the coverage, so a unit outside every range is not in the experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FNV32_OFFSET = 0x811C9DC5
FNV32_PRIME = 0x01000193
MASK32 = 0xFFFFFFFF


def fnv1a32(value: str) -> int:
    h = FNV32_OFFSET
    # The JS SDK XORs UTF-16 code units (charCodeAt); encode the same way for non-ASCII ids.
    data = value.encode("utf-16-le")
    for i in range(0, len(data), 2):
        h ^= data[i] | (data[i + 1] << 8)
        h = (h * FNV32_PRIME) & MASK32
    return h


def bucket(seed: str, value: str, version: int = 2) -> float | None:
    """The unit's position in [0, 1); None for an unknown hash version (as the SDKs do)."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def equal_weights(count: int) -> list[float]:
    return [1.0 / count] * count if count > 0 else []


def bucket_ranges(
    count: int, coverage: float, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """[start, end) per variant; invalid weights fall back to equal ones, as in the SDKs."""
    coverage = min(max(coverage, 0.0), 1.0)
    chosen = list(weights) if weights is not None else []
    if len(chosen) != count or not 0.99 <= sum(chosen) <= 1.01:
        chosen = equal_weights(count)
    ranges = []
    cumulative = 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(position: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the range holding the bucket, or -1 when the unit is outside them all."""
    for index, (start, end) in enumerate(ranges):
        if start <= position < end:
            return index
    return -1


@dataclass(frozen=True, slots=True)
class Definition:
    """What bucketing needs from an experiment."""

    key: str
    variant_keys: tuple[str, ...]
    weights: tuple[float, ...]
    coverage: float = 1.0
    seed: str | None = None
    hash_version: int = 2


@dataclass(frozen=True, slots=True)
class Bucketed:
    variant_index: int
    variant_key: str
    bucket: float


def assign(definition: Definition, unit_id: str) -> Bucketed | None:
    """The variant a fresh unit gets, or None when it falls outside the coverage."""
    position = bucket(definition.seed or definition.key, unit_id, definition.hash_version)
    if position is None:
        return None
    ranges = bucket_ranges(len(definition.variant_keys), definition.coverage, definition.weights)
    index = choose_variation(position, ranges)
    if index < 0:
        return None
    return Bucketed(index, definition.variant_keys[index], position)
