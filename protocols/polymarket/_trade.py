"""The normalised :class:`Trade` and the identity rules shared by every source.

RTDS ``activity`` payloads and Data API v1 ``/trades`` rows have the same
camelCase schema, so both go through :func:`trade_from_activity`; that is what
guarantees the same fill gets the same :attr:`Trade.trade_id` whichever source
delivered it.
"""

from __future__ import annotations

from hashlib import sha1
from typing import Any

import attrs

from ._decimal import parse_price, to_epoch_seconds, to_float
from ._errors import MalformedFrame

#: Number of hex characters kept from the sha1 digest for ids.
ID_LENGTH = 20

_SIDES = {"BUY": "BUY", "SELL": "SELL", "buy": "BUY", "sell": "SELL", "Buy": "BUY", "Sell": "SELL"}
_UNLABELED_OUTCOME_INDEX = 999
_INF = float("inf")


@attrs.frozen(slots=True)
class Trade:
    """One fill, normalised from any source.

    Attributes:
        trade_id: Stable identity of this wallet's side of the fill (see :func:`trade_keys`).
        fill_key: Wallet-free identity, to match a CLOB ``last_trade_price`` with the RTDS taker row.
        condition_id: Market condition id (``0x`` + 64 hex).
        asset_id: Token id (a big decimal integer, as a string).
        side: ``"BUY"`` or ``"SELL"`` from the trader's point of view (CLOB: the taker's side).
        outcome: Outcome label (``"Yes"``, ``"No"``, a name...), ``""`` when unknown.
        outcome_index: Index of the outcome; ``None`` when missing or the 999 "unlabeled" sentinel.
        price: USDC per share.
        size: Shares.
        notional: ``size * price`` in USDC.
        timestamp: Epoch seconds, UTC.
        transaction_hash: Settlement tx hash, ``""`` when absent.
        wallet: ``proxyWallet`` as given (mixed case), ``""`` when absent.
        trader: Display name if non-empty, else pseudonym, else ``""``.
        title: Market question, ``""`` when absent.
        slug: Market slug, ``""`` when absent.
        event_slug: Event slug (the one used in ``polymarket.com/event/...`` URLs), ``""`` when absent.
        source: ``"rtds.trades"``, ``"rtds.orders_matched"``, ``"clob"`` or ``"data_api"``.
    """

    trade_id: str
    fill_key: str
    condition_id: str
    asset_id: str
    side: str
    outcome: str
    outcome_index: int | None
    price: float
    size: float
    notional: float
    timestamp: float
    transaction_hash: str
    wallet: str
    trader: str
    title: str
    slug: str
    event_slug: str
    source: str


def trade_keys(
    transaction_hash: str,
    asset_id: str,
    wallet: str,
    side: str,
    size: float,
    price: float,
    timestamp: float,
) -> tuple[str, str]:
    """Compute ``(trade_id, fill_key)`` for a fill.

    ``trade_id`` is the first :data:`ID_LENGTH` hex chars of
    ``sha1("tx|asset|wallet_lower|side|size(6dp)|price(6dp)")`` and ``fill_key``
    the same without the wallet. The tx hash is lowercased. When the tx hash is
    absent (e.g. some ``orders_matched`` frames), ``"ts:<int epoch seconds>"``
    stands in for it so that repeated identical fills by one wallet do not
    collapse into one id; RTDS and the Data API both carry the block time in
    seconds, so they still agree.

    Returns:
        ``(trade_id, fill_key)``.
    """
    tx = transaction_hash.lower() if transaction_hash else "ts:%d" % timestamp
    tail = "|%s|%.6f|%.6f" % (side, size, price)
    trade_id = sha1(f"{tx}|{asset_id}|{wallet.lower()}{tail}".encode()).hexdigest()[:ID_LENGTH]
    fill_key = sha1(f"{tx}|{asset_id}{tail}".encode()).hexdigest()[:ID_LENGTH]
    return trade_id, fill_key


def check_price(value: Any) -> float:
    """A trade price: finite and within ``[0, 1]``, else :class:`MalformedFrame`."""
    price = parse_price(value)
    if price is None:
        raise MalformedFrame("bad price")
    return price


def check_size(value: Any) -> float:
    """A trade size in shares: finite and ``>= 0``, else :class:`MalformedFrame`."""
    size = to_float(value)
    if size is None or size < 0.0:
        raise MalformedFrame("bad size")
    return size


def check_side(value: Any) -> str:
    """``"BUY"``/``"SELL"`` (case-insensitive input), else :class:`MalformedFrame`."""
    try:
        return _SIDES[value]
    except (KeyError, TypeError):
        if value.__class__ is str and value.upper() in ("BUY", "SELL"):
            return value.upper()
        raise MalformedFrame("bad side") from None


def trade_from_activity(payload: dict[str, Any], source: str, fallback_timestamp: Any = None) -> Trade:
    """Build a :class:`Trade` from a camelCase activity record.

    This is the RTDS ``activity`` payload and the Data API v1 ``/trades`` row
    (same schema).

    Args:
        payload: The decoded record.
        source: Value for :attr:`Trade.source`.
        fallback_timestamp: Used when the record has no valid ``timestamp``
            (RTDS passes the envelope's epoch-ms timestamp). Seconds or ms.

    Returns:
        The trade.

    Raises:
        MalformedFrame: missing/invalid ``price``, ``size``, ``side``, ``asset``,
            ``conditionId`` or timestamp.
    """
    get = payload.get
    price = get("price")
    if price.__class__ is not float or not 0.0 <= price <= 1.0:  # fast path: JSON number in range
        price = check_price(price)
    size = get("size")
    if size.__class__ is not float or not 0.0 <= size < _INF:
        size = check_size(size)
    side = get("side")
    if side != "BUY" and side != "SELL":
        side = check_side(side)
    asset = get("asset")
    if asset.__class__ is not str or not asset:
        raise MalformedFrame("missing asset")
    condition_id = get("conditionId")
    if condition_id.__class__ is not str or not condition_id:
        raise MalformedFrame("missing condition id")
    ts = get("timestamp")
    timestamp = float(ts) if ts.__class__ is int and 0 <= ts < 100_000_000_000 else to_epoch_seconds(ts)
    if timestamp is None:
        timestamp = to_epoch_seconds(fallback_timestamp)
        if timestamp is None:
            raise MalformedFrame("bad timestamp")

    oi = get("outcomeIndex")
    if oi.__class__ is not int or oi == _UNLABELED_OUTCOME_INDEX:
        oi = _outcome_index(oi)
    tx = get("transactionHash")
    if tx.__class__ is not str:
        tx = ""
    wallet = get("proxyWallet")
    if wallet.__class__ is not str:
        wallet = ""
    trader = get("name")
    if trader.__class__ is not str or not trader:
        trader = get("pseudonym")
        if trader.__class__ is not str:
            trader = ""
    outcome = get("outcome")
    if outcome.__class__ is not str:
        outcome = ""
    title = get("title")
    if title.__class__ is not str:
        title = ""
    slug = get("slug")
    if slug.__class__ is not str:
        slug = ""
    event_slug = get("eventSlug")
    if event_slug.__class__ is not str:
        event_slug = ""

    # trade_keys(), inlined: this is the hot path.
    key_tx = tx.lower() if tx else "ts:%d" % timestamp
    tail = "|%s|%.6f|%.6f" % (side, size, price)
    trade_id = sha1(f"{key_tx}|{asset}|{wallet.lower()}{tail}".encode()).hexdigest()[:ID_LENGTH]
    fill_key = sha1(f"{key_tx}|{asset}{tail}".encode()).hexdigest()[:ID_LENGTH]
    return Trade(
        trade_id,
        fill_key,
        condition_id,
        asset,
        side,
        outcome,
        oi,
        price,
        size,
        size * price,
        timestamp,
        tx,
        wallet,
        trader,
        title,
        slug,
        event_slug,
        source,
    )


def _outcome_index(value: Any) -> int | None:
    """Slow path for ``outcomeIndex``: numeric strings, sentinel, garbage."""
    if value.__class__ is int:
        return None if value == _UNLABELED_OUTCOME_INDEX else value
    if value.__class__ is str:
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) < 10):
            return None
        n = int(text)
        return None if n == _UNLABELED_OUTCOME_INDEX else n
    if value.__class__ is float and value.is_integer() and 0 <= value < 1_000_000:
        n = int(value)
        return None if n == _UNLABELED_OUTCOME_INDEX else n
    return None
