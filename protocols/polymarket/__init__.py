"""Pure, fast parsers for every Polymarket wire format (no I/O).

One place knows each format:

* RTDS ``wss://ws-live-data.polymarket.com`` — :func:`parse_rtds_frame`,
  :func:`rtds_subscribe_message`;
* CLOB market channel ``wss://ws-subscriptions-clob.polymarket.com/ws/market`` —
  :func:`parse_clob_frame`, :func:`clob_subscribe_message`, :func:`clob_operation_message`;
* Gamma REST — :func:`parse_events_page`, :func:`parse_markets_page`, :func:`parse_market`;
* Data API REST — :func:`parse_trades_page`.

Parsers never raise on bad input except :class:`MalformedFrame` (a
``ValueError`` with a short ``reason``); unknown event types and fields are
ignored. Trades from every source are normalised to :class:`Trade` with a
source-independent :attr:`Trade.trade_id`.
"""

from ._clob import (
    CLOB_PING,
    ClobEvent,
    ClobParse,
    MarketResolved,
    NewMarket,
    PriceTick,
    TickSizeChange,
    clob_operation_message,
    clob_subscribe_message,
    parse_clob_event,
    parse_clob_frame,
)
from ._data_api import parse_trades_page
from ._decimal import ms_to_seconds, to_epoch_seconds, to_float
from ._errors import MalformedFrame
from ._gamma import MarketInfo, PageStats, decode_json_list, parse_events_page, parse_market, parse_markets_page
from ._keepalive import PING, is_keepalive
from ._rtds import (
    ACTIVITY_SUBSCRIPTIONS,
    RTDS_PING,
    RtdsFrame,
    RtdsOther,
    parse_rtds_frame,
    rtds_subscribe_message,
    rtds_unsubscribe_message,
)
from ._trade import Trade, trade_from_activity, trade_keys

__all__ = [
    "ACTIVITY_SUBSCRIPTIONS",
    "CLOB_PING",
    "PING",
    "RTDS_PING",
    "ClobEvent",
    "ClobParse",
    "MalformedFrame",
    "MarketInfo",
    "MarketResolved",
    "NewMarket",
    "PageStats",
    "PriceTick",
    "RtdsFrame",
    "RtdsOther",
    "TickSizeChange",
    "Trade",
    "clob_operation_message",
    "clob_subscribe_message",
    "decode_json_list",
    "is_keepalive",
    "ms_to_seconds",
    "parse_clob_event",
    "parse_clob_frame",
    "parse_events_page",
    "parse_market",
    "parse_markets_page",
    "parse_rtds_frame",
    "parse_trades_page",
    "rtds_subscribe_message",
    "rtds_unsubscribe_message",
    "to_epoch_seconds",
    "to_float",
    "trade_from_activity",
    "trade_keys",
]

# Present the public classes as living in the package (as trio does).
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith(__name__ + "._"):
        _obj.__module__ = __name__
del _name, _obj
