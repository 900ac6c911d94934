"""A mergeable quantile sketch with a guaranteed relative error (DDSketch-style log buckets).

Why a sketch: a day's median cannot be computed from its hours' medians. Storing every value
in every summary would make a yearly summary hold 35,000 numbers per metric. A sketch keeps
one counter per logarithmic bucket instead: merging two sketches adds their counters, so the
sketch of a year built from twelve monthly sketches is *identical* to the one built straight
from the raw values, and any quantile read from it is within a relative error ``alpha``.

The buckets (Masson, Rim & Lee, "DDSketch", VLDB 2019)
------------------------------------------------------
With ``gamma = (1 + alpha) / (1 - alpha)``, a positive value ``x`` goes to bucket
``i = ceil(log(x) / log(gamma))``, which holds ``gamma**(i-1) < x <= gamma**i``. A bucket is
read back as ``2 * gamma**i / (gamma + 1)``; every value of the bucket is within
``alpha * x`` of that number. Values at or below :data:`ZERO_THRESHOLD` (a 0 Mbit/s test)
are counted in a separate zero bucket read back as 0 (an absolute error of at most 1e-9).

Quantile definition
-------------------
``quantile(q)`` estimates the *nearest-rank* quantile: the value at 1-based position
``max(1, ceil(q * n))`` of the ``n`` sorted values (:func:`rank_of`; for ``n = 4`` the median
is the 2nd value, for ``n = 20`` the 95th percentile the 19th). The estimate ``v`` satisfies
``|v - x| <= alpha * x`` for that true value ``x`` (and is clamped into ``[low, high]`` when
the caller knows the exact minimum and maximum, which can only bring it closer).

With the default ``alpha = 0.01`` speeds from 1 to 1,000 Mbit/s occupy at most 346 buckets;
a typical host's hour uses 1-4, a month 20-60. The JSON form lists only non-empty buckets.

Pure Python, no I/O, no dependencies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import InvalidRecord

__all__ = ["DEFAULT_ALPHA", "ZERO_THRESHOLD", "QuantileSketch", "rank_of"]

#: Relative accuracy of every quantile the sketch returns (1 %).
DEFAULT_ALPHA = 0.01
#: Values at or below this go to the zero bucket (speeds of 0 Mbit/s, pings of 0 ms).
ZERO_THRESHOLD = 1e-9


#: alpha -> (gamma, log(gamma)) for the alphas seen (float alphas only: 0.01 and 1/100 are one key)
_GAMMAS: dict[float, tuple[float, float]] = {}


def rank_of(q: float, n: int) -> int:
    """The 0-based position of the nearest-rank ``q`` quantile among ``n`` sorted values."""
    return max(0, math.ceil(q * n) - 1)


@dataclass
class QuantileSketch:
    """Counts of values in logarithmic buckets; see the module docstring.

    Parameters
    ----------
    alpha : float
        Relative accuracy, ``0 < alpha < 1``.

    Attributes
    ----------
    bins : dict of int to int
        Bucket index -> how many values fell in it.
    zero_count : int
        Values at or below :data:`ZERO_THRESHOLD`.
    """

    alpha: float = DEFAULT_ALPHA
    bins: dict[int, int] = field(default_factory=dict)
    zero_count: int = 0

    def __post_init__(self) -> None:
        known = _GAMMAS.get(self.alpha) if type(self.alpha) is float else None
        if known is None:  # checked and computed once per alpha (a rollup makes ~10^5 sketches)
            if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha < 1):
                raise ValueError(f"sketch alpha {self.alpha!r} must be between 0 and 1 (e.g. 0.01)")
            gamma = (1 + self.alpha) / (1 - self.alpha)
            known = (gamma, math.log(gamma))
            if type(self.alpha) is float and len(_GAMMAS) < 64:
                _GAMMAS[self.alpha] = known
        self._gamma, self._log_gamma = known

    # ------------------------------------------------------------------ building
    @classmethod
    def of(cls, values: Iterable[float], alpha: float = DEFAULT_ALPHA) -> QuantileSketch:
        """A sketch holding ``values`` (``None`` entries are skipped)."""
        sketch = cls(alpha)
        for value in values:
            if value is not None:
                sketch.add(value)
        return sketch

    def index(self, value: float) -> int:
        """The bucket of a positive ``value``: ``ceil(log(value) / log(gamma))``."""
        return math.ceil(math.log(value) / self._log_gamma)

    def add(self, value: float, count: int = 1) -> None:
        """Count ``value`` (``count`` times).

        Raises
        ------
        ValueError
            For a negative, infinite or NaN value (speeds and pings are never negative).
        """
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"cannot add {value!r} to a quantile sketch: values must be finite and >= 0")
        if value <= ZERO_THRESHOLD:
            self.zero_count += count
            return
        i = self.index(value)
        self.bins[i] = self.bins.get(i, 0) + count

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """A new sketch holding the values of both (bucket counts added).

        Raises
        ------
        ValueError
            If the two sketches were built with different ``alpha``.
        """
        if other.alpha != self.alpha:
            raise ValueError(f"cannot merge sketches with alpha {self.alpha} and {other.alpha}: "
                             "rebuild one with the same alpha")
        out = QuantileSketch(self.alpha, dict(self.bins), self.zero_count + other.zero_count)
        for i, n in other.bins.items():
            out.bins[i] = out.bins.get(i, 0) + n
        return out

    @classmethod
    def merge_all(cls, sketches: Iterable[QuantileSketch], alpha: float = DEFAULT_ALPHA
                  ) -> QuantileSketch:
        """One sketch holding the values of every sketch in ``sketches``."""
        out = cls(alpha)
        for sketch in sketches:
            if sketch.alpha != alpha:
                raise ValueError(f"cannot merge a sketch with alpha {sketch.alpha} into one with {alpha}")
            out.zero_count += sketch.zero_count
            for i, n in sketch.bins.items():
                out.bins[i] = out.bins.get(i, 0) + n
        return out

    # ------------------------------------------------------------------ reading
    @property
    def count(self) -> int:
        """How many values the sketch holds (exact)."""
        return self.zero_count + sum(self.bins.values())

    def value_of(self, index: int) -> float:
        """The value a bucket is read back as: ``2 * gamma**index / (gamma + 1)``."""
        return 2 * self._gamma ** index / (self._gamma + 1)

    def _buckets(self) -> list[tuple[float, int]]:
        out = [(0.0, self.zero_count)] if self.zero_count else []
        out.extend((self.value_of(i), self.bins[i]) for i in sorted(self.bins))
        return out

    def quantile(self, q: float, low: float | None = None, high: float | None = None) -> float | None:
        """Estimate the nearest-rank ``q`` quantile (``None`` for an empty sketch).

        Parameters
        ----------
        q : float
            ``0 <= q <= 1`` (0.5 is the median, 0.95 the 95th percentile).
        low, high : float, optional
            The exact minimum and maximum, if known: the estimate is clamped into them.
        """
        return self.quantiles((q,), low, high)[0]

    def quantiles(self, qs: Iterable[float], low: float | None = None, high: float | None = None
                  ) -> list[float | None]:
        """:meth:`quantile` of each of ``qs``, the buckets sorted once (a summary asks for two)."""
        qs = list(qs)
        if not all(0 <= q <= 1 for q in qs):
            raise ValueError(f"quantiles {qs!r} must be between 0 and 1")
        n = self.count
        if n == 0:
            return [None] * len(qs)
        buckets = self._buckets()
        out: list[float | None] = []
        for q in qs:
            rank = rank_of(q, n)
            seen = 0
            value = 0.0
            for value, c in buckets:  # noqa: B007 - the bucket where the loop stops is the answer
                seen += c
                if seen > rank:
                    break
            if low is not None:
                value = max(value, low)
            if high is not None:
                value = min(value, high)
            out.append(value)
        return out

    def mad(self) -> float | None:
        """Estimate the median absolute deviation from the median (``None`` when empty).

        Computed on the bucket values, so it is accurate to about ``alpha`` times the median.
        """
        median = self.quantile(0.5)
        if median is None:
            return None
        deviations = sorted((abs(v - median), c) for v, c in self._buckets())
        rank = rank_of(0.5, self.count)
        seen = 0
        for d, c in deviations:
            seen += c
            if seen > rank:
                return d
        return deviations[-1][0]  # pragma: no cover - the loop always returns

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """Compact JSON form: ``{"alpha", "zero_count", "index": [...], "counts": [...]}``.

        ``index`` lists the non-empty buckets in increasing order, ``counts`` their counts.
        """
        keys = sorted(self.bins)
        return {"alpha": self.alpha, "zero_count": self.zero_count, "index": keys,
                "counts": [self.bins[k] for k in keys]}

    @classmethod
    def from_dict(cls, data: dict, source: str | None = None) -> QuantileSketch:
        """Rebuild a sketch from :meth:`to_dict`'s form.

        Raises
        ------
        InvalidRecord
            If the object is not a sketch (naming ``source``).
        """
        where = f" in {source}" if source else ""
        try:
            index, counts = data["index"], data["counts"]
            zero = data.get("zero_count", 0)
            ok = (isinstance(index, list) and isinstance(counts, list) and len(index) == len(counts)
                  and all(isinstance(i, int) and not isinstance(i, bool) for i in index)
                  and all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in counts)
                  and isinstance(zero, int) and zero >= 0 and len(set(index)) == len(index))
            if not ok:
                raise ValueError("index and counts must be equal-length lists of integers, counts > 0")
            sketch = cls(float(data["alpha"]), dict(zip(index, counts, strict=True)), zero)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRecord(f"not a quantile sketch{where}: {exc}") from None
        return sketch
