"""What every benchmark here reports of its timings: nearest-rank percentiles, one definition for all."""
from __future__ import annotations

import math


def percentile(values, p: float) -> float:
    """Nearest-rank percentile (p in percent): the smallest value with at least p% of the values at
    or below it; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
