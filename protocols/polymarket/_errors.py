"""The single exception type raised by the Polymarket parsers."""

from __future__ import annotations


class MalformedFrame(ValueError):
    """A frame or record could not be parsed; callers count and drop it.

    This is the only exception the parsers raise on bad input. Unknown event
    types and unknown fields are not errors (they are ignored).

    Attributes:
        reason: A short, low-cardinality description suitable as a metrics label,
            e.g. ``"not json"``, ``"bad price"``, ``"missing asset"``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
