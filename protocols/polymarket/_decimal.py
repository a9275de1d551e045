"""Lenient number and timestamp coercion shared by every wire format.

Polymarket sends prices and sizes as JSON numbers (RTDS, Data API) or as decimal
strings such as ``".48"`` (CLOB, Gamma). These helpers accept both, reject
booleans, non-finite values and anything else, and return ``None`` instead of
raising so callers decide what is fatal.
"""

from __future__ import annotations

from typing import Any

#: Epoch values above this are taken to be milliseconds (1e11 s is the year 5138).
_MS_THRESHOLD = 1e11


def to_float(value: Any) -> float | None:
    """Coerce a JSON number or numeric string to a finite float.

    Args:
        value: A decoded JSON value.

    Returns:
        The float, or ``None`` when ``value`` is missing, a bool, non-numeric,
        NaN/infinite, or a string with ``_`` digit separators.
    """
    cls = value.__class__
    if cls is float:
        # x - x is 0.0 for finite x and NaN for inf/NaN (NaN == 0.0 is False).
        return value if value - value == 0.0 else None
    if cls is int:
        try:
            return float(value)
        except OverflowError:
            return None
    if cls is str:
        if "_" in value:
            return None
        try:
            f = float(value)
        except ValueError:
            return None
        return f if f - f == 0.0 else None
    return None


def to_epoch_seconds(value: Any) -> float | None:
    """Coerce an epoch timestamp in seconds *or* milliseconds to float seconds.

    Values larger than 1e11 are treated as milliseconds. Negative values are
    rejected.

    Args:
        value: A JSON number or numeric string.

    Returns:
        Epoch seconds (UTC), or ``None`` if not a valid timestamp.
    """
    f = to_float(value)
    if f is None or f < 0.0:
        return None
    return f / 1000.0 if f > _MS_THRESHOLD else f


def ms_to_seconds(value: Any) -> float | None:
    """Convert a CLOB millisecond timestamp (usually a string) to epoch seconds.

    Args:
        value: Epoch milliseconds as a JSON number or numeric string.

    Returns:
        Epoch seconds (UTC), or ``None`` if not a valid, non-negative number.
    """
    f = to_float(value)
    if f is None or f < 0.0:
        return None
    return f / 1000.0


#: Memo of decimal price strings (``"0.48"``, ``".48"``...). CLOB traffic uses a few
#: hundred distinct tick-aligned strings and ``float(str)`` costs ~10x a dict hit.
#: Bounded: once full, new strings are parsed but not stored.
PRICE_CACHE: dict[str, float] = {}
_PRICE_CACHE_MAX = 16_384


def parse_price(value: Any) -> float | None:
    """Coerce a price (number or decimal string) that must lie in ``[0, 1]``.

    String results are memoised in :data:`PRICE_CACHE`.

    Args:
        value: A decoded JSON value.

    Returns:
        The price, or ``None`` when invalid or outside ``[0, 1]``.
    """
    try:
        return PRICE_CACHE[value]
    except (KeyError, TypeError):
        pass
    price = to_float(value)
    if price is None or not 0.0 <= price <= 1.0:
        return None
    if value.__class__ is str and len(PRICE_CACHE) < _PRICE_CACHE_MAX:
        PRICE_CACHE[value] = price
    return price
