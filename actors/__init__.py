"""The service's actors, one module per actor (or tight family), and the tree that runs them."""

from ._service import Service, ServiceOptions, build_service

__all__ = ["Service", "ServiceOptions", "build_service"]
