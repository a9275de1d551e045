"""The prompts: built-in defaults, or the user's from ``AI_SYSTEM_PROMPT_FILE`` / ``AI_USER_PROMPT_FILE``.

The user prompt is a :class:`string.Template`: ``$question`` or ``${question}``, ``$$`` for a
literal dollar sign (JSON braces need no escaping).  Placeholders (validated at start-up, see
``config._settings.AI_PROMPT_FIELDS``):

=====================  ============================================================================
``$today``             today's date (UTC), so the model can judge time left
``$question``          the market's question
``$description``       its resolution rules (Gamma's description, at most 2,000 characters)
``$end_date``          when it closes (``2025-10-10 00:00 UTC``, or ``unknown``)
``$outcomes``          its outcome labels (``Yes / No``)
``$first_outcome``     the outcome ``probability`` refers to (``Yes``)
``$event_title``       the parent event's title
``$category``          Gamma's category (may be empty)
``$whale_flow``        recent whale trades on the market, one per line (or "none seen")
``$market_price``      the first outcome's current price (``0.71``), or ``withheld``
``$market_price_line`` a sentence giving that price, or "" when the price is withheld
=====================  ============================================================================
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import attrs

from config._settings import AI_PROMPT_FIELDS  # the one list of placeholders (validated with the settings)
from protocols.polymarket import MarketInfo

from ._messages import WhaleNote

MAX_DESCRIPTION_CHARS = 2000

DEFAULT_SYSTEM_PROMPT = """\
You are a careful, well-calibrated superforecaster. You estimate the probability that a \
prediction-market question resolves to its FIRST outcome, reasoning from base rates, the exact \
resolution rules, the time left before the market closes, and what was known as of today. \
Avoid overconfidence: use probabilities near 0 or 1 only when the outcome is practically settled.

Answer with one JSON object and nothing else:
{"outcome": "<the outcome you expect, one of the market's outcome labels>",
 "probability": <probability from 0 to 1 that the market resolves to its FIRST outcome>,
 "confidence": <how confident you are in your estimate, from 0 to 1>,
 "reasoning": "<at most three sentences>"}"""

DEFAULT_USER_PROMPT = """\
Today is $today (UTC).

Market: $question
Event: $event_title
Outcomes: $outcomes ("probability" is the probability of "$first_outcome")
Closes: $end_date

Resolution rules:
$description

Recent whale trades on this market:
$whale_flow
$market_price_line
Give your forecast as the JSON object only."""


def _when(epoch: float | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(fmt) if epoch is not None else "unknown"


def whale_lines(whales: Sequence[WhaleNote]) -> str:
    """One line per whale trade, oldest first; ``none seen`` when there are none."""
    if not whales:
        return "none seen"
    return "\n".join(f"- {_when(w.timestamp)}: {w.action} {w.outcome or '?'} for ${w.notional:,.0f} at {w.price:.3f}"
                     for w in whales)


@attrs.frozen
class Prompts:
    """The system prompt and the user prompt template, and whether the price is shown."""

    system: str = DEFAULT_SYSTEM_PROMPT
    user: str = DEFAULT_USER_PROMPT
    include_market_price: bool = False

    @classmethod
    def load(cls, system_file: str | None, user_file: str | None, *, include_market_price: bool) -> Prompts:
        """The defaults, replaced by the files given (read now; validated with the settings)."""
        system = Path(system_file).read_text(encoding="utf-8").strip() if system_file else DEFAULT_SYSTEM_PROMPT
        user = Path(user_file).read_text(encoding="utf-8").strip() if user_file else DEFAULT_USER_PROMPT
        return cls(system, user, include_market_price)

    def fields(self, market: MarketInfo, *, whales: Sequence[WhaleNote], market_price: float | None,
               today: float) -> dict[str, str]:
        """The values of every placeholder for ``market``."""
        outcomes = market.outcomes or ("Yes", "No")
        description = " ".join(market.description.split()) if market.description else "(none given)"
        if len(description) > MAX_DESCRIPTION_CHARS:
            description = description[: MAX_DESCRIPTION_CHARS - 1] + "…"
        shown = self.include_market_price and market_price is not None
        price = f"{market_price:.3f}" if shown and market_price is not None else "withheld"
        line = (f"\nThe market currently prices \"{outcomes[0]}\" at {price} (the traders' probability)."
                if shown else "")
        values = {
            "today": _when(today, "%Y-%m-%d"),
            "question": market.question or market.event_title or market.slug,
            "description": description,
            "end_date": _when(market.end_date),
            "outcomes": " / ".join(outcomes),
            "first_outcome": outcomes[0],
            "event_title": market.event_title or "(none)",
            "category": market.category,
            "whale_flow": whale_lines(whales),
            "market_price": price,
            "market_price_line": line,
        }
        assert set(values) == set(AI_PROMPT_FIELDS)
        return values

    def messages(self, market: MarketInfo, *, whales: Sequence[WhaleNote], market_price: float | None,
                 today: float) -> tuple[tuple[str, str], ...]:
        """``(role, content)`` pairs: the system prompt, then the rendered user prompt."""
        user = string.Template(self.user).safe_substitute(
            self.fields(market, whales=whales, market_price=market_price, today=today))
        return (("system", self.system), ("user", user))
