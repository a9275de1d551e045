"""Which markets to leave out: the pure crypto/sports exclusion rule behind the market filter.

The service keeps trades in markets that are **not** crypto or sports.  This module decides,
without I/O, whether one market is excluded and why; caching per condition id is the caller's
business (the decision depends only on the market's fields).

Order of the decision (:meth:`MarketRules.exclusion`):

1. **Gamma first.**  When the catalog knows the market's ``category`` or has *topical* tags
   (:data:`NON_TOPICAL_TAGS` such as ``"recurring"`` or ``"hide from new"`` do not count), the
   decision comes from them alone: a category or tag in the sports or crypto tag set
   (:data:`DEFAULT_SPORTS_TAGS`, :data:`DEFAULT_CRYPTO_TAGS`) excludes whatever the title says,
   matched as a whole tag (``"sports"`` excludes, ``"sports-betting-laws"`` does not), and a
   market with Gamma data but no such signal is **kept** even if its title contains a keyword
   (the keyword lists are only a fallback, and their short words are ambiguous: "heat wave",
   "Joint Chiefs").
2. **Fallback**, only for markets with no Gamma category and no topical tags (unknown to the
   catalog, or untagged):

   * slug prefixes of Polymarket's league codes (``nba-``, ``cbb-``, ``atp-``, ``crint-``...,
     :data:`DEFAULT_SPORTS_SLUG_PREFIXES`; short codes that could start any slug, like ``lal-``
     or ``val-``, count only in the dated game-slug shape ``lal-rma-bar-2026-01-04``,
     :data:`DEFAULT_SPORTS_GAME_SLUG_LEAGUES`) and the crypto 15-minute ``btc-updown-``
     family (:data:`DEFAULT_CRYPTO_SLUG_PREFIXES`), on the market slug and the event slug;
   * the keyword lists (``IGNORE_CRYPTO_KEYWORDS`` / ``IGNORE_SPORTS_KEYWORDS``) plus the
     built-in extras (:data:`DEFAULT_EXTRA_CRYPTO_KEYWORDS`,
     :data:`DEFAULT_EXTRA_SPORTS_KEYWORDS`: esports titles and betting words the seed lists
     lack) matched on **whole words**, never substrings, in the title(s) and slugs: ``eth``
     does not match "Netherlands", ``ada`` not "Canada", ``sol`` not "solution", ``heat``
     not "Heather"; case-insensitive; any non-alphanumeric character (space, hyphen,
     punctuation) separates words, so the slug ``nba-lal-bos`` matches ``nba`` and the
     phrase ``super bowl`` matches "Super Bowl" and ``super-bowl-champion``;
   * sports market *shapes* in the title (:data:`DEFAULT_SPORTS_TITLE_PATTERNS`): an
     over/under line ("O/U 228.5"), a half-point spread in parentheses ("(-1.5)"), best-of
     series ("(BO3)"), "Game 2 Winner", "to win 1 games", "Games Total".

3. **Custom rule.**  If nothing above excludes the market, the user's hook (``custom``, a
   ``Callable[[MarketView], bool]``) may: ``True`` excludes it with category ``"custom"``.  The
   service loads it from the ``MARKET_FILTER_HOOK`` setting (``"package.module:function"``,
   see :func:`load_custom_rule`), the counterpart of the seed's ``should_ignore_market``.  A
   hook that raises never crashes the filter: the market is kept, :attr:`MarketRules.hook_errors`
   counts the failure and :attr:`MarketRules.last_hook_error` keeps its text.

The rule is fast: all lists are compiled once into a few regular expressions with word
boundaries, tags are looked up in frozensets.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from protocols.polymarket import MarketInfo, Trade

__all__ = [
    "DEFAULT_CRYPTO_SLUG_PREFIXES",
    "DEFAULT_CRYPTO_TAGS",
    "DEFAULT_EXTRA_CRYPTO_KEYWORDS",
    "DEFAULT_EXTRA_SPORTS_KEYWORDS",
    "DEFAULT_SPORTS_GAME_SLUG_LEAGUES",
    "DEFAULT_SPORTS_SLUG_PREFIXES",
    "DEFAULT_SPORTS_TAGS",
    "DEFAULT_SPORTS_TITLE_PATTERNS",
    "NON_TOPICAL_TAGS",
    "CustomRule",
    "Exclusion",
    "MarketRules",
    "MarketView",
    "load_custom_rule",
]

# --------------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------------

#: Gamma tags (labels and slugs; also matched against ``category``) that mark a sports market.
#: Polymarket tags game and futures events with "Sports" plus the sport and league
#: ("Basketball", "NBA"...); esports count as sports.  Compared after normalisation (lower
#: case, ``-``/``_`` as spaces), as whole tags.
DEFAULT_SPORTS_TAGS: frozenset[str] = frozenset({
    "sports", "sport", "esports", "e sports",
    # sports
    "basketball", "football", "american football", "soccer", "baseball", "hockey", "ice hockey",
    "tennis", "golf", "cricket", "rugby", "boxing", "mma", "ufc", "wrestling", "formula 1", "f1",
    "motorsport", "motorsports", "racing", "nascar", "cycling", "olympics", "winter olympics",
    "darts", "snooker", "horse racing", "table tennis", "volleyball", "handball",
    # leagues and competitions
    "nba", "wnba", "nfl", "nhl", "mlb", "mls", "ncaa", "ncaab", "ncaaf", "cbb", "cfb",
    "college basketball", "college football", "march madness", "epl", "premier league",
    "la liga", "serie a", "bundesliga", "ligue 1", "eredivisie", "champions league", "ucl",
    "europa league", "uel", "fifa", "fifa world cup", "world cup", "uefa", "afcon",
    "africa cup of nations", "copa america", "super bowl", "nba finals", "stanley cup",
    "world series", "nba playoffs", "nfl playoffs", "atp", "wta", "grand slam", "wimbledon",
    "us open tennis", "australian open", "roland garros", "pga", "pga tour", "ipl",
    "nba draft", "nfl draft",
    # esports
    "dota 2", "dota2", "dota", "counter strike", "counter strike 2", "cs2", "csgo", "cs go",
    "league of legends", "lol", "valorant", "overwatch", "rocket league", "call of duty",
})

#: Gamma tags (and categories) that mark a crypto market.
DEFAULT_CRYPTO_TAGS: frozenset[str] = frozenset({
    "crypto", "cryptocurrency", "cryptocurrencies", "crypto prices", "crypto price",
    "bitcoin", "btc", "ethereum", "eth", "solana", "sol", "xrp", "ripple", "dogecoin", "doge",
    "cardano", "ada", "memecoins", "memecoin", "meme coins", "stablecoins", "stablecoin",
    "airdrops", "airdrop", "defi", "nft", "nfts", "altcoins", "token launch", "token launches",
    "fdv", "bitcoin etf", "ethereum etf", "crypto etf", "binance", "tether", "usdt", "usdc",
})

#: Tags that say nothing about a market's subject.  A market whose only tags are these counts
#: as untagged, so the keyword fallback still applies to it.
NON_TOPICAL_TAGS: frozenset[str] = frozenset({
    "all", "hide from new", "recurring", "featured", "trending", "new", "breaking",
    "breaking news", "daily", "weekly", "monthly", "15m", "1h", "4h", "rewards", "earn 4%",
})

#: Slug prefixes of Polymarket league codes that only ever start sports slugs (fallback).
#: Seen in the real tapes: ``nba-``, ``nhl-``, ``cbb-`` (college basketball), ``atp-``/``wta-``
#: (tennis), ``crint-`` (international cricket), ``acn-`` (Africa Cup of Nations).  The rest
#: are Polymarket's other distinctive league codes (Gamma ``/sports``).
DEFAULT_SPORTS_SLUG_PREFIXES: tuple[str, ...] = (
    "nba-", "wnba-", "nfl-", "nhl-", "mlb-", "mls-", "cbb-", "cwbb-", "cfb-", "ncaab-", "ncaaf-",
    "epl-", "ucl-", "uel-", "efl-", "dfb-", "acn-", "kbo-", "khl-", "ahl-", "shl-",
    "atp-", "wta-", "crint-", "ipl-", "ufc-", "mma-", "f1-",
    "cs2-", "csgo-", "dota2-",
)

#: Short league codes that could also start an unrelated slug (``sea-`` "sea level", ``val-``
#: "Val Kilmer", ``den-`` "Denmark"...): they count only in the dated game-slug shape
#: ``<code>-<team>-<team>-YYYY-MM-DD``, alone or followed by ``-<market suffix>``
#: (``lal-rma-bar-2026-01-04``, ``lol-t1-gen-2026-01-10-game1``).
DEFAULT_SPORTS_GAME_SLUG_LEAGUES: tuple[str, ...] = (
    "lal", "bun", "fl1", "sea", "ere", "por", "tur", "bra", "arg", "mex", "jap", "kor", "spl",
    "chi", "aus", "ind", "nor", "den", "rus", "col", "lib", "sud", "caf", "afc", "uef", "con",
    "fif", "lol", "val",
)

#: Slug prefixes of the recurring crypto up-or-down markets (``btc-updown-15m-1767658500``).
DEFAULT_CRYPTO_SLUG_PREFIXES: tuple[str, ...] = (
    "btc-updown-", "eth-updown-", "sol-updown-", "xrp-updown-", "doge-updown-",
)

#: Whole-word title/slug keywords added to ``IGNORE_SPORTS_KEYWORDS``: esports titles
#: ("Dota 2: Spirit vs Lynx (BO1)"), betting words ("1H Moneyline", "Game Handicap") and
#: leagues the seed list lacks.  Pass ``extra_sports_keywords=()`` to use the setting alone.
DEFAULT_EXTRA_SPORTS_KEYWORDS: tuple[str, ...] = (
    "esports", "e-sports", "dota", "dota 2", "counter-strike", "cs2", "csgo", "cs:go",
    "league of legends", "valorant", "overwatch", "rocket league",
    "moneyline", "handicap",
    "wnba", "ncaa", "ncaab", "ncaaf", "march madness", "stanley cup", "atp", "wta", "pga",
    "lpga", "mma", "ipl", "fifa", "uefa", "afcon", "epl", "bundesliga", "serie a", "ligue 1",
    "eredivisie", "europa league", "world cup", "grand prix", "wimbledon", "australian open",
    "roland garros", "ballon d'or", "head coach",
)

#: Whole-word keywords added to ``IGNORE_CRYPTO_KEYWORDS``: token-launch and crypto jargon.
DEFAULT_EXTRA_CRYPTO_KEYWORDS: tuple[str, ...] = (
    "fdv", "airdrop", "airdrops", "memecoin", "memecoins", "stablecoin", "stablecoins",
    "altcoin", "altcoins", "nft", "nfts", "defi",
)

#: (name, regex) title shapes of sports markets, searched in the lower-cased title (fallback).
DEFAULT_SPORTS_TITLE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("over/under line", r"\bo/u\s*\d"),
    ("spread line", r"\(\s*[+-]\d+\.5\s*\)"),
    ("spread", r"^\s*spread\s*:"),
    ("best-of series", r"\bbo[1-9]\b"),
    ("game winner", r"\b(?:game|map|set|round)\s*\d+\s+winner\b"),
    ("games won", r"\bto win \d+ (?:games?|maps?|sets?|rounds?)\b"),
    ("games total", r"\b(?:games|maps|sets|rounds|kills)\s+total\b"),
)

# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------

CRYPTO = "crypto"
SPORTS = "sports"
CUSTOM = "custom"


@attrs.frozen(slots=True)
class Exclusion:
    """Why a market is excluded.

    Attributes:
        category: ``"crypto"``, ``"sports"`` or ``"custom"``.
        reason: Which signal decided, for logs and the dashboard: ``"gamma tag 'sports'"``,
            ``"gamma category 'crypto'"``, ``"slug prefix 'nba-'"``, ``"title word 'nba'"``,
            ``"slug word 'bitcoin'"``, ``"title pattern 'over/under line'"``, ``"custom rule"``.
    """

    category: str
    reason: str


@attrs.frozen(slots=True)
class MarketView:
    """What a custom rule sees of a market (read-only).

    Attributes:
        condition_id: Market condition id, ``""`` when unknown.
        title: Market question (the catalog's when it knows the market, else the trade's).
        slug: Market slug, ``""`` when unknown.
        event_slug: Event slug, ``""`` when unknown.
        category: Gamma category as given, ``""`` when none.
        tags: Gamma tags (lower-cased labels and slugs, event tags first), ``()`` when none.
    """

    condition_id: str
    title: str
    slug: str
    event_slug: str
    category: str
    tags: tuple[str, ...]


#: A user rule: ``True`` excludes the market.
CustomRule = Callable[[MarketView], bool]

# --------------------------------------------------------------------------------------------
# Matching helpers
# --------------------------------------------------------------------------------------------

# Words are runs of letters and digits (any script); everything else separates them.
_SEPARATORS = re.compile(r"[\W_]+")
_SEP = r"[\W_]+"
_WORD_START = r"(?<![^\W_])"
_WORD_END = r"(?![^\W_])"


def _words(text: str) -> list[str]:
    return [w for w in _SEPARATORS.split(text.lower()) if w]


def _normal_tag(tag: str) -> str:
    """``"Crypto-Prices "`` → ``"crypto prices"``; ``"earn 4%"`` keeps its ``%``."""
    return " ".join(tag.lower().replace("-", " ").replace("_", " ").split())


def _keyword_regex(keywords: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any keyword as whole words; phrases allow any separator run."""
    alternatives = {_SEP.join(re.escape(w) for w in words) for kw in keywords if (words := _words(kw))}
    if not alternatives:
        return None
    # Longest first, so "dota 2" wins over "dota" in the reported reason.
    body = "|".join(sorted(alternatives, key=lambda a: (-len(a), a)))
    return re.compile(f"{_WORD_START}(?:{body}){_WORD_END}")


def _slug_prefixes(prefixes: Iterable[str]) -> tuple[str, ...]:
    out = []
    for p in prefixes:
        p = p.strip().lower()
        if p:
            out.append(p if p.endswith("-") else p + "-")
    return tuple(dict.fromkeys(out))


def _game_slug_regex(leagues: Iterable[str]) -> re.Pattern[str] | None:
    codes = {re.escape(c.strip().lower().rstrip("-")) for c in leagues if c.strip().strip("-")}
    if not codes:
        return None
    body = "|".join(sorted(codes, key=lambda c: (-len(c), c)))
    # <league>-<team>-<team>-YYYY-MM-DD, then the end or "-<market suffix>".
    return re.compile(rf"(?:{body})-[a-z0-9]+-[a-z0-9]+-\d{{4}}-\d{{2}}-\d{{2}}(?:-|$)")


def _pattern_regex(patterns: Iterable[tuple[str, str]]) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """Combine named title patterns into one regex; returns it and group name → pattern name."""
    names: dict[str, str] = {}
    parts = []
    for i, (name, regex) in enumerate(patterns):
        re.compile(regex)  # a bad pattern fails here, with its own message
        group = f"p{i}"
        names[group] = name
        parts.append(f"(?P<{group}>{regex})")
    if not parts:
        return None, names
    return re.compile("|".join(parts), re.MULTILINE), names


def _matched_words(match: re.Match[str]) -> str:
    return " ".join(_words(match.group()))


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------


class MarketRules:
    """The crypto/sports exclusion rule, compiled once (see the module docstring for the order).

    Build it from the settings' keyword lists::

        rules = MarketRules(settings.ignore_crypto_keywords, settings.ignore_sports_keywords,
                            custom=load_custom_rule(hook) if hook else None)
        rules.exclusion_for(trade, directory.get(trade.condition_id))  # None: keep

    Args:
        crypto_keywords: Whole-word fallback keywords for crypto (``IGNORE_CRYPTO_KEYWORDS``).
        sports_keywords: Whole-word fallback keywords for sports (``IGNORE_SPORTS_KEYWORDS``).
        crypto_tags: Gamma tags/categories meaning crypto; replaces :data:`DEFAULT_CRYPTO_TAGS`.
        sports_tags: Gamma tags/categories meaning sports; replaces :data:`DEFAULT_SPORTS_TAGS`.
        extra_crypto_tags: Added to ``crypto_tags``.
        extra_sports_tags: Added to ``sports_tags``.
        extra_crypto_keywords: Added to ``crypto_keywords`` (default
            :data:`DEFAULT_EXTRA_CRYPTO_KEYWORDS`; ``()`` for none).
        extra_sports_keywords: Added to ``sports_keywords`` (default
            :data:`DEFAULT_EXTRA_SPORTS_KEYWORDS`; ``()`` for none).
        sports_slug_prefixes: Fallback slug prefixes meaning sports ("nba" or "nba-").
        sports_game_slug_leagues: League codes that mean sports only in the dated game-slug shape.
        crypto_slug_prefixes: Fallback slug prefixes meaning crypto.
        sports_title_patterns: ``(name, regex)`` sports title shapes, searched in the
            lower-cased title.
        non_topical_tags: Tags ignored when deciding whether Gamma data exists.
        custom: Optional user rule, consulted last; ``True`` excludes (category ``"custom"``).

    Attributes:
        hook_errors: How many times the custom rule raised (the market was kept each time).
        last_hook_error: ``"ExcType: message"`` of the latest failure, ``None`` if none.
    """

    def __init__(
        self,
        crypto_keywords: Iterable[str] = (),
        sports_keywords: Iterable[str] = (),
        *,
        crypto_tags: Iterable[str] = DEFAULT_CRYPTO_TAGS,
        sports_tags: Iterable[str] = DEFAULT_SPORTS_TAGS,
        extra_crypto_tags: Iterable[str] = (),
        extra_sports_tags: Iterable[str] = (),
        extra_crypto_keywords: Iterable[str] = DEFAULT_EXTRA_CRYPTO_KEYWORDS,
        extra_sports_keywords: Iterable[str] = DEFAULT_EXTRA_SPORTS_KEYWORDS,
        sports_slug_prefixes: Iterable[str] = DEFAULT_SPORTS_SLUG_PREFIXES,
        sports_game_slug_leagues: Iterable[str] = DEFAULT_SPORTS_GAME_SLUG_LEAGUES,
        crypto_slug_prefixes: Iterable[str] = DEFAULT_CRYPTO_SLUG_PREFIXES,
        sports_title_patterns: Iterable[tuple[str, str]] = DEFAULT_SPORTS_TITLE_PATTERNS,
        non_topical_tags: Iterable[str] = NON_TOPICAL_TAGS,
        custom: CustomRule | None = None,
    ) -> None:
        if custom is not None and not callable(custom):
            raise TypeError(f"custom rule must be callable, not {type(custom).__name__}")
        crypto_keywords = tuple(crypto_keywords) + tuple(extra_crypto_keywords)
        sports_keywords = tuple(sports_keywords) + tuple(extra_sports_keywords)
        self._crypto_words = _keyword_regex(crypto_keywords)
        self._sports_words = _keyword_regex(sports_keywords)
        self._crypto_tags = frozenset(map(_normal_tag, (*crypto_tags, *extra_crypto_tags))) - {""}
        self._sports_tags = frozenset(map(_normal_tag, (*sports_tags, *extra_sports_tags))) - {""}
        self._non_topical = frozenset(map(_normal_tag, non_topical_tags))
        self._sports_prefixes = _slug_prefixes(sports_slug_prefixes)
        self._crypto_prefixes = _slug_prefixes(crypto_slug_prefixes)
        self._game_slug = _game_slug_regex(sports_game_slug_leagues)
        self._patterns, self._pattern_names = _pattern_regex(sports_title_patterns)
        self.custom = custom
        self.hook_errors = 0
        self.last_hook_error: str | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, custom: CustomRule | None = None) -> MarketRules:
        """Rules from the service settings' keyword lists.

        ``custom`` wins; otherwise a ``market_filter_hook`` setting (``MARKET_FILTER_HOOK``,
        ``"package.module:function"``), if the settings have one and it is set, is loaded with
        :func:`load_custom_rule` (its :class:`ValueError` propagates: fail at start-up).
        """
        if custom is None:
            spec = getattr(settings, "market_filter_hook", None)
            if spec:
                custom = load_custom_rule(spec)
        return cls(settings.ignore_crypto_keywords, settings.ignore_sports_keywords, custom=custom)

    # -- public API ----------------------------------------------------------------------------

    def exclusion(
        self,
        *,
        title: str,
        slug: str = "",
        event_slug: str = "",
        category: str = "",
        tags: Iterable[str] = (),
        condition_id: str = "",
    ) -> Exclusion | None:
        """Decide one market.

        Args:
            title: Market question (or the trade's title).
            slug: Market slug.
            event_slug: Event slug.
            category: Gamma category (any case), ``""`` when unknown.
            tags: Gamma tags (any case; labels and/or slugs).
            condition_id: Passed to the custom rule only.

        Returns:
            The :class:`Exclusion`, or ``None`` to keep the market.  Never raises for any
            strings (a raising custom rule is contained, see :attr:`hook_errors`).
        """
        tags = (tags,) if isinstance(tags, str) else tuple(tags)
        return self._decide((title,), slug, event_slug, category, tags, condition_id)

    def exclusion_for(self, trade: Trade, market: MarketInfo | None) -> Exclusion | None:
        """Decide the market of ``trade``, using the catalog's ``market`` when known.

        With a market, its category and tags decide first and the fallback sees both the
        catalog's question and event title and the trade's title, and the catalog's slugs
        (else the trade's).  Without one, only the trade's title, slug and event slug.
        """
        if market is None:
            return self._decide(
                (trade.title,), trade.slug, trade.event_slug, "", (), trade.condition_id)
        titles = tuple(dict.fromkeys(t for t in (market.question, market.event_title, trade.title) if t))
        return self._decide(
            titles or ("",),
            market.slug or trade.slug,
            market.event_slug or trade.event_slug,
            market.category,
            market.tags,
            market.condition_id or trade.condition_id,
        )

    # -- the decision --------------------------------------------------------------------------

    def _decide(
        self,
        titles: tuple[str, ...],
        slug: str,
        event_slug: str,
        category: str,
        tags: tuple[str, ...],
        condition_id: str,
    ) -> Exclusion | None:
        found, has_gamma = self._gamma(category, tags)
        if found is None and not has_gamma:
            found = self._fallback(titles, slug, event_slug)
        if found is None and self.custom is not None:
            found = self._custom(MarketView(
                condition_id=condition_id,
                title=titles[0] if titles else "",
                slug=slug,
                event_slug=event_slug,
                category=category,
                tags=tags,
            ))
        return found

    def _gamma(self, category: str, tags: tuple[str, ...]) -> tuple[Exclusion | None, bool]:
        """(exclusion from category/tags, whether the market has topical Gamma data)."""
        has_gamma = False
        if category:
            cat = _normal_tag(category)
            if cat:
                has_gamma = True
                if cat in self._sports_tags:
                    return Exclusion(SPORTS, f"gamma category '{cat}'"), True
                if cat in self._crypto_tags:
                    return Exclusion(CRYPTO, f"gamma category '{cat}'"), True
        for tag in tags:
            t = _normal_tag(tag)
            if not t or t in self._non_topical:
                continue
            has_gamma = True
            if t in self._sports_tags:
                return Exclusion(SPORTS, f"gamma tag '{t}'"), True
            if t in self._crypto_tags:
                return Exclusion(CRYPTO, f"gamma tag '{t}'"), True
        return None, has_gamma

    def _fallback(self, titles: tuple[str, ...], slug: str, event_slug: str) -> Exclusion | None:
        slugs = tuple(dict.fromkeys(s.strip().lower() for s in (slug, event_slug) if s.strip()))
        for s in slugs:
            for prefix in self._sports_prefixes:
                if s.startswith(prefix):
                    return Exclusion(SPORTS, f"slug prefix '{prefix}'")
            for prefix in self._crypto_prefixes:
                if s.startswith(prefix):
                    return Exclusion(CRYPTO, f"slug prefix '{prefix}'")
            if self._game_slug is not None and (m := self._game_slug.match(s)):
                return Exclusion(SPORTS, f"game slug '{m.group().split('-', 1)[0]}-'")
        for title in titles:
            text = title.lower()
            if self._crypto_words is not None and (m := self._crypto_words.search(text)):
                return Exclusion(CRYPTO, f"title word '{_matched_words(m)}'")
            if self._sports_words is not None and (m := self._sports_words.search(text)):
                return Exclusion(SPORTS, f"title word '{_matched_words(m)}'")
            if self._patterns is not None and (m := self._patterns.search(text)):
                return Exclusion(SPORTS, f"title pattern '{self._pattern_names[m.lastgroup or '']}'")
        for s in slugs:
            if self._crypto_words is not None and (m := self._crypto_words.search(s)):
                return Exclusion(CRYPTO, f"slug word '{_matched_words(m)}'")
            if self._sports_words is not None and (m := self._sports_words.search(s)):
                return Exclusion(SPORTS, f"slug word '{_matched_words(m)}'")
        return None

    def _custom(self, view: MarketView) -> Exclusion | None:
        try:
            excluded = self.custom(view)  # type: ignore[misc]
            excluded = bool(excluded)
        except Exception as exc:  # noqa: BLE001 - a user hook must never crash the filter
            self.hook_errors += 1
            self.last_hook_error = f"{type(exc).__name__}: {exc}"
            return None
        return Exclusion(CUSTOM, "custom rule") if excluded else None


# --------------------------------------------------------------------------------------------
# Loading a user rule
# --------------------------------------------------------------------------------------------


def load_custom_rule(spec: str) -> CustomRule:
    """Import a user's exclusion rule named ``"package.module:function"``.

    This is how the service reads the ``MARKET_FILTER_HOOK`` setting.  The function gets a
    :class:`MarketView` and returns ``True`` to exclude the market; it should be pure and fast
    (it runs once per market, on the trade path).  ``"package.module:Class.method"`` (any
    attribute path after the colon) works too.

    Raises:
        ValueError: ``spec`` is malformed, the module cannot be imported (the import error is
            chained), the attribute does not exist, or it is not callable.
    """
    if not isinstance(spec, str):
        raise ValueError(f"market filter hook must be 'package.module:function', got {spec!r}")
    module_name, sep, attr_path = spec.strip().partition(":")
    module_name = module_name.strip()
    attr_path = attr_path.strip()
    if not sep or not module_name or not attr_path:
        raise ValueError(f"market filter hook {spec!r} must look like 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(
            f"market filter hook {spec!r}: cannot import module {module_name!r}: "
            f"{type(exc).__name__}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(
                f"market filter hook {spec!r}: {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(obj):
        raise ValueError(f"market filter hook {spec!r} is not callable ({type(obj).__name__})")
    return obj  # type: ignore[no-any-return]
