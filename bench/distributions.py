"""Percentiles of measured samples (linear interpolation between closest ranks, numpy's default)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Iterable[float], points: Sequence[float] = (50, 95, 99)) -> dict[str, float | int | None]:
    samples = list(values)
    summary: dict[str, float | int | None] = {"n": len(samples)}
    for p in points:
        value = percentile(samples, p)
        summary[f"p{p:g}"] = None if value is None else round(value, 2)
    summary["mean"] = round(sum(samples) / len(samples), 2) if samples else None
    summary["max"] = round(max(samples), 2) if samples else None
    return summary


def mean(values: Iterable[float]) -> float | None:
    samples = list(values)
    return sum(samples) / len(samples) if samples else None


def median(values: Iterable[float]) -> float | None:
    return percentile(list(values), 50)
