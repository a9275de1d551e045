"""One outlet's requests and the reading of its answers, from :mod:`protocols.alerts` (private)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from protocols import alerts as wire
from protocols.alerts import AlertMessage, OutgoingRequest

from ._config import OutletConfig


@attrs.frozen
class Transport:
    """Builds an outlet's requests (one alert, or a digest of several) and reads its answers."""

    config: OutletConfig = attrs.field(repr=False)
    version: str
    #: The rate cap's window, shown in digests ("12 whale trades in 60 s").
    window_seconds: float = 60.0

    def single(self, alert: AlertMessage) -> OutgoingRequest:
        c, v = self.config, self.version
        if c.kind == "webhook":
            return wire.webhook_request(c.url, alert, secret=c.secret, version=v)
        if c.kind == "discord":
            return wire.discord_request(c.url, alert, version=v)
        if c.kind == "slack":
            return wire.slack_request(c.url, alert, version=v)
        assert c.token is not None and c.chat_id is not None
        return wire.telegram_request(c.url, c.token, c.chat_id, alert, version=v)

    def digest(self, alerts: Sequence[AlertMessage]) -> OutgoingRequest:
        c, v, w = self.config, self.version, self.window_seconds
        if c.kind == "webhook":
            return wire.webhook_digest_request(c.url, alerts, secret=c.secret, version=v)
        if c.kind == "discord":
            return wire.discord_digest_request(c.url, alerts, window_seconds=w, version=v)
        if c.kind == "slack":
            return wire.slack_digest_request(c.url, alerts, window_seconds=w, version=v)
        assert c.token is not None and c.chat_id is not None
        return wire.telegram_digest_request(c.url, c.token, c.chat_id, alerts, window_seconds=w, version=v)

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> tuple[str, float | None, str]:
        """(verdict, seconds the outlet asked us to wait or None, a short reason without secrets)."""
        verdict = wire.interpret_response(self.config.kind, status, headers, body)
        return verdict.verdict, verdict.retry_after, verdict.detail


def transport_for(config: OutletConfig, version: str) -> Transport:
    return Transport(config, version)
