"""Messages between pipeline actors (internal; the client wire format lives in protocols.client)."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen(slots=True)
class Broadcast:
    """One message for every interested client, handed to the hub.

    Attributes:
        type: ``whale_trade``, ``market_update`` or ``prediction``.
        data: The message's ``data`` object.
        market: Condition id, for clients that subscribed to markets.
        amount: USDC amount, for clients with a ``min_amount``.
        key: Identity for idempotence: the hub broadcasts a key once even if the message is
            delivered again (after a crash), as long as it is among the last ``WS_RING_SIZE``
            keys; None for state updates, where repeats are harmless.
    """

    type: str
    data: dict[str, Any]
    market: str | None = None
    amount: float | None = None
    key: str | None = None
