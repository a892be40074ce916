"""Reading the dates users' data holds (ISO 8601, epoch milliseconds, common written forms).

Used by the ``date``, ``iso`` and ``epoch_ms`` expression filters. A date without a time zone
is taken as UTC; numbers are milliseconds since 1970-01-01 UTC (what GHL and JavaScript use);
``05/01/2024`` is read the US way (month first).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from connector.expressions.syntax import JSON, ExpressionError, json_type

__all__ = ["parse_datetime", "to_epoch_ms", "to_iso"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_EPOCH_TEXT = re.compile(r"-?[0-9]{9,15}")
_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%b %d %Y",
    "%B %d %Y",
    "%a, %d %b %Y %H:%M:%S %z",
    "%a, %d %b %Y %H:%M:%S GMT",
)


def parse_datetime(filter_name: str, value: JSON) -> datetime | None:
    """``value`` as an aware datetime, or None when it is null or an empty string.

    :param filter_name: the filter asking, for error messages.
    :param value: an ISO 8601 string, epoch milliseconds (number or digits), or a common form
        such as ``05/01/2024``, ``May 1, 2024`` or an RFC 2822 date.
    :raises ExpressionError: the value is of another type or in no known form.
    """
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch_ms(filter_name, value)
    if not isinstance(value, str):
        raise ExpressionError(
            f"filter {filter_name!r} expects a date string or epoch milliseconds, "
            f"got {json_type(value)}"
        )
    text = value.strip()
    moment = _from_text(text)
    if moment is None and _EPOCH_TEXT.fullmatch(text):
        return _from_epoch_ms(filter_name, int(text))
    if moment is None:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ExpressionError(f"filter {filter_name!r}: {shown!r} is not a date it can read")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _from_text(text: str) -> datetime | None:
    if len(text) > 100:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _from_epoch_ms(filter_name: str, millis: int | float) -> datetime:
    if isinstance(millis, float) and not math.isfinite(millis):
        raise ExpressionError(f"filter {filter_name!r}: {millis} is not a date")
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError as exc:
        raise ExpressionError(f"filter {filter_name!r}: {millis} is out of the date range") from exc


def to_iso(moment: datetime) -> str:
    """``moment`` in UTC as ``2024-05-01T10:00:00.000Z`` (the form GHL and JavaScript write)."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError as exc:
        raise ExpressionError("date is out of range once moved to UTC") from exc
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def to_epoch_ms(moment: datetime) -> int:
    """``moment`` as whole milliseconds since 1970-01-01 UTC."""
    return (moment - _EPOCH) // _MILLISECOND
