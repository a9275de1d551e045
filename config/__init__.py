"""Configuration: typed settings from the environment and ``.env``, validated at start-up."""

from . import keywords
from ._errors import ConfigError
from ._parse import DatabaseUrl, parse_database_url
from ._settings import Settings, load_settings

__all__ = ["ConfigError", "DatabaseUrl", "Settings", "keywords", "load_settings", "parse_database_url"]
from ._logging import configure_logging  # noqa: E402

__all__ += ["configure_logging"]
