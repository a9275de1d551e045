"""The crypto/sports market-exclusion rule (``actors.market_rules``)."""

from __future__ import annotations

import csv
import sys
import types
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.market_rules import (
    DEFAULT_SPORTS_SLUG_PREFIXES,
    Exclusion,
    MarketRules,
    MarketView,
    load_custom_rule,
)
from config import keywords
from protocols.polymarket import MarketInfo, parse_market, trade_from_activity

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-trades"
FIXTURES = Path(__file__).parent / "protocols" / "fixtures"
needs_real = pytest.mark.usefixtures("real_data")


@pytest.fixture
def real_data() -> Path:
    """The shared real-trade files: they ship beside the checkout, so missing is a failure, not a skip."""
    assert REAL.is_dir(), f"{REAL} is missing (shared/ must sit beside the checkout)"
    return REAL


@pytest.fixture(scope="module")
def rules() -> MarketRules:
    return MarketRules(keywords.IGNORE_CRYPTO_KEYWORDS, keywords.IGNORE_SPORTS_KEYWORDS)


def excluded(rules: MarketRules, **fields: object) -> str | None:
    found = rules.exclusion(**fields)  # type: ignore[arg-type]
    return None if found is None else found.category


def market(**overrides: object) -> MarketInfo:
    fields: dict[str, object] = dict(
        condition_id="0x" + "ab" * 32, question="", slug="", event_slug="", event_title="",
        description="", category="", tags=(), end_date=None, outcomes=("Yes", "No"),
        token_ids=("1", "2"), volume_24h=0.0, active=True, closed=False, outcome_prices=())
    fields.update(overrides)
    return MarketInfo(**fields)  # type: ignore[arg-type]


def trade(title: str, slug: str = "", event_slug: str = ""):
    return trade_from_activity({
        "price": 0.5, "size": 10.0, "side": "BUY", "asset": "1", "conditionId": "0x" + "cd" * 32,
        "timestamp": 1767658669, "title": title, "slug": slug, "eventSlug": event_slug,
    }, "rtds.trades")


# -- the seed's false positives and true positives (titles only, no Gamma data) ----------------

@pytest.mark.parametrize("title", [
    "Will Heather Humphreys win the 2025 Irish presidential election?",
    "Will the Netherlands win the most seats in the EU Parliament?",
    "Will Canada hold a snap election in 2026?",
    "Will a two-state solution be agreed by 2027?",
    "Heather Humphreys", "Netherlands", "Canada", "solution",
    "Will Mark Carney's government survive? (whether or not)",
])
def test_named_false_positives_are_kept(rules: MarketRules, title: str) -> None:
    assert rules.exclusion(title=title) is None


@pytest.mark.parametrize(("title", "category", "reason"), [
    ("Will Bitcoin hit $100k?", "crypto", "title word 'bitcoin'"),
    ("Lakers vs. Celtics", "sports", "title word 'lakers'"),
    ("Super Bowl LX winner", "sports", "title word 'super bowl'"),
    ("Will ETH flip BTC?", "crypto", "title word 'eth'"),
    ("Will the Red Sox make the playoffs?", "sports", "title word 'red sox'"),
    ("Formula 1: who wins the Monaco Grand Prix?", "sports", "title word 'formula 1'"),
    ("Will SOL reach $300?", "crypto", "title word 'sol'"),
])
def test_true_positives(rules: MarketRules, title: str, category: str, reason: str) -> None:
    assert rules.exclusion(title=title) == Exclusion(category, reason)


@pytest.mark.parametrize("keyword", keywords.IGNORE_CRYPTO_KEYWORDS + keywords.IGNORE_SPORTS_KEYWORDS)
def test_keywords_never_match_inside_words(rules: MarketRules, keyword: str) -> None:
    assert rules.exclusion(title=f"Will zz{keyword}zz and {keyword}ing happen?") is None
    assert rules.exclusion(title=f"Will {keyword.upper()} happen?") is not None


def test_phrases_match_across_any_separator(rules: MarketRules) -> None:
    assert rules.exclusion(title="", event_slug="super-bowl-champion-2026-731") == Exclusion(
        "sports", "slug word 'super bowl'")
    assert excluded(rules, title="Super\u00a0Bowl?") == "sports"
    assert excluded(rules, title="Will Formula-1 return to Vegas?") == "sports"
    assert rules.exclusion(title="Will the super team bowl over them?") is None
    assert rules.exclusion(title="A red, sorry sox story") is None


# -- Gamma first --------------------------------------------------------------------------------

def test_tagged_nba_game_without_league_in_title_is_excluded_by_tag(rules: MarketRules) -> None:
    assert rules.exclusion(title="Timberwolves vs. Thunder", tags=("sports", "basketball")) == Exclusion(
        "sports", "gamma tag 'sports'")
    # untagged and unknown slug: the title alone names no league, so it is kept (the gap tags close)
    assert rules.exclusion(title="Timberwolves vs. Thunder") is None


def test_leeds_excluded_by_slug_prefix_fallback(rules: MarketRules) -> None:
    assert rules.exclusion(
        title="Will Leeds United win on 2025-12-03?", slug="epl-lee-ful-2025-12-03-lee",
        event_slug="epl-lee-ful-2025-12-03") == Exclusion("sports", "slug prefix 'epl-'")
    assert rules.exclusion(title="Will Leeds United win on 2025-12-03?") is None


def test_tagged_politics_market_keeps_ambiguous_keyword(rules: MarketRules) -> None:
    title = "Will the heat wave bill pass?"
    assert rules.exclusion(title=title, tags=("politics", "us politics")) is None
    assert rules.exclusion(title=title, category="Politics") is None
    # without Gamma data the keyword fallback applies (whole word "heat": documented trade-off)
    assert rules.exclusion(title=title) == Exclusion("sports", "title word 'heat'")


@pytest.mark.parametrize(("category", "expected"), [
    ("Crypto", "crypto"), ("CRYPTO", "crypto"), ("Sports", "sports"), ("Esports", "sports"),
    ("NBA Playoffs", "sports"), (" crypto-prices ", "crypto"), ("Politics", None), ("Pop-Culture", None),
])
def test_category_alone_decides(rules: MarketRules, category: str, expected: str | None) -> None:
    assert excluded(rules, title="Will it happen?", category=category) == expected


def test_category_crypto_alone_excludes(rules: MarketRules) -> None:
    assert rules.exclusion(title="Will it happen?", category="Crypto") == Exclusion(
        "crypto", "gamma category 'crypto'")


@pytest.mark.parametrize(("tags", "expected"), [
    (("politics", "crypto"), "crypto"),
    (("Crypto Prices",), "crypto"),
    (("crypto-prices",), "crypto"),
    (("ethereum",), "crypto"),
    (("nfl",), "sports"),
    (("soccer", "epl"), "sports"),
    (("esports", "dota 2"), "sports"),
    (("Dota-2",), "sports"),
    (("sports-betting-laws",), None),  # whole tags only, never substrings of tags
    (("cryptography",), None),
    (("politics",), None),
])
def test_tags_are_matched_as_whole_tags(rules: MarketRules, tags: tuple[str, ...], expected: str | None) -> None:
    assert excluded(rules, title="Will it happen?", tags=tags) == expected


def test_tags_decide_regardless_of_title_and_slug(rules: MarketRules) -> None:
    # A crypto/sports word in the title does not matter once Gamma has (non-signal) tags ...
    assert rules.exclusion(title="Will Bitcoin be legal tender in Canada?", tags=("politics",)) is None
    assert rules.exclusion(title="Nuggets vs. 76ers", slug="nba-den-phi-2026-01-05", tags=("politics",)) is None
    # ... and a signal tag excludes whatever the title says.
    assert excluded(rules, title="Will the Netherlands win?", tags=("soccer",)) == "sports"


def test_non_topical_tags_do_not_count_as_gamma_data(rules: MarketRules) -> None:
    assert rules.exclusion(title="Bitcoin Up or Down", tags=("recurring", "hide-from-new")) == Exclusion(
        "crypto", "title word 'bitcoin'")


# -- slug fallback -------------------------------------------------------------------------------

@pytest.mark.parametrize(("slug", "expected"), [
    ("nba-lal-bos-2026-01-05", "sports"),
    ("cs2-vit-faze-2026-01-10", "sports"),
    ("dota2-spirit-lynx-2026-01-08", "sports"),
    ("lol-t1-gen-2026-01-10", "sports"),         # short code: dated game shape
    ("val-prx-drx-2026-01-10", "sports"),
    ("lal-rma-bar-2026-01-04-rma", "sports"),
    ("btc-updown-15m-1767658500", "crypto"),
    ("val-kilmer-oscar-nomination", None),       # short code, not a game slug
    ("sea-level-rise-by-2030", None),
    ("den-mark-election-2026-01-05x", None),
    ("nbaish-thing", None),
    ("fed-rate-cut-2026-01-28", None),
])
def test_slug_prefixes(rules: MarketRules, slug: str, expected: str | None) -> None:
    assert excluded(rules, title="Who wins?", slug=slug) == expected
    assert excluded(rules, title="Who wins?", event_slug=slug) == expected


def test_slug_words_are_whole_words(rules: MarketRules) -> None:
    assert rules.exclusion(title="", slug="what-price-will-bitcoin-hit") == Exclusion("crypto", "slug word 'bitcoin'")
    assert rules.exclusion(title="", slug="will-canada-find-a-solution-netherlands") is None


# -- exclusion_for -------------------------------------------------------------------------------

def test_exclusion_for_unknown_market_uses_trade_fields(rules: MarketRules) -> None:
    assert rules.exclusion_for(trade("Will Leeds United win?", event_slug="epl-lee-ful-2025-12-03"), None) == (
        Exclusion("sports", "slug prefix 'epl-'"))
    assert rules.exclusion_for(trade("Will Canada find a solution?"), None) is None


def test_exclusion_for_known_market_uses_gamma(rules: MarketRules) -> None:
    tagged = market(question="Timberwolves vs. Thunder", tags=("sports", "nba", "basketball"))
    assert rules.exclusion_for(trade("Timberwolves vs. Thunder"), tagged) == Exclusion("sports", "gamma tag 'sports'")
    politics = market(question="Will the heat wave bill pass?", tags=("politics",))
    assert rules.exclusion_for(trade("Will the heat wave bill pass?", slug="nba-x"), politics) is None


def test_exclusion_for_untagged_market_uses_both_titles_and_slugs(rules: MarketRules) -> None:
    real = parse_market((FIXTURES / "gamma_market.json").read_text())
    assert real is not None and not real.tags and not real.category  # a real, untagged NBA total
    assert rules.exclusion_for(trade("Over 239.5"), real) == Exclusion("sports", "slug prefix 'nba-'")
    # neither slug helps: the trade's title still counts next to the catalog's question
    bare = market(question="Over 239.5")
    assert rules.exclusion_for(trade("Lakers vs. Celtics: O/U 239.5"), bare) == Exclusion(
        "sports", "title word 'lakers'")
    assert rules.exclusion_for(trade("Over 239.5"), market(question="Over 239.5", event_title="Lakers vs. Celtics")) == (
        Exclusion("sports", "title word 'lakers'"))
    assert rules.exclusion_for(trade("Over 239.5"), bare) is None


# -- real data -----------------------------------------------------------------------------------

def read_csv(name: str) -> list[dict[str, str]]:
    with (REAL / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def own_fields(row: dict[str, str]) -> dict[str, str]:
    return {"title": row.get("title", ""), "slug": row.get("slug", ""), "event_slug": row.get("eventSlug", "")}


@needs_real
def test_every_esports_sports_row_is_excluded_from_its_own_fields(rules: MarketRules) -> None:
    rows = read_csv("esports-sports-2026-01-trades.csv")
    assert len(rows) == 2852
    assert "slug" not in rows[0] and "eventSlug" not in rows[0]  # titles are all this file has
    kept = sorted({row["title"] for row in rows if rules.exclusion(**own_fields(row)) is None})
    assert kept == []
    # The file also carries the 15-minute crypto up-or-down markets traded alongside.
    counts = Counter(rules.exclusion(**own_fields(row)).category for row in rows)  # type: ignore[union-attr]
    assert counts == {"crypto": 2517, "sports": 335}


@needs_real
def test_global_tape_sample(rules: MarketRules) -> None:
    rows = read_csv("global-tape-2026-01-05-sample.csv")
    results = {(row["title"], row["eventSlug"]): rules.exclusion(**own_fields(row)) for row in rows}
    counts = Counter(
        None if (e := rules.exclusion(**own_fields(row))) is None else e.category for row in rows)
    assert counts == {"crypto": 392, "sports": 36, None: 72}
    assert len(rows) - counts[None] == 428

    def decided(title: str, event_slug: str) -> str | None:
        e = results[(title, event_slug)]
        return None if e is None else e.category

    # excluded
    assert decided("Warriors vs. Clippers", "nba-gsw-lac-2026-01-05") == "sports"
    assert decided("Will England win?", "crint-aus-gbr-2026-01-03") == "sports"
    assert decided("Will DR Congo win on 2026-01-06?", "acn-alg-cdr-2026-01-06") == "sports"
    assert decided("Columbia Lions vs. Cornell Big Red", "cbb-colmb-cornel-2026-01-05") == "sports"
    assert decided("Will PSV win the 2025–26 Champions League?", "uefa-champions-league-winner") == "sports"
    assert decided("Bitcoin Up or Down - January 5, 7:15PM-7:30PM ET", "btc-updown-15m-1767658500") == "crypto"
    assert decided("Opensea FDV above $1B one day after launch?", "opensea-fdv-above-one-day-after-launch") == "crypto"
    # kept
    assert decided("Will a province schedule a referendum to leave Canada before 2027?",
                   "will-a-province-schedule-a-referendum-to-leave-canada-before-2027") is None
    assert decided("S&P 500 (SPX) Up or Down on January 6?", "spx-up-or-down-on-january-6-2026") is None
    assert decided("Will Trump nominate Judy Shelton as the next Fed chair?", "who-will-trump-nominate-as-fed-chair") is None
    assert decided("Will the highest temperature in London be 3°C on January 6?",
                   "highest-temperature-in-london-on-january-6") is None
    # Known gap of the fallback: a football-club market with no league/sport word anywhere;
    # the catalog's tags (soccer/sports) exclude it in service.
    chelsea = ("Will Xavi Hernandez be the next Chelsea manager?", "next-chelsea-manager-972")
    assert decided(*chelsea) is None
    assert excluded(rules, title=chelsea[0], event_slug=chelsea[1], tags=("sports", "soccer")) == "sports"


@needs_real
def test_politics_tape_is_never_excluded(rules: MarketRules) -> None:
    rows = read_csv("nobel-peace-prize-2025-trades.csv")
    assert [row["title"] for row in rows if rules.exclusion(**own_fields(row)) is not None] == []


# -- custom rule ---------------------------------------------------------------------------------

def sample_rule(view: MarketView) -> bool:
    """A user rule for the tests: leave out weather markets."""
    return "temperature" in view.title.lower()


def test_custom_rule_excludes_and_sees_the_market() -> None:
    seen: list[MarketView] = []

    def rule(view: MarketView) -> bool:
        seen.append(view)
        return "temperature" in view.title.lower()

    rules = MarketRules(keywords.IGNORE_CRYPTO_KEYWORDS, keywords.IGNORE_SPORTS_KEYWORDS, custom=rule)
    assert rules.exclusion(
        title="Highest temperature in NYC?", slug="s", event_slug="e", category="Weather", tags=("Weather",),
        condition_id="0x1") == Exclusion("custom", "custom rule")
    assert seen == [MarketView("0x1", "Highest temperature in NYC?", "s", "e", "Weather", ("Weather",))]
    assert rules.exclusion(title="Will Canada find a solution?") is None
    # built-in rules decide first; the hook is not consulted for already excluded markets
    seen.clear()
    assert rules.exclusion(title="Will Bitcoin hit $100k?") == Exclusion("crypto", "title word 'bitcoin'")
    assert seen == []


def test_custom_rule_via_exclusion_for() -> None:
    rules = MarketRules(custom=lambda view: view.condition_id == "0x" + "cd" * 32)
    assert rules.exclusion_for(trade("Anything"), None) == Exclusion("custom", "custom rule")


def test_raising_custom_rule_is_contained() -> None:
    calls = 0

    def broken(view: MarketView) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyError("boom")
        raise RuntimeError(f"bad {view.title}")

    rules = MarketRules(keywords.IGNORE_CRYPTO_KEYWORDS, keywords.IGNORE_SPORTS_KEYWORDS, custom=broken)
    assert rules.hook_errors == 0 and rules.last_hook_error is None
    assert rules.exclusion(title="Will the Fed cut?") is None
    assert rules.hook_errors == 1
    assert rules.last_hook_error == "RuntimeError: bad Will the Fed cut?"
    assert rules.exclusion(title="Will the Fed hike?") is None
    assert rules.hook_errors == 2
    assert rules.last_hook_error == "KeyError: 'boom'"
    # built-in exclusions still work
    assert excluded(rules, title="Will Bitcoin hit $100k?") == "crypto"


def test_custom_rule_with_unusable_return_value_is_contained() -> None:
    class NoBool:
        def __bool__(self) -> bool:
            raise ValueError("no truth")

    rules = MarketRules(custom=lambda view: NoBool())
    assert rules.exclusion(title="x") is None
    assert rules.hook_errors == 1


def test_custom_must_be_callable() -> None:
    with pytest.raises(TypeError):
        MarketRules(custom="not callable")  # type: ignore[arg-type]


# -- load_custom_rule ----------------------------------------------------------------------------

def test_load_custom_rule() -> None:
    rule = load_custom_rule("tests.test_market_rules:sample_rule")
    assert rule is sample_rule
    assert load_custom_rule(" os.path : basename ") is __import__("os").path.basename
    assert load_custom_rule("tests.test_market_rules:MarketRules.exclusion_for") is MarketRules.exclusion_for


@pytest.mark.parametrize(("spec", "message"), [
    ("tests.test_market_rules", "must look like 'package.module:function'"),
    (":sample_rule", "must look like"),
    ("tests.test_market_rules:", "must look like"),
    ("", "must look like"),
    ("no_such_package_xyz.mod:rule", "cannot import module 'no_such_package_xyz.mod'"),
    ("tests.test_market_rules:no_such_rule", "has no attribute 'no_such_rule'"),
    ("config.keywords:IGNORE_CRYPTO_KEYWORDS", "is not callable"),
])
def test_load_custom_rule_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        load_custom_rule(spec)


def test_load_custom_rule_module_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_market_hook.py").write_text("raise RuntimeError('hook module is broken')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="cannot import module 'broken_market_hook'.*hook module is broken") as info:
        load_custom_rule("broken_market_hook:rule")
    assert isinstance(info.value.__cause__, RuntimeError)
    sys.modules.pop("broken_market_hook", None)


def test_load_custom_rule_rejects_non_string() -> None:
    with pytest.raises(ValueError):
        load_custom_rule(None)  # type: ignore[arg-type]


def test_from_settings() -> None:
    cfg = types.SimpleNamespace(
        ignore_crypto_keywords=("bitcoin",), ignore_sports_keywords=("nba",),
        market_filter_hook="tests.test_market_rules:sample_rule")
    rules = MarketRules.from_settings(cfg)
    assert rules.custom is sample_rule
    assert excluded(rules, title="Bitcoin?") == "crypto"
    assert excluded(rules, title="Ethereum?") is None  # the setting replaces the default list
    assert excluded(rules, title="Highest temperature?") == "custom"
    plain = MarketRules.from_settings(types.SimpleNamespace(ignore_crypto_keywords=(), ignore_sports_keywords=()))
    assert plain.custom is None
    with pytest.raises(ValueError):
        MarketRules.from_settings(types.SimpleNamespace(
            ignore_crypto_keywords=(), ignore_sports_keywords=(), market_filter_hook="nope"))


# -- configuration of the rule itself -----------------------------------------------------------

def test_empty_lists_leave_only_gamma() -> None:
    rules = MarketRules(
        extra_crypto_keywords=(), extra_sports_keywords=(), sports_slug_prefixes=(),
        sports_game_slug_leagues=(), crypto_slug_prefixes=(), sports_title_patterns=())
    assert rules.exclusion(title="Will Bitcoin hit $100k? O/U 2.5", slug="nba-lal-bos-2026-01-05") is None
    assert excluded(rules, title="x", tags=("nba",)) == "sports"


def test_extra_tags_and_custom_prefixes() -> None:
    rules = MarketRules(extra_sports_tags=("Chess",), sports_slug_prefixes=("chess",))
    assert excluded(rules, title="Carlsen wins?", tags=("chess",)) == "sports"
    assert rules.exclusion(title="Carlsen wins?", slug="chess-carlsen") == Exclusion("sports", "slug prefix 'chess-'")
    assert "chess-" not in DEFAULT_SPORTS_SLUG_PREFIXES


def test_setting_keywords_with_punctuation() -> None:
    rules = MarketRules(sports_keywords=("St. Louis Blues", "76ers"), extra_sports_keywords=())
    assert excluded(rules, title="Will the St Louis Blues win?") == "sports"
    assert excluded(rules, title="Nuggets vs. 76ers") == "sports"
    assert rules.exclusion(title="1976ers") is None


# -- robustness ----------------------------------------------------------------------------------

texts = st.text(max_size=200)


@settings(max_examples=300, deadline=None)
@given(title=texts, slug=texts, event_slug=texts, category=texts, tags=st.lists(texts, max_size=5))
def test_exclusion_never_raises(
    rules: MarketRules, title: str, slug: str, event_slug: str, category: str, tags: list[str],
) -> None:
    result = rules.exclusion(title=title, slug=slug, event_slug=event_slug, category=category, tags=tags)
    assert result is None or result.category in ("crypto", "sports")
