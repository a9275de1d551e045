"""Logging set-up: loguru for everything (stdlib loggers routed in), secrets redacted."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterable
from typing import Any, TextIO

import orjson
from loguru import logger

_TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[actor]}</cyan> {message}"
)


class _Redactor:
    """Replaces every configured secret in a record's message, extras and exception text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first so a secret containing another is masked whole
        self.secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, "***")
        return value

    def __call__(self, record: Any) -> None:
        record["extra"].setdefault("actor", "-")
        if not self.secrets:
            return
        record["message"] = self.text(record["message"])
        for key, value in record["extra"].items():
            if isinstance(value, str):
                record["extra"][key] = self.text(value)


class _JsonSink:
    """One JSON object per line: time, level, actor, message, extras, exception."""

    def __init__(self, stream: TextIO, redactor: _Redactor) -> None:
        self.stream = stream
        self.redactor = redactor

    def __call__(self, message: Any) -> None:
        record = message.record
        data: dict[str, Any] = {
            "time": record["time"].isoformat(),
            "level": record["level"].name,
            "message": record["message"],
        }
        for key, value in record["extra"].items():
            data[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        exc = record["exception"]
        if exc is not None and exc.type is not None:
            text = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
            data["exception"] = self.redactor.text(text)
        self.stream.write(orjson.dumps(data).decode() + "\n")
        self.stream.flush()


class _InterceptHandler(logging.Handler):
    """Routes stdlib logging (asyncmy, hypercorn, trio-websocket, httpx) into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).bind(actor=record.name).log(level, record.getMessage())


def configure_logging(level: str = "info", fmt: str = "text", secrets: Iterable[str] = (),
                      stream: TextIO | None = None) -> None:
    """Replace loguru's sinks with one on ``stream`` (default stderr).

    ``fmt`` is ``"text"`` (human-readable, coloured on a terminal) or ``"json"`` (JSON lines).
    Every secret value is replaced by ``***`` in messages, extras and tracebacks.
    """
    out = stream if stream is not None else sys.stderr
    redactor = _Redactor(secrets)
    logger.remove()
    logger.configure(patcher=redactor, extra={"actor": "-"})
    if fmt == "json":
        logger.add(_JsonSink(out, redactor), level=level.upper(), format="{message}", backtrace=False, diagnose=False)
    else:
        def text_sink(message: Any) -> None:
            out.write(redactor.text(str(message)))
            out.flush()

        logger.add(text_sink, level=level.upper(), format=_TEXT_FORMAT,
                   colorize=bool(getattr(out, "isatty", lambda: False)()), backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    for noisy in ("hpack", "httpcore", "httpx", "trio-websocket"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
