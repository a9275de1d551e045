"""One outlet's wire format: the :mod:`protocols.alerts` target for its configuration (private)."""

from __future__ import annotations

from protocols.alerts import DiscordTarget, OutletTarget, SlackTarget, TelegramTarget, WebhookTarget

from ._config import OutletConfig


def target_for(config: OutletConfig, version: str) -> OutletTarget:
    """The target that builds ``config``'s requests (one alert, or a digest) and reads its answers."""
    if config.kind == "webhook":
        return WebhookTarget(config.url, config.secret, version)
    if config.kind == "discord":
        return DiscordTarget(config.url, version)
    if config.kind == "slack":
        return SlackTarget(config.url, version)
    assert config.token is not None and config.chat_id is not None
    return TelegramTarget(config.token, config.chat_id, config.url, version)
