"""Row types: what the store writes, one frozen attrs class per table.

Rows are plain values (no database ids): the natural key of each table (``trade_id``,
``condition_id``, ``request_id``, ``forecast_id``) is what makes writing them idempotent.
Times are epoch seconds (UTC) as floats, the project's convention everywhere.

Each row class also has a *parameters* form (:data:`Params`): the tuple of its column values in
``COLUMNS`` order, exactly what the write statements bind (``MarketRow.tags`` as JSON text).
The DB writer holds and merges rows in that form (:func:`trade_params`, :data:`MERGE_PARAMS`),
so the hot path builds one tuple per trade instead of an attrs instance and then a tuple;
:func:`row_from_params` turns one back into a row where a row object is needed (the journal,
logs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import orjson

if TYPE_CHECKING:
    from protocols.polymarket import MarketInfo, Trade

#: A row's column values in its class's ``COLUMNS`` order, as the write statements bind them.
Params = tuple[Any, ...]


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _json_text(value: Any) -> str:
    """``votes``: JSON text as given, or any JSON-able value serialized."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _tags(value: Iterable[str]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else tuple(value)


@attrs.frozen(slots=True)
class MarketRow:
    """One row of ``markets`` (upserted on ``condition_id``; the last write wins, except
    that a ``last_price`` of ``None`` keeps the price already stored)."""

    TABLE: ClassVar[str] = "markets"
    KEY: ClassVar[str] = "condition_id"
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "condition_id", "question", "slug", "event_slug", "category", "tags", "end_date", "last_price",
        "volume_24h", "updated_at")

    condition_id: str
    question: str
    slug: str
    event_slug: str
    category: str
    tags: tuple[str, ...] = attrs.field(converter=_tags)
    end_date: float | None
    last_price: float | None
    volume_24h: float
    updated_at: float

    @classmethod
    def from_market(cls, info: MarketInfo, *, last_price: float | None = None, updated_at: float) -> MarketRow:
        return cls(info.condition_id, info.question, info.slug, info.event_slug, info.category, info.tags,
                   _optional_float(info.end_date), _optional_float(last_price), float(info.volume_24h),
                   float(updated_at))

    @property
    def key(self) -> str:
        return self.condition_id

    def params(self) -> tuple[Any, ...]:
        return (self.condition_id, self.question, self.slug, self.event_slug, self.category,
                orjson.dumps(self.tags).decode(), self.end_date, self.last_price, self.volume_24h, self.updated_at)

    @classmethod
    def from_db(cls, values: Sequence[Any]) -> MarketRow:
        (condition_id, question, slug, event_slug, category, tags, end_date, last_price, volume_24h,
         updated_at) = values
        return cls(condition_id, question, slug, event_slug, category, tuple(orjson.loads(tags)),
                   _optional_float(end_date), _optional_float(last_price), float(volume_24h), float(updated_at))

    def merged_with(self, newer: MarketRow) -> MarketRow:
        """What the database holds after writing ``self`` then ``newer``."""
        if newer.last_price is None and self.last_price is not None:
            return attrs.evolve(newer, last_price=self.last_price)
        return newer


@attrs.frozen(slots=True)
class TradeRow:
    """One row of ``trades``: a notable trade (``is_whale`` once it reached the whale threshold).

    Upserted on ``trade_id``: a trade is immutable except for ``is_whale``, which only ever goes
    from false to true.
    """

    TABLE: ClassVar[str] = "trades"
    KEY: ClassVar[str] = "trade_id"
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "trade_id", "condition_id", "asset_id", "outcome", "side", "price", "size", "notional", "wallet",
        "transaction_hash", "traded_at", "is_whale")

    trade_id: str
    condition_id: str
    asset_id: str
    outcome: str
    side: str = attrs.field(validator=attrs.validators.in_(("BUY", "SELL")))
    price: float
    size: float
    notional: float
    wallet: str
    transaction_hash: str
    traded_at: float
    is_whale: bool = False

    @classmethod
    def from_trade(cls, trade: Trade, *, is_whale: bool) -> TradeRow:
        return cls(trade.trade_id, trade.condition_id, trade.asset_id, trade.outcome, trade.side,
                   float(trade.price), float(trade.size), float(trade.notional), trade.wallet,
                   trade.transaction_hash, float(trade.timestamp), bool(is_whale))

    @property
    def key(self) -> str:
        return self.trade_id

    def params(self) -> tuple[Any, ...]:
        return (self.trade_id, self.condition_id, self.asset_id, self.outcome, self.side, self.price, self.size,
                self.notional, self.wallet, self.transaction_hash, self.traded_at, self.is_whale)

    @classmethod
    def from_db(cls, values: Sequence[Any]) -> TradeRow:
        (trade_id, condition_id, asset_id, outcome, side, price, size, notional, wallet, transaction_hash,
         traded_at, is_whale) = values
        return cls(trade_id, condition_id, asset_id, outcome, side, float(price), float(size), float(notional),
                   wallet, transaction_hash, float(traded_at), bool(is_whale))

    def merged_with(self, newer: TradeRow) -> TradeRow:
        """What the database holds after writing ``self`` then ``newer``."""
        return newer if newer.is_whale and not self.is_whale else self


@attrs.frozen(slots=True)
class ModelForecastRow:
    """One row of ``model_forecasts``: one model's answer (or failure) for one market.

    Inserted once per ``request_id``; a repeat is ignored.
    """

    TABLE: ClassVar[str] = "model_forecasts"
    KEY: ClassVar[str] = "request_id"
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "request_id", "condition_id", "model", "outcome", "probability", "confidence", "reasoning", "ok", "error",
        "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "market_price", "created_at")

    request_id: str
    condition_id: str
    model: str
    outcome: str
    probability: float | None = attrs.field(converter=_optional_float)
    confidence: float | None = attrs.field(converter=_optional_float)
    reasoning: str
    ok: bool = attrs.field(converter=bool)
    error: str | None
    prompt_tokens: int | None = attrs.field(converter=_optional_int)
    completion_tokens: int | None = attrs.field(converter=_optional_int)
    cost_usd: float | None = attrs.field(converter=_optional_float)
    latency_ms: float | None = attrs.field(converter=_optional_float)
    market_price: float | None = attrs.field(converter=_optional_float)
    created_at: float = attrs.field(converter=float)

    @property
    def key(self) -> str:
        return self.request_id

    def params(self) -> tuple[Any, ...]:
        return attrs.astuple(self, recurse=False)

    @classmethod
    def from_db(cls, values: Sequence[Any]) -> ModelForecastRow:
        return cls(*values)

    def merged_with(self, newer: ModelForecastRow) -> ModelForecastRow:
        return self


@attrs.frozen(slots=True)
class SwarmForecastRow:
    """One row of ``swarm_forecasts``: one aggregated forecast; ``votes`` is JSON text.

    Inserted once per ``forecast_id``; a repeat is ignored.
    """

    TABLE: ClassVar[str] = "swarm_forecasts"
    KEY: ClassVar[str] = "forecast_id"
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "forecast_id", "condition_id", "outcome", "probability", "probability_mean", "confidence", "votes",
        "models_ok", "models_failed", "market_price", "created_at")

    forecast_id: str
    condition_id: str
    outcome: str
    probability: float | None = attrs.field(converter=_optional_float)
    probability_mean: float | None = attrs.field(converter=_optional_float)
    confidence: float | None = attrs.field(converter=_optional_float)
    votes: str = attrs.field(converter=_json_text)
    models_ok: int = attrs.field(converter=int)
    models_failed: int = attrs.field(converter=int)
    market_price: float | None = attrs.field(converter=_optional_float)
    created_at: float = attrs.field(converter=float)

    @property
    def key(self) -> str:
        return self.forecast_id

    def params(self) -> tuple[Any, ...]:
        return attrs.astuple(self, recurse=False)

    @classmethod
    def from_db(cls, values: Sequence[Any]) -> SwarmForecastRow:
        return cls(*values)

    def merged_with(self, newer: SwarmForecastRow) -> SwarmForecastRow:
        return self


@attrs.frozen(slots=True)
class AlertDeliveryRow:
    """One row of ``alert_deliveries``: what became of one alert at one outlet.

    ``status``: ``delivered`` (sent alone), ``digest`` (sent folded into a digest),
    ``undeliverable`` (given up after its tries, or refused) or ``overflow`` (the outlet's queue
    was full).  Inserted once per (outlet, alert); a repeat is ignored.
    """

    TABLE: ClassVar[str] = "alert_deliveries"
    KEY: ClassVar[str] = "delivery_id"
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "outlet", "alert_key", "status", "alert_type", "attempts", "detail", "created_at", "delivery_id")
    STATUSES: ClassVar[tuple[str, ...]] = ("delivered", "digest", "undeliverable", "overflow")

    outlet: str
    alert_key: str
    status: str = attrs.field(validator=attrs.validators.in_(STATUSES))
    alert_type: str
    attempts: int = attrs.field(converter=int)
    detail: str | None
    created_at: float = attrs.field(converter=float)
    #: ``outlet|alert_key``: the natural key.
    delivery_id: str = attrs.field(default=attrs.Factory(lambda self: f"{self.outlet}|{self.alert_key}",
                                                         takes_self=True))

    @property
    def key(self) -> str:
        return self.delivery_id

    def params(self) -> tuple[Any, ...]:
        return attrs.astuple(self, recurse=False)

    @classmethod
    def from_db(cls, values: Sequence[Any]) -> AlertDeliveryRow:
        return cls(*values)

    def merged_with(self, newer: AlertDeliveryRow) -> AlertDeliveryRow:
        return self


Row = MarketRow | TradeRow | ModelForecastRow | SwarmForecastRow | AlertDeliveryRow


def trade_params(trade: Trade, is_whale: bool) -> Params:
    """``TradeRow.from_trade(trade, is_whale=is_whale).params()`` without the row object (the
    DB writer's hot path: about 5x cheaper).

    Raises:
        ValueError: ``side`` is not ``BUY`` or ``SELL`` (as the row's validator would).
    """
    side = trade.side
    if side != "BUY" and side != "SELL":
        raise ValueError(f"'side' must be in ('BUY', 'SELL') (got {side!r})")
    return (trade.trade_id, trade.condition_id, trade.asset_id, trade.outcome, side, float(trade.price),
            float(trade.size), float(trade.notional), trade.wallet, trade.transaction_hash, float(trade.timestamp),
            bool(is_whale))


#: Index of ``is_whale`` in trade parameters and of ``last_price`` in market parameters.
_IS_WHALE = TradeRow.COLUMNS.index("is_whale")
_LAST_PRICE = MarketRow.COLUMNS.index("last_price")


def _merge_trades(old: Params, new: Params) -> Params:
    return new if new[_IS_WHALE] and not old[_IS_WHALE] else old


def _merge_markets(old: Params, new: Params) -> Params:
    if new[_LAST_PRICE] is None and old[_LAST_PRICE] is not None:
        return new[:_LAST_PRICE] + (old[_LAST_PRICE],) + new[_LAST_PRICE + 1:]
    return new


def _keep_first(old: Params, new: Params) -> Params:
    return old


#: ``merge(old, new)`` per table: the parameters the database holds after writing ``old`` then
#: ``new`` (the same rule as each row class's ``merged_with``); ``old`` itself when unchanged.
MERGE_PARAMS: dict[str, Any] = {
    "markets": _merge_markets, "trades": _merge_trades, "model_forecasts": _keep_first,
    "swarm_forecasts": _keep_first, "alert_deliveries": _keep_first,
}

#: Row classes in write order (markets first, so a batch's trades can be joined to them at once).
ROW_TYPES: tuple[type[Any], ...] = (MarketRow, TradeRow, ModelForecastRow, SwarmForecastRow, AlertDeliveryRow)
ROW_TYPE_BY_TABLE: dict[str, type[Any]] = {cls.TABLE: cls for cls in ROW_TYPES}
TABLES: tuple[str, ...] = tuple(ROW_TYPE_BY_TABLE)


@attrs.define
class WriteBatch:
    """Rows to write in one transaction (one crossing to the database)."""

    markets: list[MarketRow] = attrs.field(factory=list)
    trades: list[TradeRow] = attrs.field(factory=list)
    model_forecasts: list[ModelForecastRow] = attrs.field(factory=list)
    swarm_forecasts: list[SwarmForecastRow] = attrs.field(factory=list)
    alert_deliveries: list[AlertDeliveryRow] = attrs.field(factory=list)

    def __len__(self) -> int:
        return (len(self.markets) + len(self.trades) + len(self.model_forecasts) + len(self.swarm_forecasts)
                + len(self.alert_deliveries))

    def tables(self) -> Iterable[tuple[str, list[Any]]]:
        """``(table, rows)`` for each non-empty table, in write order."""
        for table in TABLES:
            rows = getattr(self, table)
            if rows:
                yield table, rows

    def rows(self) -> Iterable[Row]:
        for _, rows in self.tables():
            yield from rows

    def add(self, row: Row) -> None:
        getattr(self, row.TABLE).append(row)

    @classmethod
    def of(cls, rows: Iterable[Row]) -> WriteBatch:
        batch = cls()
        for row in rows:
            batch.add(row)
        return batch


def row_from_params(table: str, params: Params) -> Row:
    """The row of ``table`` whose parameters are ``params`` (the inverse of ``row.params()``)."""
    row: Row = ROW_TYPE_BY_TABLE[table].from_db(params)
    return row


def params_finite(params: Params) -> bool:
    """False if a float in ``params`` is NaN or infinite."""
    for value in params:
        if value.__class__ is float and not math.isfinite(value):
            return False
    return True


def row_to_json(row: Row) -> dict[str, Any]:
    """A JSON-ready dict of ``row`` (``"t"`` names its table)."""
    data = attrs.asdict(row, recurse=False)
    data["t"] = row.TABLE
    return data


def row_from_json(data: Mapping[str, Any]) -> Row:
    """The inverse of :func:`row_to_json` (extra keys other than ``t`` and ``at`` are an error)."""
    values = dict(data)
    cls = ROW_TYPE_BY_TABLE[values.pop("t")]
    values.pop("at", None)
    row: Row = cls(**values)
    return row


def check_finite(row: Row) -> None:
    """Raise ValueError if a float field is NaN or infinite (no database stores those alike)."""
    for value in attrs.astuple(row, recurse=False):
        if value.__class__ is float and not math.isfinite(value):
            raise ValueError(f"non-finite number in {row.TABLE} row {row.key!r}")
