"""Fake Polymarket servers (RTDS, CLOB market channel, Gamma, Data API) for tests.

See :mod:`tests.fakes.polymarket` for the full documentation.
"""

from .polymarket import *  # noqa: F403
from .polymarket import __all__ as _polymarket_all

__all__ = list(_polymarket_all)
