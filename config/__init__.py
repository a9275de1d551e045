"""Configuration: typed settings from the environment and ``.env``, validated at start-up."""

#: The service's version (one place: run.py, the hello message and logs read it here).
__version__ = "0.1.0"

from . import keywords
from ._errors import ConfigError
from ._parse import DatabaseUrl, parse_database_url
from ._settings import Settings, load_settings

__all__ = ["ConfigError", "DatabaseUrl", "Settings", "keywords", "load_settings", "parse_database_url"]
from ._logging import configure_logging  # noqa: E402

__all__ += ["configure_logging"]
