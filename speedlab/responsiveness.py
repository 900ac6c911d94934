"""Responsiveness: round trips per minute (RPM) from the latency under load, and a grade in plain words.

RPM is the IETF draft "Responsiveness under Working Conditions" (draft-ietf-ippm-responsiveness,
https://datatracker.ietf.org/doc/draft-ietf-ippm-responsiveness/): ``60000 / round trip [ms]``
measured while the link is busy, so "higher is better" and a loaded round trip of 100 ms is
600 RPM. Apple's ``networkQuality`` (macOS 12+), the draft's first implementation, prints it with
a grade (``Responsiveness: Medium (612 RPM)``); the draft itself names no grades. Apple's
boundaries, as its outputs show them (collected in network-quality/goresponsiveness issue #40:
Low up to 183 RPM seen, Medium from 206 to 993 RPM, High from 1060 RPM), are Low below 200,
Medium from 200 and High from 1000 RPM; :data:`RPM_GRADES` uses those.

speedlab's loaded round trip is the mean of the median probe round trips during the download
and the upload (``latency_download_ms``, ``latency_upload_ms``; one of them if only one was
measured). Pure: numbers in, numbers and words out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RPM_GRADES", "RpmGrade", "loaded_latency_ms", "row_rpm", "rpm", "rpm_grade"]


@dataclass(frozen=True)
class RpmGrade:
    """A responsiveness grade: its name, the lowest RPM it covers and what it means for people."""

    name: str
    min_rpm: float
    meaning: str


#: The grades, best first: a figure gets the first grade whose ``min_rpm`` it reaches.
RPM_GRADES: tuple[RpmGrade, ...] = (
    RpmGrade("High", 1000.0, "calls and games stay smooth even while someone downloads or uploads"),
    RpmGrade("Medium", 200.0, "video calls may stutter while someone downloads or uploads"),
    RpmGrade("Low", 0.0, "calls, games and page loads lag badly while the line is busy"),
)


def _value(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def rpm(loaded_ms: float | None) -> float | None:
    """Round trips per minute for a round trip of ``loaded_ms`` [ms]: ``60000 / loaded_ms``.

    ``None`` when there is no round trip (``None``, zero or negative: never a made-up figure).
    """
    value = _value(loaded_ms)
    if value is None or value <= 0 or value != value:  # value != value: NaN
        return None
    return 60_000.0 / value


def rpm_grade(rpm_value: float | None) -> RpmGrade | None:
    """The grade of an RPM figure (:data:`RPM_GRADES`); ``None`` when there is no figure."""
    value = _value(rpm_value)
    if value is None or value < 0 or value != value:
        return None
    return next(grade for grade in RPM_GRADES if value >= grade.min_rpm)


def loaded_latency_ms(download_ms: float | None, upload_ms: float | None) -> float | None:
    """The loaded round trip [ms]: the mean of those of the download and the upload that are known."""
    known = [v for v in (_value(download_ms), _value(upload_ms)) if v is not None]
    return sum(known) / len(known) if known else None


def row_rpm(row: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(loaded round trip [ms], RPM)`` of a row or headline (``latency_download_avg``/``latency_upload_avg``).

    Missing keys count as not measured (rows of a store without latency figures).
    """
    loaded = loaded_latency_ms(row.get("latency_download_avg"), row.get("latency_upload_avg"))
    return loaded, rpm(loaded)
