"""Storage errors: what a caller can do about a failed operation."""

from __future__ import annotations


class StoreError(Exception):
    """A storage operation failed."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or failed for reasons outside the rows (connection
    refused or lost, timeout, lock, disk, access denied, wrong schema): retry later, with the
    same rows."""


class StoreDataError(StoreError):
    """The database refused the rows themselves (a value too long, a NULL where none is
    allowed, a number it cannot store): writing the same rows again fails the same way."""


class SchemaError(StoreUnavailable):
    """The database schema cannot be used by this version of the service."""
