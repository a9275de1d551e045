"""Default title keywords for the crypto and sports exclusion fallback (the seed's lists).

Gamma tags and categories decide first; these whole-word keywords are only the fallback for
markets without useful tags.  Override with ``IGNORE_CRYPTO_KEYWORDS`` /
``IGNORE_SPORTS_KEYWORDS`` (comma-separated; they replace the lists below).
"""

IGNORE_CRYPTO_KEYWORDS: tuple[str, ...] = (
    "bitcoin", "btc", "ethereum", "eth", "crypto", "solana", "sol",
    "dogecoin", "doge", "shiba", "cardano", "ada", "ripple", "xrp",
)

IGNORE_SPORTS_KEYWORDS: tuple[str, ...] = (
    "nba", "nfl", "mlb", "nhl", "mls", "ufc", "boxing",
    "football", "basketball", "baseball", "hockey", "soccer",
    "super bowl", "world series", "playoffs", "championship",
    "lakers", "warriors", "celtics", "knicks", "heat", "bucks",
    "cowboys", "patriots", "chiefs", "eagles", "packers",
    "yankees", "dodgers", "red sox", "mets",
    "premier league", "la liga", "champions league",
    "tennis", "golf", "nascar", "formula 1", "f1", "cricket",
)
