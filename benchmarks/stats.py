"""The statistics every benchmark figure goes through: paired values, a bootstrap interval of
their median, and a verdict that only counts a target as met when the interval clears it.

Standard library only (``random``, ``statistics``), with a fixed seed, so the same samples
always give the same intervals and a report re-renders identically.

- **Paired values**: a peer's sample over (or minus) the toolkit's (or the null app's) *from the
  same repetition*, run moments apart. Load on a shared machine comes and goes in spells longer
  than one batch or one wrk run; a paired value cancels the spell where a ratio of two medians
  may not (the two medians can come from different spells).
- **Interval**: the 95% percentile bootstrap interval of the median of the paired values. When
  the values come in groups (in-process: the sessions, each with fresh worker processes, which
  can differ as a whole: memory layout, hash seeds), each round resamples the groups first, then
  the values inside each chosen group (a two-stage bootstrap), so a difference between sessions
  widens the interval instead of hiding in it.
- **Verdict**: ``met`` when the whole interval is on the right side of the target, ``missed``
  when the whole interval is on the wrong side, ``inconclusive`` when it straddles the target.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from typing import Any, Literal

__all__ = [
    "LEVEL",
    "ROUNDS",
    "SEED",
    "Verdict",
    "bootstrap_interval",
    "differences",
    "interval",
    "ratios",
    "us_above",
    "verdict",
]

ROUNDS = 2000  # bootstrap resamples per interval
SEED = 1  # every interval starts from the same seed: same samples, same interval
LEVEL = 0.95

Verdict = Literal["met", "missed", "inconclusive"]


def bootstrap_interval(
    values: Sequence[float],
    groups: Sequence[Any] | None = None,
    *,
    rounds: int = ROUNDS,
    seed: int = SEED,
    level: float = LEVEL,
) -> tuple[float, float]:
    """The percentile bootstrap interval (``level``, 95% by default) of the median of ``values``.

    ``groups``, if given, names the group of each value (the in-process session); each round
    then draws as many groups as there are, with replacement, and inside each drawn group as
    many of its values as it holds, with replacement (a two-stage bootstrap).
    """
    if not values:
        raise ValueError("no values")
    if groups is not None and len(groups) != len(values):
        raise ValueError("one group per value")
    rng = random.Random(seed)
    if groups is None or len(set(groups)) == 1:
        data = list(values)
        medians = [statistics.median(rng.choices(data, k=len(data))) for _ in range(rounds)]
    else:
        clusters: dict[Any, list[float]] = {}
        for group, value in zip(groups, values, strict=True):
            clusters.setdefault(group, []).append(value)
        members = list(clusters.values())
        medians = []
        for _ in range(rounds):
            drawn: list[float] = []
            for cluster in rng.choices(members, k=len(members)):
                drawn += rng.choices(cluster, k=len(cluster))
            medians.append(statistics.median(drawn))
    medians.sort()
    tail = (1 - level) / 2
    return medians[int(rounds * tail)], medians[min(rounds - 1, int(rounds * (1 - tail)))]


def interval(values: Sequence[float], groups: Sequence[Any] | None = None) -> dict[str, Any] | None:
    """``{"median", "low", "high", "n"}`` for ``values`` (None when there are none)."""
    if not values:
        return None
    low, high = bootstrap_interval(values, groups)
    return {"median": statistics.median(values), "low": low, "high": high, "n": len(values)}


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Pairwise ``a / b`` (pairs with a zero denominator are left out)."""
    return [a / b for a, b in zip(numerators, denominators, strict=True) if b]


def differences(minuends: Sequence[float], subtrahends: Sequence[float]) -> list[float]:
    """Pairwise ``a - b``."""
    return [a - b for a, b in zip(minuends, subtrahends, strict=True)]


def us_above(rps: float, floor_rps: float) -> float:
    """µs per request above a faster floor: ``1e6 / rps - 1e6 / floor_rps`` (req/s in, µs out)."""
    return 1e6 / rps - 1e6 / floor_rps


def verdict(
    low: float,
    high: float,
    target: float,
    *,
    better: Literal["higher", "lower"] = "higher",
    strict: bool = False,
) -> Verdict:
    """Whether an interval shows a target met, missed, or neither.

    ``better="higher"``: the target is ``value >= target`` (``value > target`` with ``strict``):
    met when the lower bound clears it, missed when the upper bound falls short of it.
    ``better="lower"``: the target is ``value <= target`` (``value < target`` with ``strict``): met
    when the upper bound is at or under it, missed when the lower bound is over it. Anything else
    is ``inconclusive``.
    """
    if low > high:
        raise ValueError(f"not an interval: {low} > {high}")
    if better == "higher":
        if low > target or (low == target and not strict):
            return "met"
        if high < target or (high == target and strict):
            return "missed"
        return "inconclusive"
    if high < target or (high == target and not strict):
        return "met"
    if low > target or (low == target and strict):
        return "missed"
    return "inconclusive"
