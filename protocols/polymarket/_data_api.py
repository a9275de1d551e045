"""Data API (``https://data-api.polymarket.com``): ``/trades`` (v1) and ``/v2/trades``."""

from __future__ import annotations

from typing import Any

import orjson

from ._errors import MalformedFrame
from ._gamma import PageStats
from ._trade import Trade, trade_from_activity

__all__ = ["parse_trades_page"]

#: v2 snake_case field → v1/RTDS camelCase field (only the ones Trade uses).
_V2_TO_V1 = {
    "proxy_wallet": "proxyWallet",
    "side": "side",
    "token_id": "asset",
    "asset": "asset",
    "condition_id": "conditionId",
    "size": "size",
    "price": "price",
    "timestamp": "timestamp",
    "title": "title",
    "slug": "slug",
    "event_slug": "eventSlug",
    "outcome": "outcome",
    "outcome_index": "outcomeIndex",
    "name": "name",
    "pseudonym": "pseudonym",
    "transaction_hash": "transactionHash",
}


def _from_v2(row: dict[str, Any]) -> dict[str, Any]:
    return {camel: row[snake] for snake, camel in _V2_TO_V1.items() if snake in row}


def parse_trades_page(body: str | bytes | list[Any] | dict[str, Any], *, stats: PageStats | None = None) -> list[Trade]:
    """Parse a Data API trades response into :class:`Trade` objects (``source="data_api"``).

    Two shapes are accepted:

    * v1 ``GET /trades``: a bare JSON array of camelCase rows (the RTDS activity
      payload schema);
    * v2 ``GET /v2/trades``: ``{"data": [...], "pagination": {...}}`` with
      snake_case rows (``proxy_wallet``, ``token_id``, ``condition_id``...).

    Rows go through the same builder as RTDS payloads, so the same fill gets the
    same :attr:`Trade.trade_id` and :attr:`Trade.fill_key` from either source.

    Args:
        body: Response body (or the decoded value).
        stats: Optional collector: ``skipped`` counts malformed rows (dropped);
            ``next_cursor``/``has_more`` are taken from a v2 ``pagination``.

    Returns:
        The trades, in page order.

    Raises:
        MalformedFrame: not JSON (``"not json"``), a v2 error object
            (``"api error"``), or any other shape (``"not a trades page"``).
    """
    if isinstance(body, (list, dict)):
        page: Any = body
    else:
        try:
            page = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise MalformedFrame("not json") from None
    v2 = False
    if page.__class__ is dict:
        if "error" in page and "data" not in page:
            raise MalformedFrame("api error")
        pagination = page.get("pagination")
        page = page.get("data")
        v2 = True
        if stats is not None and pagination.__class__ is dict:
            cursor = pagination.get("next_cursor")
            stats.next_cursor = cursor if cursor.__class__ is str and cursor else None
            more = pagination.get("has_more")
            stats.has_more = more if more.__class__ is bool else None
    if page.__class__ is not list:
        raise MalformedFrame("not a trades page")
    out: list[Trade] = []
    skipped = 0
    for row in page:
        if row.__class__ is not dict:
            skipped += 1
            continue
        try:
            out.append(trade_from_activity(_from_v2(row) if v2 else row, "data_api"))
        except MalformedFrame:
            skipped += 1
    if stats is not None:
        stats.skipped += skipped
    return out
