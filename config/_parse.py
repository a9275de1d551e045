"""Parsers for setting values: each takes the raw string and raises ValueError("what is allowed")."""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable

import attrs

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true or false (also 1/0, yes/no, on/off)")


def number(*, minimum: float | None = None, maximum: float | None = None,
           min_exclusive: bool = False, max_exclusive: bool = False) -> Callable[[str], float]:
    low = "" if minimum is None else f"{'>' if min_exclusive else '>='} {minimum:g}"
    high = "" if maximum is None else f"{'<' if max_exclusive else '<='} {maximum:g}"
    allowed = "a number" + (f" {low}" if low else "") + (" and" if low and high else "") + (f" {high}" if high else "")

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected {allowed}") from None
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"expected {allowed}")
        if minimum is not None and (value < minimum or (min_exclusive and value == minimum)):
            raise ValueError(f"expected {allowed}")
        if maximum is not None and (value > maximum or (max_exclusive and value == maximum)):
            raise ValueError(f"expected {allowed}")
        return value

    return parse


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    allowed = "a whole number" + (f" >= {minimum}" if minimum is not None else "") + (
        f" and <= {maximum}" if maximum is not None else "")

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected {allowed}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ValueError(f"expected {allowed}")
        return value

    return parse


parse_port = integer(minimum=0, maximum=65535)  # 0: any free port (tests)


def choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"expected a {' or '.join(s + '://' for s in schemes)} URL")
        return value.rstrip("/")

    return parse


def parse_host(raw: str) -> str:
    value = raw.strip()
    if not value or any(c.isspace() for c in value) or "/" in value:
        raise ValueError("expected a host name or IP address")
    return value


def word_list(raw: str) -> tuple[str, ...]:
    """Comma-separated, trimmed, lower-cased, empties dropped."""
    return tuple(w.strip().lower() for w in raw.split(",") if w.strip())


def origin_list(raw: str) -> tuple[str, ...]:
    """Comma-separated browser origins (``https://example.com``), exact match."""
    items = tuple(w.strip().rstrip("/") for w in raw.split(",") if w.strip())
    for item in items:
        parts = urllib.parse.urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError(f"expected origins like https://example.com, got {item!r}")
    return items


def name_list(raw: str) -> tuple[str, ...]:
    """Comma-separated, trimmed, case kept; at least one."""
    items = tuple(w.strip() for w in raw.split(",") if w.strip())
    if not items:
        raise ValueError("expected a comma-separated list with at least one entry")
    return items


def optional_text(raw: str) -> str | None:
    value = raw.strip()
    return value or None


def text(raw: str) -> str:
    return raw.strip()


@attrs.frozen
class DatabaseUrl:
    """A parsed ``DATABASE_URL``.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
    ``mysql://user:password@host:port/database?ssl=true&ssl_ca=/path/ca.pem`` (MySQL, MariaDB
    and TiDB; ``mysql+asyncmy://`` is accepted as a synonym).
    """

    kind: str  # "sqlite" | "mysql"
    path: str = ""
    host: str = ""
    port: int = 3306
    user: str = ""
    password: str = attrs.field(default="", repr=False)
    database: str = ""
    options: tuple[tuple[str, str], ...] = ()

    def redacted(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        auth = f"{self.user}:***@" if self.password else (f"{self.user}@" if self.user else "")
        query = ("?" + urllib.parse.urlencode(self.options)) if self.options else ""
        return f"mysql://{auth}{self.host}:{self.port}/{self.database}{query}"


_MYSQL_OPTIONS = {"ssl", "ssl_ca", "ssl_cert", "ssl_key", "ssl_verify", "charset", "connect_timeout", "pool_size",
                  "write_connections"}


def parse_database_url(raw: str) -> DatabaseUrl:
    value = raw.strip()
    allowed = "expected sqlite:///path/to/file.db or mysql://user:password@host:port/database"
    parts = urllib.parse.urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = value[len("sqlite:///"):] if value.lower().startswith("sqlite:///") else ""
        if not path or parts.netloc:
            raise ValueError(allowed)
        return DatabaseUrl(kind="sqlite", path=path)
    if scheme in ("mysql", "mysql+asyncmy", "tidb"):
        try:
            port = parts.port or (4000 if scheme == "tidb" else 3306)
        except ValueError:
            raise ValueError(f"{allowed} (the port is not a number from 1 to 65535)") from None
        database = parts.path.lstrip("/")
        if not parts.hostname or not database or "/" in database:
            raise ValueError(allowed)
        options = tuple(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted({k for k, _ in options} - _MYSQL_OPTIONS)
        if unknown:
            raise ValueError(f"unknown option {unknown[0]!r}; allowed: {', '.join(sorted(_MYSQL_OPTIONS))}")
        return DatabaseUrl(
            kind="mysql",
            host=parts.hostname,
            port=port,
            user=urllib.parse.unquote(parts.username or ""),
            password=urllib.parse.unquote(parts.password or ""),
            database=urllib.parse.unquote(database),
            options=options,
        )
    raise ValueError(allowed)
